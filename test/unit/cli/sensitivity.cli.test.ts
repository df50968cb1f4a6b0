/** `layerlens sensitivity`, run as a user runs it: the CLI in a child process on Silero. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import type { SensitivityResult } from '../../../src/shared/sensitivity';
import { writeModel } from '../../support/onnxBuilder';
import { saturatedSigmoidNet } from '../../support/validationModels';

const CLI = ['--import', 'tsx', 'src/cli/bin.ts'];
const SILERO = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
let folder: string;

before(() => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-sensitivity-cli-'));
});
after(() => rmSync(folder, { recursive: true, force: true }));

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8' });
}

test('sensitivity --measured prints a ranking table, most sensitive first', () => {
  const result = layerlens('sensitivity', SILERO, '--measured', '--level', 'int8');
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split('\n');
  assert.match(result.stdout, /measured: output deviation \(relativeL2, worst output\)/);
  assert.match(result.stdout, /runs in 1 session\b/);
  const header = lines.findIndex((line) => line.startsWith('#'));
  assert.ok(header > 0);
  const int8Column = lines[header]!.split(/\s{2,}/).indexOf('int8');
  const values = lines
    .slice(header + 1)
    .filter((line) => /^\d+\s/.test(line))
    .map((line) => Number(line.split(/\s{2,}/)[int8Column]));
  assert.ok(values.length >= 10);
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! <= values[i - 1]!, `${values}`);
});

test('sensitivity --json (proxy), and clear errors for bad arguments and files', () => {
  const json = layerlens('sensitivity', SILERO, '--json', '--metric', 'kl');
  assert.equal(json.status, 0, json.stderr);
  const result = JSON.parse(json.stdout) as SensitivityResult;
  assert.equal(result.metric, 'kl');
  assert.equal(result.sessions, 0);
  assert.ok(result.layers.every((layer) => layer.measured === undefined));
  const usage = layerlens('sensitivity', SILERO, '--metric', 'mse');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--metric must be one of relativeL2, cosine, kl/);
  const broken = join(folder, 'broken.onnx');
  writeFileSync(broken, new Uint8Array([0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0x0f]));
  const bad = layerlens('sensitivity', broken);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, new RegExp(`layerlens: ${broken.replace(/[.]/g, '\\.')}: `));
});

test('sensitivity --measured says why the deviations of a saturated sigmoid are not trustworthy', async () => {
  const saturated = await writeModel(folder, 'saturated.onnx', saturatedSigmoidNet());
  const text = layerlens('sensitivity', saturated, '--measured', '--level', 'int8');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^ {2}NOT trustworthy: output 'score' is pinned near 1/m);
  const json = layerlens('sensitivity', saturated, '--measured', '--json');
  assert.equal(json.status, 0, json.stderr);
  const result = JSON.parse(json.stdout) as SensitivityResult;
  assert.ok(result.inputProblems?.some((problem) => /pinned/.test(problem)));
  const proxy = layerlens('sensitivity', SILERO, '--level', 'int8');
  assert.doesNotMatch(proxy.stdout, /NOT trustworthy/);
});

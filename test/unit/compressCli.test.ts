/** `layerlens compress`, run as a user runs it: the CLI in a child process on a Silero copy. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import type { CompressionReport } from '../../src/shared/compress';
import { optionsFromLevel, UsageError } from '../../src/cli/compress';

const CLI = ['--import', 'tsx', 'src/cli/bin.ts'];
let folder: string;
let model: string;

before(() => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-compress-cli-'));
  model = join(folder, 'silero.onnx');
  copyFileSync(resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), model);
});
after(() => rmSync(folder, { recursive: true, force: true }));

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8' });
}

test('compress --json writes the model and its report and prints the report', () => {
  const result = layerlens(
    'compress',
    model,
    '--method',
    'int4',
    '--level',
    '64',
    '--layers',
    'encoder',
    '--json',
  );
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as CompressionReport;
  assert.equal(report.output, join(folder, 'silero.int4.onnx'));
  assert.ok(existsSync(report.output) && existsSync(report.reportPath));
  assert.deepEqual(report.options, { method: 'int4', blockSize: 64 });
  assert.ok(report.tensors.every((t) => t.skipped || /encoder/.test(t.name)));
  assert.equal(report.tensors.filter((t) => !t.skipped).length, 8);
  assert.deepEqual(
    report.outputs.map((o) => o.output),
    ['output', 'stateN'],
  );
});

test('compress prints a table; --out names the file; a taken --out is refused', () => {
  const out = join(folder, 'small.onnx');
  const result = layerlens(
    'compress',
    model,
    '--method',
    'fp16',
    '--out',
    out,
    '--shape',
    'input=1x512',
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /fp16: file 2\.22 MB → 1\.\d+ MB/);
  assert.match(result.stdout, /OUTPUT\s+MAX ABS DIFF\s+REL L2\s+COSINE/);
  assert.match(result.stdout, /skipped \d+: int64 tensor/);
  const again = layerlens('compress', model, '--method', 'fp16', '--out', out);
  assert.equal(again.status, 1);
  assert.match(
    again.stderr,
    /small\.onnx: the output file exists; LayerLens never overwrites a file/,
  );
});

test('compress usage errors exit 2; unusable requests exit 1 and write nothing', () => {
  const before = readdirSync(folder).sort();
  for (const args of [
    ['--method', 'zip'],
    ['--method', 'nm', '--level', 'half'],
    ['--method', 'int8', '--level', '3'],
    ['--method', 'int8', '--shape', 'input'],
  ]) {
    const result = layerlens('compress', model, ...args);
    assert.equal(result.status, 2, args.join(' '));
    assert.match(result.stderr, /Usage: layerlens compress/);
  }
  const nothing = layerlens(
    'compress',
    model,
    '--method',
    'lowrank',
    '--level',
    '500',
    '--layers',
    'encoder\\.0\\.',
  );
  assert.equal(nothing.status, 1);
  assert.match(nothing.stderr, /nothing to compress with lowrank/);
  assert.deepEqual(readdirSync(folder).sort(), before);
});

test('--level means sparsity, N:M, block size, rank or energy', () => {
  assert.deepEqual(optionsFromLevel('prune', '0.7'), { method: 'prune', sparsity: 0.7 });
  assert.deepEqual(optionsFromLevel('nm', '1:4'), { method: 'nm', n: 1, m: 4 });
  assert.deepEqual(optionsFromLevel('int4', '128'), { method: 'int4', blockSize: 128 });
  assert.deepEqual(optionsFromLevel('lowrank', '16'), { method: 'lowrank', rank: 16 });
  assert.deepEqual(optionsFromLevel('lowrank', '0.95'), { method: 'lowrank', energy: 0.95 });
  assert.deepEqual(optionsFromLevel('int8', undefined), { method: 'int8' });
  assert.throws(() => optionsFromLevel('fp16', '1'), UsageError);
});

/**
 * `layerlens compress` (and `plan`/`apply`), run as a user runs it: the CLI in a child
 * process on a Silero copy, and on a saturated-sigmoid model whose sample outputs cannot
 * show a difference (written but NOT validated: exit status 3).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import type { CompressionReport } from '../../../src/shared/compress';
import type { ApplyPlanResult } from '../../../src/shared/plan';
import { optionsFromLevel, UsageError } from '../../../src/cli/compress';
import { writeModel } from '../../support/onnxBuilder';
import { saturatedSigmoidNet } from '../../support/validationModels';

const CLI = ['--import', 'tsx', 'src/cli/bin.ts'];
let folder: string;
let model: string;
let saturated: string;

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-compress-cli-'));
  model = join(folder, 'silero.onnx');
  copyFileSync(resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), model);
  const own = mkdtempSync(join(folder, 'saturated-'));
  saturated = await writeModel(own, 'saturated.onnx', saturatedSigmoidNet());
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
  assert.deepEqual([report.verdict.validated, report.verdict.reasons], [true, []]);
  for (const output of report.outputs) {
    assert.ok(output.samples! > 1, 'several sample inputs are compared');
    assert.ok(output.cosine <= output.meanCosine!, 'the worst sample is no better than the mean');
  }
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
  assert.match(result.stdout, /float16 weights: file 2\.22 MB → 1\.\d+ MB \(\d\.\d× smaller\)/);
  assert.match(result.stdout, /^ {2}verdict: validated$/m);
  assert.match(
    result.stdout,
    /OUTPUT\s+SAMPLES\s+WORST MAX ABS DIFF\s+WORST REL L2\s+MEAN REL L2\s+WORST COSINE\s+MEAN COSINE/,
  );
  assert.match(result.stdout, /^output\s+8\s/m);
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

test('a saturated sigmoid compressed with int8 is written but NOT validated: exit status 3', () => {
  const json = layerlens('compress', saturated, '--method', 'int8', '--json');
  assert.equal(json.status, 3, json.stderr);
  const report = JSON.parse(json.stdout) as CompressionReport;
  assert.ok(existsSync(report.output) && existsSync(report.reportPath), 'the file is written');
  assert.equal(report.verdict.validated, false);
  assert.ok(
    report.verdict.reasons.some((reason) => /pinned/.test(reason) && /'score'/.test(reason)),
    report.verdict.reasons.join('\n'),
  );
  assert.equal(report.outputs[0]?.samples, 8);

  const text = layerlens('compress', saturated, '--method', 'int8');
  assert.equal(text.status, 3, text.stderr);
  assert.match(text.stdout, /^ {2}verdict: NOT validated: output 'score' is pinned near 1/m);
  assert.match(text.stdout, /WORST COSINE\s+MEAN COSINE/);

  const help = layerlens('--help');
  assert.match(help.stdout, /3 written but NOT validated/);
});

test('plan warns that its measured sensitivities may understate the deviation; apply exits 3 with the verdict', () => {
  const recipe = join(folder, 'saturated.recipe.json');
  const plan = layerlens('plan', saturated, '--ratio', '3', '--measured', '--out', recipe);
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stdout, /^warning: the sample inputs cannot fully show a deviation .*pinned/m);

  const text = layerlens('apply', saturated, recipe, '--out', join(folder, 'saturated.a.onnx'));
  assert.equal(text.status, 3, text.stderr);
  assert.match(text.stdout, /target 3× smaller met/);
  assert.match(text.stdout, /^verdict: NOT validated: output 'score' is pinned/m);
  assert.match(text.stdout, /output score: cosine \S+ worst of 8 samples, \S+ mean/);

  const json = layerlens(
    'apply',
    saturated,
    recipe,
    '--out',
    join(folder, 'saturated.b.onnx'),
    '--json',
  );
  assert.equal(json.status, 3, json.stderr);
  const result = JSON.parse(json.stdout) as ApplyPlanResult;
  assert.equal(result.verdict.validated, false);
  assert.ok(result.verdict.reasons.some((reason) => /pinned/.test(reason)));
  assert.ok(result.verdict.reasons.some((reason) => /may understate it/.test(reason)));
});

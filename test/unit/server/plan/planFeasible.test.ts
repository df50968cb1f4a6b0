/**
 * What the planner guarantees beyond meeting a target: it offers a tensor only the
 * options its method can write into that model (an opset-9 model whose Clip cannot be
 * raised), so the first application writes what was predicted; a missed target comes
 * with its reasons, aggregated per reason; a sharded safetensors model is sized by its
 * shards; and the attempts of an apply are written under the OS temporary folder, never
 * beside the model.
 */
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { compressModel } from '../../../../src/server/compress';
import { openModelFile } from '../../../../src/server/formats/registry';
import { planLevels, planModel } from '../../../../src/server/plan';
import { applyRecipe, ATTEMPTS_FOLDER_PREFIX } from '../../../../src/server/plan/apply';
import { predictSizes } from '../../../../src/server/plan/predict';
import { scaledGaussian as weights } from '../../../support/matrices';
import {
  attribute,
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { writeShardedSafetensors } from '../../../support/safetensorsBuilder';

let folder: string;
let remove: () => Promise<void>;
let opset9: string;
let withBias: string;

/**
 * Opset 9: x[1,64] → MatMul w1 → Clip (min/max attributes, the pre-11 form) → Gemm w2, b2.
 * w1 is read by a MatMul directly (int4 as MatMulNBits needs no opset); w2 by a Gemm.
 */
async function writeOpset9(name: string): Promise<string> {
  const g = graph({
    nodes: [
      node('MatMul', ['x', 'w1'], ['h'], { name: 'fc1' }),
      node('Clip', ['h'], ['a'], {
        name: 'clip',
        attributes: [attribute.float('min', 0), attribute.float('max', 6)],
      }),
      node('Gemm', ['a', 'w2', 'b2'], ['y'], { name: 'fc2' }),
    ],
    initializers: [
      tensor('w1', 'float32', [64, 256], weights(64, 256, 11, 0.2)),
      tensor('w2', 'float32', [256, 32], weights(256, 32, 12, 0.1)),
      tensor('b2', 'float32', [32], weights(1, 32, 13, 0.1)),
    ],
    inputs: [valueInfo('x', 'float32', [1, 64])],
    outputs: [valueInfo('y', 'float32', [1, 32])],
  });
  return writeModel(folder, name, model(g, { opsets: { '': 9 }, irVersion: 4 }));
}

/** y = x·w + bias, z = u ⊙ scale: the two vectors (800 KB of scale) hold most of the file. */
async function writeBiasHeavy(name: string): Promise<string> {
  const g = graph({
    nodes: [
      node('MatMul', ['x', 'w'], ['h'], { name: 'fc' }),
      node('Add', ['h', 'bias'], ['y'], { name: 'add' }),
      node('Mul', ['u', 'scale'], ['z'], { name: 'mul' }),
    ],
    initializers: [
      tensor('w', 'float32', [16, 64], weights(16, 64, 21, 0.1)),
      tensor('bias', 'float32', [64], weights(1, 64, 22, 0.1)),
      tensor('scale', 'float32', [200_000], weights(1, 200_000, 23, 0.1)),
    ],
    inputs: [valueInfo('x', 'float32', [1, 16]), valueInfo('u', 'float32', [1, 200_000])],
    outputs: [valueInfo('y', 'float32', [1, 64]), valueInfo('z', 'float32', [1, 200_000])],
  });
  return writeModel(folder, name, model(g));
}

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-feasible-'));
  opset9 = await writeOpset9('opset9.onnx');
  withBias = await writeBiasHeavy('bias-heavy.onnx');
});
after(() => remove());

test('an option the planner leaves out is one the writer skips, with the same reason (opset 9)', async () => {
  const opened = await openModelFile(opset9);
  const prediction = await predictSizes(
    opened,
    opened.tensors.map((t) => t.info.index),
    planLevels(),
  );
  for (const key of ['int8', 'int4:32']) {
    const options = planLevels().find((level) => level.key === key)!.options;
    const report = await compressModel(opset9, {
      tensors: [],
      options,
      outPath: join(folder, `opset9.${key.replace(':', '-')}.onnx`),
    }).catch((error: Error) => error);
    for (const name of ['w1', 'w2']) {
      const predicted = prediction.tensors.find((t) => t.name === name)!;
      const dropped = predicted.dropped.find((d) => d.key === key);
      if (report instanceof Error) {
        // Nothing could be written: every weight must have been left out by the planner.
        assert.ok(
          dropped,
          `${key} ${name}: the writer refused (${report.message}), the planner offered it`,
        );
        assert.ok(
          report.message.includes(dropped.reason),
          `${report.message} vs ${dropped.reason}`,
        );
        continue;
      }
      const written = report.tensors.find((t) => t.name === name)!;
      assert.equal(
        written.skipped,
        dropped !== undefined,
        `${key} ${name}: written ${written.skipped ? `skipped (${written.detail})` : 'compressed'}, planner ${dropped ? `dropped (${dropped.reason})` : 'offered it'}`,
      );
      if (dropped)
        assert.ok(
          written.detail.includes(dropped.reason),
          `${written.detail} vs ${dropped.reason}`,
        );
    }
  }
});

test('plan 4× on opset 9: every planned step is written, the size within 2% on the first application', async () => {
  const plan = await planModel(opset9, { target: { kind: 'ratio', value: 4 }, measured: false });
  const result = await applyRecipe(opset9, plan.recipe, {
    refine: false,
    outPath: join(folder, 'opset9.plan.onnx'),
  });
  const written = (await stat(result.report.output)).size;
  assert.ok(
    Math.abs(written - plan.predictedFileBytes) <= 0.02 * written,
    `predicted ${plan.predictedFileBytes}, written ${written}`,
  );
  for (const step of plan.recipe.steps) {
    const tensor = result.report.tensors.find((t) => t.name === step.tensor)!;
    assert.ok(!tensor.skipped, `${step.tensor} was planned but skipped: ${tensor.detail}`);
  }
  assert.ok(result.targetMet || result.missedBecause.length > 0);
  if (!plan.feasible) assert.ok(plan.limits.length > 0, 'an infeasible plan says why');
});

test('a missed target is reported with its reasons, aggregated per reason', async () => {
  const plan = await planModel(withBias, { target: { kind: 'ratio', value: 4 }, measured: false });
  assert.equal(plan.feasible, false);
  assert.match(
    plan.limits[0]!,
    /^the smallest file the methods can write is \d+ bytes \(predicted\), over the \d+-byte limit$/,
  );
  assert.ok(
    plan.limits.some((line) =>
      /^2 tensors could not take int8, .* because a bias or vector$/.test(line),
    ),
    plan.limits.join('\n'),
  );
  const result = await applyRecipe(withBias, plan.recipe, {
    refine: true,
    outPath: join(folder, 'bias-heavy.plan.onnx'),
  });
  assert.equal(result.targetMet, false);
  assert.match(
    result.missedBecause[0]!,
    /^the best file written is \d+ bytes, \d+ over the \d+-byte limit$/,
  );
  assert.ok(result.missedBecause.some((line) => line.includes('because a bias or vector')));
});

test('a sharded safetensors model is planned from its shards, and nothing the writer refuses is offered', async () => {
  const dir = join(folder, 'sharded');
  const shard = (file: string, name: string, shape: [number, number], seed: number) => ({
    file,
    tensors: [
      { name, dtype: 'F32' as const, shape, data: Float32Array.from(weights(...shape, seed, 0.1)) },
    ],
  });
  const index = await writeShardedSafetensors(dir, [
    shard('model-00001-of-00002.safetensors', 'a.weight', [64, 32], 31),
    shard('model-00002-of-00002.safetensors', 'b.weight', [32, 64], 32),
  ]);
  let onDisk = 0;
  for (const name of await readdir(dir)) onDisk += (await stat(join(dir, name))).size;
  const plan = await planModel(index, { target: { kind: 'ratio', value: 4 }, measured: false });
  assert.equal(plan.fileBytesBefore, onDisk, 'the index and both shards');
  assert.ok(plan.predictedFileBytes > 0 && plan.predictedFileBytes <= plan.fileBytesBefore);
  assert.equal(
    plan.recipe.steps.length,
    0,
    'the writer refuses sharded models: nothing is offered',
  );
  assert.equal(plan.feasible, false);
  assert.ok(
    plan.limits.some((line) =>
      /^2 tensors could not take .* because compressing a sharded model/.test(line),
    ),
    plan.limits.join('\n'),
  );
});

test('an apply writes its attempts under the OS temporary folder and leaves only the kept model, its report and recipe', async () => {
  const plan = await planModel(opset9, { target: { kind: 'ratio', value: 2 }, measured: false });
  const seen = new Set<string>();
  const watcher = watch(folder, (_event, name) => {
    if (name) seen.add(name.toString());
  });
  const temps = async (): Promise<string[]> =>
    (await readdir(tmpdir())).filter((n) => n.startsWith(ATTEMPTS_FOLDER_PREFIX));
  const tempsBefore = new Set(await temps());
  const outPath = join(folder, 'opset9.kept.onnx');
  let result;
  try {
    result = await applyRecipe(opset9, plan.recipe, { refine: true, outPath });
  } finally {
    watcher.close();
  }
  assert.ok(result.attempts.length >= 1);
  const expected = new Set([
    basename(outPath),
    basename(result.report.reportPath),
    basename(result.recipePath),
  ]);
  // The kept files go through a temporary name in the same folder (written, then renamed).
  const stray = [...seen].filter((n) => !expected.has(n) && !n.includes('.tmp'));
  assert.deepEqual(stray, [], 'nothing else appeared beside the model during the apply');
  for (const attempt of result.attempts.filter((a) => a.output !== result.report.output)) {
    assert.ok(attempt.output.startsWith(tmpdir()), attempt.output);
  }
  const left = (await temps()).filter((n) => !tempsBefore.has(n));
  assert.deepEqual(left, [], 'the attempts folder is removed');
});

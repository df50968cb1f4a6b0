/**
 * float16 and bfloat16 source weights. Two kinds of models:
 *
 * - the real ddddocr recognizer (PyTorch, fetched by scripts/fetch-models.mjs) derived by
 *   python3-onnx into weight-only float16 and bfloat16 models (test/support/halfModels.ts
 *   says how: 16-bit initializers, Casts back to float32 appended after the other nodes, so
 *   the graph is not topologically sorted);
 * - a generated MLP that computes in float16 throughout (MatMul, Relu, Gemm), at opset 17
 *   (DequantizeLinear outputs float32: a Cast follows) and 19 (float16 scales).
 *
 * Every method reaches the 16-bit weights, W keeps its dtype, the report's sizes are the
 * 16-bit ones, the written model runs in onnxruntime, comes out sorted and passes the
 * ONNX checker, and the planner's predicted sizes match the files written.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { onnx } from 'onnx-proto';
import type { CompressionOptions } from '../../../../src/shared/compress';
import { compressModel } from '../../../../src/server/compress';
import { compressPerTensor } from '../../../../src/server/compress/perTensor';
import { float32ToFloat16Bits } from '../../../../src/server/compress/kernels';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ONNX_DATA_TYPE } from '../../../../src/server/formats/onnxDataTypes';
import { topologicalOrder } from '../../../../src/server/onnx';
import { planLevels } from '../../../../src/server/plan';
import { computeSensitivity } from '../../../../src/server/sensitivity';
import { predictSizes } from '../../../../src/server/plan/predict';
import { deriveHalfModel } from '../../../support/derivedModels';
import { gaussianMatrix } from '../../../support/matrices';
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
import { checkOnnxModel } from '../../../support/python';

const REAL = '.tmp/models/ddddocr-common.onnx';

let folder: string;
let remove: () => Promise<void>;
const derived = new Map<string, { path: string; converted: number }>();

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-half-'));
  const source = join(folder, 'ddddocr.onnx');
  await copyFile(REAL, source);
  for (const kind of ['float16', 'bfloat16'] as const) {
    const path = join(folder, `ddddocr-${kind}.onnx`);
    derived.set(kind, { path, converted: deriveHalfModel(source, path, kind) });
  }
});
after(() => remove());

function decode(path: string): Promise<onnx.ModelProto> {
  return readFile(path).then((bytes) => onnx.ModelProto.decode(bytes));
}

/** Checks every written model gets: sorted graph, ONNX checker (where it knows the opset). */
async function checkWritten(path: string): Promise<onnx.ModelProto> {
  const written = await decode(path);
  assert.equal(topologicalOrder(written.graph!, path, ''), undefined, 'written out of order');
  const opset = Number(written.opsetImport!.find((o) => !o.domain)!.version);
  const check = checkOnnxModel(path);
  if (opset <= check.newestOpset) assert.equal(check.error, null);
  return written;
}

const REAL_CASES: readonly {
  kind: 'float16' | 'bfloat16';
  options: CompressionOptions;
  cosine: number;
}[] = [
  { kind: 'float16', options: { method: 'int8' }, cosine: 0.99 },
  { kind: 'float16', options: { method: 'int4', blockSize: 32 }, cosine: 0.9 },
  { kind: 'float16', options: { method: 'prune', sparsity: 0.5 }, cosine: 0.5 },
  { kind: 'float16', options: { method: 'nm' }, cosine: 0.5 },
  // The factors are stored in float16 and Cast to float32 as W was (rank 8: a short SVD).
  { kind: 'float16', options: { method: 'lowrank', rank: 8 }, cosine: 0.5 },
  { kind: 'bfloat16', options: { method: 'int8' }, cosine: 0.99 },
  { kind: 'bfloat16', options: { method: 'int4', blockSize: 32 }, cosine: 0.9 },
  { kind: 'bfloat16', options: { method: 'prune', sparsity: 0.5 }, cosine: 0.5 },
];

for (const { kind, options, cosine } of REAL_CASES) {
  test(`ddddocr derived to ${kind}: ${options.method} compresses every 16-bit weight`, async () => {
    const { path, converted } = derived.get(kind)!;
    assert.ok(converted >= 24, `${converted} weights converted`);
    const opened = await openModelFile(path);
    const halves = opened.tensors.filter((t) => t.info.dtype === kind);
    assert.equal(halves.length, converted);
    const report = await compressModel(path, {
      tensors: [],
      options,
      outPath: join(folder, `ddddocr-${kind}-${options.method}.onnx`),
    });
    const done = report.tensors.filter((t) => !t.skipped);
    // Every 16-bit weight but the LSTM's bias (a 2-D vector no method takes); low rank
    // takes the Gemm and Conv weights, not the LSTM's.
    if (options.method === 'lowrank') assert.ok(done.length >= 10, `${done.length}`);
    else
      assert.equal(
        done.length,
        converted - 1,
        JSON.stringify(report.tensors.filter((t) => t.skipped)),
      );
    for (const t of done) {
      const entry = halves.find((h) => h.info.name === t.name)!;
      // Sizes are measured against the 16-bit original.
      assert.equal(t.bytesBefore, entry.info.parameterCount * 2);
    }
    for (const t of report.tensors.filter((r) => r.skipped)) {
      assert.doesNotMatch(t.detail, /float16 tensor|bfloat16 tensor|opset/, t.detail);
    }
    assert.ok(report.verdict.validated, report.validation.join('; '));
    assert.ok(report.validation.some((line) => /topological order/.test(line)));
    const worst = report.outputs[0]!.cosine;
    console.log(`ddddocr ${kind}, ${options.method}: output cosine ${worst.toFixed(6)}`);
    assert.ok(worst > cosine, `${worst}`);
    const written = await checkWritten(report.output);
    if (options.method === 'lowrank') {
      const factors = written.graph!.initializer!.filter((t) => t.name!.includes('_lowrank_'));
      assert.equal(factors.length, 2 * done.length);
      assert.ok(factors.every((t) => t.dataType === ONNX_DATA_TYPE.FLOAT16));
    }
    if (options.method === 'prune' || options.method === 'nm') {
      // Pruned weights are stored in their own dtype.
      const code = kind === 'float16' ? ONNX_DATA_TYPE.FLOAT16 : ONNX_DATA_TYPE.BFLOAT16;
      const names = new Set(done.map((t) => t.name));
      const stored = written.graph!.initializer!.filter((t) => names.has(t.name!));
      assert.equal(stored.length, done.length);
      assert.ok(stored.every((t) => t.dataType === code));
    }
  });
}

test('ddddocr derived to float16: fp16 is refused as already 16-bit', async () => {
  await assert.rejects(
    compressModel(derived.get('float16')!.path, { tensors: [], options: { method: 'fp16' } }),
    /already a float16 tensor/,
  );
});

/** x[1,64] → MatMul 64×128 → Relu → Gemm 128×96 (+ bias) → y[1,96], all in float16. */
async function writeHalfMlp(opset: number): Promise<string> {
  const half = (rows: number, cols: number, seed: number): number[] =>
    Array.from(
      float32ToFloat16Bits(Float32Array.from(gaussianMatrix(rows, cols, seed), (v) => v * 0.2)),
    );
  const g = graph({
    initializers: [
      tensor('w1', 'float16', [64, 128], half(64, 128, 1)),
      tensor('w2', 'float16', [128, 96], half(128, 96, 2)),
      tensor('b2', 'float16', [96], half(1, 96, 3)),
    ],
    inputs: [valueInfo('x', 'float16', [1, 64])],
    outputs: [valueInfo('y', 'float16', [1, 96])],
    nodes: [
      node('MatMul', ['x', 'w1'], ['h'], { name: 'fc1' }),
      node('Relu', ['h'], ['a']),
      node('Gemm', ['a', 'w2', 'b2'], ['y'], {
        name: 'fc2',
        attributes: [attribute.int('transB', 0)],
      }),
    ],
  });
  return writeModel(
    folder,
    `mlp16-${opset}.onnx`,
    model(g, { opsets: { '': opset }, irVersion: 8 }),
  );
}

const MLP_CASES: readonly { options: CompressionOptions; detail: RegExp }[] = [
  { options: { method: 'int8' }, detail: /int8/ },
  { options: { method: 'int4', blockSize: 32 }, detail: /int4/ },
  { options: { method: 'lowrank', rank: 24 }, detail: /rank 24/ },
  { options: { method: 'prune', sparsity: 0.5 }, detail: /pruning/ },
  { options: { method: 'nm' }, detail: /2:4/ },
];

for (const opset of [17, 19]) {
  for (const { options, detail } of MLP_CASES) {
    test(`float16 MLP at opset ${opset}: ${options.method} keeps computing in float16`, async () => {
      const path = await writeHalfMlp(opset);
      const report = await compressModel(path, {
        tensors: [],
        options,
        outPath: join(folder, `mlp16-${opset}-${options.method}.onnx`),
      });
      const done = report.tensors.filter((t) => !t.skipped);
      assert.deepEqual(done.map((t) => t.name).sort(), ['w1', 'w2']);
      for (const t of done) assert.match(t.detail, detail);
      if (options.method === 'int8') {
        // Opset 19's DequantizeLinear outputs float16 itself; before, a Cast follows.
        const expected = opset >= 19 ? /scales in float16\)/ : /Cast to float16\)/;
        for (const t of done) assert.match(t.detail, expected, t.detail);
      }
      if (options.method === 'int4') {
        assert.match(done.find((t) => t.name === 'w1')!.detail, /MatMulNBits.*float16 scales/);
      }
      assert.ok(report.verdict.validated, report.validation.join('; '));
      const worst = report.outputs[0]!.cosine;
      console.log(
        `float16 MLP opset ${opset}, ${options.method}: output cosine ${worst.toFixed(6)}`,
      );
      assert.ok(worst > 0.5, `${worst}`);
      const written = await checkWritten(report.output);
      // The graph still computes in float16: its output and every float tensor it stores.
      assert.equal(written.graph!.output![0]!.type!.tensorType!.elemType, ONNX_DATA_TYPE.FLOAT16);
      assert.ok(!written.graph!.initializer!.some((t) => t.dataType === ONNX_DATA_TYPE.DOUBLE));
    });
  }
}

test('float16 sources: the planner offers int8, int4 and low rank and predicts the written size', async () => {
  for (const path of [await writeHalfMlp(17), derived.get('float16')!.path]) {
    const opened = await openModelFile(path);
    const prediction = await predictSizes(
      opened,
      opened.tensors.map((t) => t.info.index),
      planLevels(),
    );
    for (const key of ['int8', 'int4:32']) {
      const steps = prediction.tensors.flatMap((t) => {
        const option = t.options.find((o) => o.key === key);
        return option
          ? [{ tensor: t.name, options: option.options, delta: option.bytes - t.bytesBefore }]
          : [];
      });
      assert.ok(steps.length >= 2, `${path} ${key}: ${steps.length} tensors offered`);
      const predicted =
        prediction.fileBytesBefore +
        prediction.fileOverhead +
        steps.reduce((s, x) => s + x.delta, 0);
      const report = await compressPerTensor(path, steps);
      const actual = (await stat(report.output)).size;
      assert.ok(
        Math.abs(actual - predicted) <= 0.005 * actual + 256,
        `${path} ${key}: predicted ${predicted}, written ${actual}`,
      );
    }
  }
});

test('float16 sources: the measured sensitivity sweep takes them (fed as float32, Cast back)', async () => {
  const path = await writeHalfMlp(17);
  const result = await computeSensitivity(path, { indices: [], measured: true });
  assert.deepEqual(result.layers.map((l) => l.name).sort(), ['w1', 'w2']);
  for (const l of result.layers) {
    const int8 = l.measured!.find((p) => p.key === 'int8');
    assert.ok(int8 && int8.deviation > 0, `${l.name}: ${JSON.stringify(l.skipped)}`);
    const prune = l.measured!.find((p) => p.key === 'prune:0.9')!;
    assert.ok(prune.deviation > int8.deviation, `${l.name}: prune 90% vs int8`);
  }
});

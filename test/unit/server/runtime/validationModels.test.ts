/**
 * The generated validation models behave as their builders promise, checked in the real
 * onnxruntime: spatialContrastNet ignores its input at 1x1 but not at 32x32,
 * saturatedSigmoidNet's score is pinned above 0.999, unreachedBranchNet's 'unused.weight'
 * never moves the output, reluDeadNet outputs only zeros.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { seededUniform } from '../../../../src/server/runtime/sampleInputs';
import { encodeModel, tensor } from '../../../support/onnxBuilder';
import {
  reluDeadNet,
  saturatedSigmoidNet,
  spatialContrastNet,
  unreachedBranchNet,
} from '../../../support/validationModels';

/** `count` values uniform in [-1, 1) from a seed. */
function uniformValues(count: number, seed: number): Float32Array {
  const next = seededUniform(seed);
  return Float32Array.from({ length: count }, () => next() * 2 - 1);
}

async function session(m: onnx.IModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(m));
}

/** Runs `s` on one float32 input and returns its single output's values. */
async function runOne(
  s: ort.InferenceSession,
  input: string,
  dims: readonly number[],
  data: Float32Array,
): Promise<Float32Array> {
  const results = await s.run({ [input]: new ort.Tensor('float32', data, dims) });
  const output = results[s.outputNames[0]!]!;
  return output.data as Float32Array;
}

/** The float32 values of an initializer stored as raw_data. */
function initializerValues(m: onnx.IModelProto, name: string): Float32Array {
  const found = m.graph!.initializer!.find((t) => t.name === name);
  assert.ok(found?.rawData, `initializer ${name} with raw_data`);
  const raw = found.rawData;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/** `m` with initializer `name` replaced by `values` (same shape). */
function withInitializer(
  m: onnx.IModelProto,
  name: string,
  values: readonly number[],
): onnx.IModelProto {
  const initializers = m.graph!.initializer!.map((t) =>
    t.name === name ? tensor(name, 'float32', (t.dims ?? []).map(Number), values) : t,
  );
  assert.ok(
    initializers.some((t) => t.name === name),
    `model has ${name}`,
  );
  return { ...m, graph: { ...m.graph, initializer: initializers } };
}

function bitwiseEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

test('spatialContrastNet: at 1x1 the output ignores the input, at 32x32 it does not', async () => {
  const m = spatialContrastNet();
  const s = await session(m);
  assert.deepEqual(s.inputNames, ['image']);
  assert.deepEqual(s.outputNames, ['logits']);

  const at1 = await Promise.all(
    [1, 2, 3].map((seed) => runOne(s, 'image', [1, 3, 1, 1], uniformValues(3, seed))),
  );
  assert.equal(at1[0]!.length, 4);
  assert.ok(bitwiseEqual(at1[0]!, at1[1]!), `1x1: ${at1[0]} vs ${at1[1]}`);
  assert.ok(bitwiseEqual(at1[0]!, at1[2]!), `1x1: ${at1[0]} vs ${at1[2]}`);

  // At 1x1 the contrast is 0, so logits = fc.weight · conv2.bias + fc.bias.
  const conv2Bias = initializerValues(m, 'conv2.bias');
  const fcWeight = initializerValues(m, 'fc.weight');
  const fcBias = initializerValues(m, 'fc.bias');
  for (let o = 0; o < 4; o++) {
    let expected = fcBias[o]!;
    for (let c = 0; c < 8; c++) expected += fcWeight[o * 8 + c]! * conv2Bias[c]!;
    assert.ok(
      Math.abs(at1[0]![o]! - expected) < 1e-5,
      `logit ${o}: ${at1[0]![o]} vs biases-only ${expected}`,
    );
  }

  const at32 = await Promise.all(
    [1, 2, 3].map((seed) => runOne(s, 'image', [1, 3, 32, 32], uniformValues(3 * 32 * 32, seed))),
  );
  for (const [i, j] of [
    [0, 1],
    [0, 2],
    [1, 2],
  ] as const) {
    const largest = Math.max(...at32[i]!.map((v, k) => Math.abs(v - at32[j]![k]!)));
    assert.ok(largest > 1e-4, `32x32 inputs ${i} and ${j} differ by only ${largest}`);
  }
});

test('saturatedSigmoidNet: the score sits above 0.999 with almost no spread', async () => {
  const s = await session(saturatedSigmoidNet());
  assert.deepEqual(s.inputNames, ['features']);
  assert.deepEqual(s.outputNames, ['score']);
  const scores: number[] = [];
  for (let seed = 1; seed <= 8; seed++) {
    const out = await runOne(s, 'features', [1, 64], uniformValues(64, seed));
    assert.equal(out.length, 1);
    scores.push(out[0]!);
  }
  for (const score of scores) assert.ok(score > 0.999 && score <= 1, `score ${score}`);
  const spread = Math.max(...scores) - Math.min(...scores);
  assert.ok(spread < 1e-3, `spread ${spread}`);
});

test("unreachedBranchNet: 'unused.weight' never moves y, 'used.weight' does", async () => {
  const m = unreachedBranchNet();
  const s = await session(m);
  assert.deepEqual(s.inputNames, ['x']);
  assert.deepEqual(s.outputNames, ['y']);
  const changedUnused = await session(
    withInitializer(
      m,
      'unused.weight',
      Array.from(uniformValues(16 * 8, 77), (v) => v * 10),
    ),
  );
  const changedUsed = await session(
    withInitializer(m, 'used.weight', Array.from(uniformValues(16 * 8, 78))),
  );
  for (let seed = 1; seed <= 4; seed++) {
    const x = uniformValues(16, seed);
    const y = await runOne(s, 'x', [1, 16], x);
    assert.equal(y.length, 8);
    assert.ok(
      y.some((v) => v !== 0),
      `y is not all zero: ${y}`,
    );
    const yUnused = await runOne(changedUnused, 'x', [1, 16], x);
    assert.ok(bitwiseEqual(y, yUnused), `unused.weight moved y: ${y} vs ${yUnused}`);
    const yUsed = await runOne(changedUsed, 'x', [1, 16], x);
    const largest = Math.max(...y.map((v, k) => Math.abs(v - yUsed[k]!)));
    assert.ok(largest > 1e-3, `used.weight moved y by only ${largest}`);
  }
});

test('reluDeadNet: every output is 0', async () => {
  const m = reluDeadNet();
  const s = await session(m);
  assert.deepEqual(s.inputNames, ['x']);
  assert.deepEqual(s.outputNames, ['y']);
  // The dead Relu is the bias's doing: without it the same inputs give nonzero outputs.
  const live = await session(withInitializer(m, 'bias', new Array<number>(8).fill(0)));
  for (let seed = 1; seed <= 8; seed++) {
    const x = uniformValues(16, seed);
    const y = await runOne(s, 'x', [1, 16], x);
    assert.equal(y.length, 8);
    assert.ok(
      y.every((v) => v === 0),
      `y ${y}`,
    );
    const yLive = await runOne(live, 'x', [1, 16], x);
    assert.ok(
      yLive.some((v) => v > 0),
      `without the bias y ${yLive}`,
    );
  }
});

/**
 * Model diff on models the tests build and compress with the real compressors: how each
 * method's output pairs with the original (renamed, split into factors), the values
 * compared, the structure diff, the outputs run in onnxruntime, and files that do not pair.
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { CompressionOptions } from '../../../../src/shared/compress';
import type { ModelDiff } from '../../../../src/shared/diff';
import { compressModel } from '../../../../src/server/compress';
import { diffModels } from '../../../../src/server/diff';
import { dtypeChangeText } from '../../../../src/shared/diffText';
import { lowRankValues, normalValues } from '../../../support/matrices';
import { graph, model, node, tensor, valueInfo, writeModel } from '../../../support/onnxBuilder';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-diff-');

const SETTINGS = { 'validation.dimensions': { batch: 3 } };

let count = 0;
async function mlp(): Promise<string> {
  const m = model(
    graph({
      initializers: [
        tensor('fc1.weight', 'float32', [64, 48], lowRankValues(64, 48, 8, 1)),
        tensor('fc1.bias', 'float32', [48], normalValues(48, 2, 0.2)),
        tensor('fc2.weight', 'float32', [48, 16], normalValues(48 * 16, 3, 0.2)),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', 64])],
      outputs: [valueInfo('y', 'float32', ['batch', 16])],
      nodes: [
        node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
        node('Add', ['h0', 'fc1.bias'], ['h1']),
        node('Relu', ['h1'], ['h2']),
        node('MatMul', ['h2', 'fc2.weight'], ['y'], { name: 'fc2' }),
      ],
    }),
  );
  return writeModel(folder(), `mlp${count++}.onnx`, m);
}

async function compressed(
  options: CompressionOptions,
  tensors: readonly number[] = [],
): Promise<{ path: string; output: string }> {
  const path = await mlp();
  const report = await compressModel(path, { tensors, options }, { settings: SETTINGS });
  return { path, output: report.output };
}

function pairOf(diff: ModelDiff, name: string) {
  const pair = diff.pairs.find((p) => p.name === name);
  assert.ok(pair, `no pair for ${name}`);
  return pair;
}

test('int8: each weight pairs with its _quantized codes through its node, the scale is a companion, DequantizeLinear is inserted', async () => {
  const { path, output } = await compressed({ method: 'int8' });
  const diff = await diffModels(path, output, { outputs: true, settings: SETTINGS });
  assert.deepEqual(diff.onlyA, []);
  assert.deepEqual(diff.onlyB, []);
  assert.deepEqual(diff.pairedBy, { name: 1, node: 2, factors: 0 });
  const fc1 = pairOf(diff, 'fc1.weight');
  assert.deepEqual(fc1.namesB, ['fc1.weight_quantized']);
  assert.equal(fc1.pairing, 'node');
  assert.deepEqual(fc1.companionsB, ['fc1.weight_scale']);
  assert.equal(fc1.encodingB, 'int8 per-channel');
  // int8 codes plus 48 float32 scales.
  assert.equal(fc1.bytesA, 64 * 48 * 4);
  assert.equal(fc1.bytesB, 64 * 48 + 48 * 4);
  assert.ok(fc1.values!.relativeError > 0 && fc1.values!.relativeError < 0.01);
  assert.ok(fc1.values!.cosine > 0.9999);
  assert.ok(fc1.changed);
  const bias = pairOf(diff, 'fc1.bias');
  assert.equal(bias.changed, false);
  assert.equal(bias.values!.identical, 1);
  assert.equal(bias.values!.relativeError, 0);
  const structure = diff.structure!;
  assert.deepEqual(structure.opCountChanges, { DequantizeLinear: 2 });
  assert.deepEqual(structure.counts, { added: 2, removed: 0, changed: 0, split: 0 });
  assert.deepEqual(
    structure.changes.map((c) => c.after![0]!.op),
    ['DequantizeLinear', 'DequantizeLinear'],
  );
  const y = diff.outputs!.outputs[0]!;
  assert.equal(y.output, 'y');
  assert.ok(y.cosine > 0.999 && y.relativeL2 > 0 && y.relativeL2 < 0.05, JSON.stringify(y));
  assert.match(diff.outputs!.inputs, /x \[3, 64\]/);
});

test('low rank: W pairs with its two factors, their product is compared, and each MatMul is split in two', async () => {
  // fc1.weight has rank 8, so its rank-8 factors reproduce it to float32 rounding.
  const { path, output } = await compressed({ method: 'lowrank', rank: 8 });
  const diff = await diffModels(path, output);
  const fc1 = pairOf(diff, 'fc1.weight');
  assert.equal(fc1.pairing, 'factors');
  assert.deepEqual(fc1.namesB, ['fc1.weight_lowrank_a', 'fc1.weight_lowrank_b']);
  assert.deepEqual(fc1.shapeB, [
    [64, 8],
    [8, 48],
  ]);
  assert.equal(fc1.bytesB, (64 * 8 + 8 * 48) * 4);
  assert.ok(fc1.values!.relativeError < 1e-5, `${fc1.values!.relativeError}`);
  // fc2.weight is full rank: rank 8 loses much of it.
  const fc2 = pairOf(diff, 'fc2.weight');
  assert.equal(fc2.pairing, 'factors');
  assert.ok(fc2.values!.relativeError > 0.2, `${fc2.values!.relativeError}`);
  const structure = diff.structure!;
  assert.deepEqual(structure.opCountChanges, { MatMul: 2 });
  assert.deepEqual(structure.counts, { added: 0, removed: 0, changed: 0, split: 2 });
  const split = structure.changes.find((c) => c.before?.name === 'fc1')!;
  assert.equal(split.kind, 'split');
  assert.deepEqual(
    split.after!.map((n) => [n.name, n.op]),
    [
      ['fc1_lowrank_1', 'MatMul'],
      ['fc1_lowrank_2', 'MatMul'],
    ],
  );
});

test('int4 MatMulNBits and fp16: renamed weights pair by node with errors in the expected range', async () => {
  const int4 = await compressed({ method: 'int4', blockSize: 32 });
  const diff4 = await diffModels(int4.path, int4.output);
  const w4 = pairOf(diff4, 'fc2.weight');
  assert.deepEqual(w4.namesB, ['fc2.weight_nbits']);
  assert.ok(w4.values!.relativeError > 0.01 && w4.values!.relativeError < 0.2);
  assert.deepEqual(diff4.structure!.opCountChanges, { MatMul: -2, MatMulNBits: 2 });
  const changed = diff4.structure!.changes.find((c) => c.before?.name === 'fc2')!;
  assert.equal(changed.kind, 'changed');
  assert.ok(changed.differences!.includes('op'));

  const half = await compressed({ method: 'fp16' });
  const diff16 = await diffModels(half.path, half.output);
  const w16 = pairOf(diff16, 'fc1.weight');
  assert.deepEqual(w16.dtypeB, ['float16']);
  assert.equal(w16.bytesB, w16.bytesA / 2);
  // float16 keeps 11 significant bits: relative error ≈ 2^-12.
  assert.ok(w16.values!.relativeError > 1e-5 && w16.values!.relativeError < 5e-4);
});

test('prune keeps names: the share of identical values is the kept share', async () => {
  const { path, output } = await compressed({ method: 'prune', sparsity: 0.5 });
  const diff = await diffModels(path, output);
  const fc2 = pairOf(diff, 'fc2.weight');
  assert.equal(fc2.pairing, 'name');
  assert.ok(fc2.changed);
  assert.ok(Math.abs(fc2.values!.identical - 0.5) < 0.01, `${fc2.values!.identical}`);
  assert.equal(diff.structure!.counts.added + diff.structure!.counts.changed, 0);
});

test('safetensors with a known change: the figures match the arithmetic', async () => {
  const n = 1000;
  const base = Float32Array.from(normalValues(n, 7, 1));
  const tuned = base.map((v, i) => (i < 250 ? v : v * 1.1));
  const dir = join(folder(), 'st');
  const a = await writeSafetensors(join(dir, 'a.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [10, 100], data: base },
  ]);
  const b = await writeSafetensors(join(dir, 'b.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [10, 100], data: tuned },
  ]);
  const diff = await diffModels(a, b);
  const w = pairOf(diff, 'w');
  let dd = 0;
  let aa = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    dd += (tuned[i]! - base[i]!) ** 2;
    aa += base[i]! ** 2;
    max = Math.max(max, Math.abs(tuned[i]! - base[i]!));
  }
  assert.ok(Math.abs(w.values!.relativeError - Math.sqrt(dd / aa)) < 1e-9);
  assert.equal(w.values!.maxAbsDiff, max);
  assert.equal(w.values!.identical, 0.25);
  assert.equal(diff.structure, undefined);
});

test('different architectures: nothing pairs, and the notes say what could not be paired', async () => {
  const dir = join(folder(), 'arch');
  const a = await writeSafetensors(join(dir, 'bert.safetensors'), [
    { name: 'encoder.layer.0.weight', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
    { name: 'encoder.layer.1.weight', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
  ]);
  const b = await writeSafetensors(join(dir, 'gpt.safetensors'), [
    { name: 'h.0.attn.weight', dtype: 'F32', shape: [8, 2], data: new Float32Array(16) },
  ]);
  const diff = await diffModels(a, b);
  assert.equal(diff.pairs.length, 0);
  assert.deepEqual(
    diff.onlyA.map((t) => t.name),
    ['encoder.layer.0.weight', 'encoder.layer.1.weight'],
  );
  assert.deepEqual(
    diff.onlyB.map((t) => t.name),
    ['h.0.attn.weight'],
  );
  assert.match(diff.notes[0]!, /no tensor of bert\.safetensors pairs with one of gpt\.safetensors/);
  assert.match(
    diff.notes[1]!,
    /2 of 2 tensors of bert\.safetensors \(32 parameters\) have no counterpart/,
  );
});

test('safetensors int8 + scales: the decoded values are compared with the floats, and the scales are companions', async () => {
  const dir = join(folder(), 'st-int8');
  const path = await writeSafetensors(join(dir, 'w.safetensors'), [
    {
      name: 'fc.weight',
      dtype: 'F32',
      shape: [16, 32],
      data: Float32Array.from(normalValues(512, 11, 0.3)),
    },
  ]);
  const report = await compressModel(path, {
    tensors: [],
    options: { method: 'int8', storeQuantized: true },
  });
  const diff = await diffModels(path, report.output);
  const fc = pairOf(diff, 'fc.weight');
  assert.deepEqual(fc.companionsB, ['fc.weight.scale']);
  // The stored type, as the overview's bytes by type names it: int8 codes, not the decoded floats.
  assert.equal(fc.dtypeA, 'float32');
  assert.deepEqual(fc.dtypeB, ['int8']);
  assert.equal(dtypeChangeText(fc), 'float32 → int8 (int8 per-channel)');
  assert.equal(fc.bytesB, 16 * 32 + 16 * 4);
  assert.equal(fc.valuesSkipped, undefined);
  // Per-channel int8 of normal values: small but nonzero error, every value changed a little.
  assert.ok(
    fc.values!.relativeError > 0 && fc.values!.relativeError < 0.02,
    String(fc.values!.relativeError),
  );
  assert.ok(fc.values!.cosine > 0.999);
  assert.deepEqual(diff.onlyB, []);
});

test('Silero VAD v5 and its int8 copy: every tensor pairs, weights in If branches by node, the Reshape shapes are companions', async () => {
  const silero = join(folder(), 'silero_vad_v5.onnx');
  await copyFile(resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), silero);
  const report = await compressModel(silero, { tensors: [], options: { method: 'int8' } });
  const diff = await diffModels(silero, report.output);
  assert.deepEqual(diff.onlyA, []);
  assert.deepEqual(diff.onlyB, []);
  assert.equal(diff.pairedBy.node, 16);
  assert.equal(diff.structure!.opCountChanges.DequantizeLinear, 16);
  const conv = pairOf(diff, 'If_0_then_branch__Inline_0__encoder.0.reparam_conv.weight');
  assert.deepEqual(conv.companionsB, [
    'If_0_then_branch__Inline_0__encoder.0.reparam_conv.weight_scale',
    'If_0_then_branch__Inline_0__encoder.0.reparam_conv.weight_shape',
  ]);
  assert.ok(conv.values!.relativeError > 0 && conv.values!.relativeError < 0.05);
});

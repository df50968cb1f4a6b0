/**
 * Compression settings in words: a per-tensor compression (a plan) of a real safetensors
 * file reports every setting it used, not the one covering the most bytes alone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { compressModel } from '../../../src/server/compress';
import { compressPerTensor } from '../../../src/server/compress/perTensor';
import {
  describeMethods,
  methodShareLines,
  methodsHeadline,
} from '../../../src/shared/compressText';
import { makeTempDir, writeSafetensors } from '../../support/safetensorsBuilder';

let dir: string;
let remove: () => Promise<void>;
let model: string;

before(async () => {
  ({ dir, remove } = await makeTempDir('layerlens-text-'));
  const matrix = (rows: number, cols: number, seed: number) =>
    new Float32Array(rows * cols).map((_, k) => Math.sin(seed * 13 + k * 0.37));
  model = await writeSafetensors(path.join(dir, 'mixed.safetensors'), [
    { name: 'a.weight', dtype: 'F32', shape: [32, 64], data: matrix(32, 64, 1) },
    { name: 'b.weight', dtype: 'F32', shape: [16, 64], data: matrix(16, 64, 2) },
    { name: 'c.weight', dtype: 'F32', shape: [16, 32], data: matrix(16, 32, 3) },
  ]);
});

after(() => remove());

test('a mixed compression names every setting, the most bytes first', async () => {
  const report = await compressPerTensor(model, [
    { tensor: 'b.weight', options: { method: 'fp16' } },
    { tensor: 'a.weight', options: { method: 'int8', storeQuantized: true } },
    { tensor: 'c.weight', options: { method: 'fp16' } },
  ]);
  assert.equal(methodsHeadline(report), 'mixed (2 methods)');
  assert.deepEqual(methodShareLines(report), [
    'int8 per channel, stored as int8 + scales: 1 tensor, 8.00 KB',
    'float16 weights: 2 tensors, 6.00 KB',
  ]);
  assert.equal(
    describeMethods(report),
    'mixed (2 methods: int8 per channel, stored as int8 + scales: 1 tensor, 8.00 KB; float16 weights: 2 tensors, 6.00 KB)',
  );
  assert.equal(report.method, 'int8', 'the field naming one method keeps the largest share');
});

test('a compression with one method says it alone', async () => {
  const report = await compressModel(model, { tensors: [], options: { method: 'fp16' } });
  assert.equal(report.methods, undefined);
  assert.equal(methodsHeadline(report), 'float16 weights');
  assert.deepEqual(methodShareLines(report), []);
  const plan = await compressPerTensor(model, [
    { tensor: 'a.weight', options: { method: 'fp16' } },
  ]);
  assert.equal(methodsHeadline(plan), 'float16 weights', 'a plan of one setting is not mixed');
});

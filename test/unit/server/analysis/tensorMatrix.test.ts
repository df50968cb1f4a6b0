import assert from 'node:assert/strict';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  loadTensorValues,
  matrixFileSource,
  readMatrixFromFile,
  tensorMatrixShape,
} from '../../../../src/server/analysis/tensorMatrix';
import {
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../../../../src/server/compress/kernels';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import { gaussianMatrix } from '../../../support/matrices';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-matrix-file-');

const ROWS = 37;
const COLS = 29;

async function model(name: string) {
  const values = Float32Array.from(gaussianMatrix(ROWS, COLS, 7));
  const path = await writeSafetensors(join(dir(), name), [
    { name: 'f32', dtype: 'F32', shape: [ROWS, COLS], data: values },
    { name: 'f16', dtype: 'F16', shape: [ROWS, COLS], data: float32ToFloat16Bits(values) },
    { name: 'bf16', dtype: 'BF16', shape: [ROWS, COLS], data: float32ToBfloat16Bits(values) },
    { name: 'f64', dtype: 'F64', shape: [ROWS, COLS], data: Float64Array.from(values) },
  ]);
  return openModelFile(path);
}

test('a matrix read from its file in chunks holds the values loadTensorValues decodes', async () => {
  const opened = await model('every-type.safetensors');
  for (const entry of opened.tensors) {
    const shape = tensorMatrixShape(entry, true);
    const source = matrixFileSource(entry, shape)!;
    const expected = Array.from(await loadTensorValues(entry, shape));
    // Chunks that end inside a row (and one that holds the whole matrix).
    for (const chunkBytes of [24, 1000, 1 << 20]) {
      const values = await readMatrixFromFile(source, chunkBytes);
      assert.equal(values.length, ROWS * COLS, entry.info.name);
      // float32 and the half types widen to float32; float64 stays float64.
      assert.equal(values instanceof Float64Array, entry.info.name === 'f64', entry.info.name);
      assert.deepEqual(
        Array.from(values),
        expected,
        `${entry.info.name}, ${chunkBytes}-byte chunks`,
      );
    }
  }
});

test('a buffer large enough is filled from its start and reused; a smaller one is not', async () => {
  const opened = await model('reuse.safetensors');
  const entry = opened.tensors.find((tensor) => tensor.info.name === 'bf16')!;
  const shape = tensorMatrixShape(entry, true);
  const source = matrixFileSource(entry, shape)!;
  const expected = Array.from(await loadTensorValues(entry, shape));
  const large = new Float32Array(ROWS * COLS + 5).fill(Number.NaN);
  const into = await readMatrixFromFile(source, 1000, large);
  assert.equal(into.buffer, large.buffer);
  assert.equal(into.length, ROWS * COLS);
  assert.deepEqual(Array.from(into), expected);
  const small = new Float32Array(ROWS * COLS - 1);
  const fresh = await readMatrixFromFile(source, 1000, small);
  assert.notEqual(fresh.buffer, small.buffer);
  assert.deepEqual(Array.from(fresh), expected);
});

test('a file cut short after it was opened is reported with its name', async () => {
  const opened = await model('cut.safetensors');
  const entry = opened.tensors.find((tensor) => tensor.info.name === 'bf16')!;
  const source = matrixFileSource(entry, tensorMatrixShape(entry, true))!;
  await truncate(opened.path, source.offset + 100);
  await assert.rejects(readMatrixFromFile(source), (error: unknown) => {
    assert.ok(error instanceof ModelFileError);
    assert.match(error.message, /cut\.safetensors/);
    assert.match(error.message, /ends at byte/);
    return true;
  });
});

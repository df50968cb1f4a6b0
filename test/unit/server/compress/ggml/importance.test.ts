/**
 * Importance matrices: llama-imatrix's legacy `.dat` and its GGUF form read to the same
 * values, malformed files refused naming the file, and the quantizers weighted by the
 * matrix as llama.cpp's quant_weights: the favoured columns' error drops.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { quantizeGgml, roundTripGgml } from '../../../../../src/server/compress/ggml';
import {
  importanceOf,
  readImportanceMatrix,
} from '../../../../../src/server/compress/ggml/importance';
import { ggmlTypeErrors } from '../../../../../src/server/compress/ggml/typeErrors';
import { ModelFileError } from '../../../../../src/server/formats/modelFileError';
import type { GgmlQuantType } from '../../../../../src/shared/compressMethods';
import { writeImatrixDat, writeImatrixGguf } from '../../../../support/ggufFixtures';
import { makeTempDir } from '../../../../support/safetensorsBuilder';

const COLUMNS = 256;
const ROWS = 64;
const CALLS = 4;

/** Column j is favoured when j % 16 < 4: a quarter of every group of 16 and of 32. */
const favoured = (column: number): boolean => column % 16 < 4;
const IMPORTANCE = Float32Array.from({ length: COLUMNS }, (_, j) => (favoured(j) ? 64 : 1 / 64));

/** Gaussian weights from a fixed linear congruential generator. */
function weights(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return Float32Array.from(
    { length: count },
    () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * 0.02,
  );
}

/** ‖W − Ŵ‖/‖W‖ over the favoured columns only. */
function favouredError(values: Float32Array, restored: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    if (!favoured(i % COLUMNS)) continue;
    diff += (values[i]! - restored[i]!) ** 2;
    norm += values[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

describe('importance matrices', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let dat: string;
  const entries = new Map([
    ['blk.0.ffn_up.weight', IMPORTANCE],
    ['blk.0.ffn_down.weight', Float32Array.from({ length: 512 }, (_, j) => 1 + (j % 3))],
  ]);
  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-imatrix-'));
    dat = join(dir, 'imatrix.dat');
    writeImatrixDat(dat, entries, CALLS);
  });
  after(() => remove());

  it('reads the legacy .dat and the GGUF form to the same mean squares', () => {
    const legacy = readImportanceMatrix(dat);
    assert.deepEqual([...legacy.keys()], [...entries.keys()]);
    for (const [name, values] of entries) assert.deepEqual(legacy.get(name), values, name);
    const ggufPath = join(dir, 'imatrix.gguf');
    writeImatrixGguf(dat, ggufPath);
    assert.deepEqual(readImportanceMatrix(ggufPath), legacy);
    assert.deepEqual(importanceOf(legacy, 'm.gguf', 'blk.0.ffn_up.weight', COLUMNS), IMPORTANCE);
    assert.equal(importanceOf(legacy, 'm.gguf', 'output.weight', COLUMNS), undefined);
    assert.throws(
      () => importanceOf(legacy, 'm.gguf', 'blk.0.ffn_up.weight', 512),
      /m\.gguf.*256 values for "blk\.0\.ffn_up\.weight", whose rows have 512/,
    );
  });

  it('refuses truncated and oversized counts, naming the file', () => {
    const bytes = readFileSync(dat);
    const truncated = join(dir, 'truncated.dat');
    writeFileSync(truncated, bytes.subarray(0, 100));
    assert.throws(
      () => readImportanceMatrix(truncated),
      (error: unknown) =>
        error instanceof ModelFileError &&
        /truncated\.dat/.test(error.message) &&
        /ends inside the values of "blk\.0\.ffn_up\.weight"/.test(error.message),
    );
    const huge = join(dir, 'huge.dat');
    const patched = Buffer.from(bytes);
    patched.writeInt32LE(-5, 0);
    writeFileSync(huge, patched);
    assert.throws(() => readImportanceMatrix(huge), /the entry count is -5, not a count up to/);
  });

  for (const type of ['Q6_K', 'Q5_K', 'Q4_K', 'Q2_K', 'IQ4_NL'] as GgmlQuantType[]) {
    it(`${type}: weighting changes the scales and lowers the favoured columns' error`, () => {
      const values = weights(ROWS * COLUMNS, 7);
      const plain = quantizeGgml(type, values);
      const weighted = quantizeGgml(type, values, IMPORTANCE);
      assert.notDeepEqual(weighted, plain, 'the chosen scales differ');
      const plainError = favouredError(values, roundTripGgml(type, values));
      const weightedError = favouredError(values, roundTripGgml(type, values, IMPORTANCE));
      assert.ok(
        weightedError < 0.97 * plainError,
        `${type}: favoured-column error ${weightedError} with the matrix, ${plainError} without`,
      );
      // typeErrors weighs the error by √importance: the weighted quantization scores better.
      const withMatrix = ggmlTypeErrors(values, COLUMNS, [type], Infinity, IMPORTANCE).get(type)!;
      const plainScaled = favouredAndWeighted(values, roundTripGgml(type, values));
      assert.ok(
        withMatrix.relativeError < plainScaled,
        `${type}: ${withMatrix.relativeError} vs ${plainScaled}`,
      );
    });
  }
});

/** ‖(W − Ŵ)·√importance‖/‖W·√importance‖. */
function favouredAndWeighted(values: Float32Array, restored: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    const w = IMPORTANCE[i % COLUMNS]!;
    diff += w * (values[i]! - restored[i]!) ** 2;
    norm += w * values[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

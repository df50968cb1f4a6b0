/**
 * The spectrum helpers the Spectrum tab reads its numbers from, at values worked out by
 * hand: singular values 3, 2, 1 hold energies 9, 4, 1 (‖W‖²_F = 14 when they are all).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cumulativeEnergy,
  hasSpectralMetrics,
  hasSpectrum,
  lowRankParameters,
  maxSavingRank,
  rankForEnergy,
  relativeReconstructionError,
} from '../../../src/shared/spectrum';

const SIGMA = [3, 2, 1];

test('a rank-r factorization of rows × cols stores r · (rows + cols) values', () => {
  assert.equal(lowRankParameters(512, 128, 10), 6400);
  assert.equal(lowRankParameters(3, 6, 1), 9);
});

test('the largest saving rank stores fewer values than the dense matrix, one more does not', () => {
  // 512 · 128 / (512 + 128) = 102.4.
  assert.equal(maxSavingRank(512, 128), 102);
  assert.ok(lowRankParameters(512, 128, 102) < 512 * 128);
  assert.ok(lowRankParameters(512, 128, 103) >= 512 * 128);
  // 3 · 6 / 9 = 2 exactly: rank 2 stores 18 values, as many as the matrix.
  assert.equal(maxSavingRank(3, 6), 1);
  assert.equal(maxSavingRank(4, 4), 1);
});

test('cumulative energy: kept fractions of ‖W‖²_F, with the energy of values not computed', () => {
  assert.deepEqual(cumulativeEnergy(SIGMA, 14), [9 / 14, 13 / 14, 1]);
  // Top-k values of a matrix with more energy than they hold never reach 1.
  assert.deepEqual(cumulativeEnergy(SIGMA, 20), [9 / 20, 13 / 20, 14 / 20]);
  assert.deepEqual(cumulativeEnergy([0, 0], 0), [1, 1], 'an all-zero matrix keeps everything');
});

test('the rank for an energy target is the smallest that reaches it', () => {
  assert.equal(rankForEnergy(SIGMA, 14, 0.5), 1);
  assert.equal(rankForEnergy(SIGMA, 14, 0.9), 2);
  assert.equal(rankForEnergy(SIGMA, 14, 13 / 14), 2, 'a target met exactly');
  assert.equal(rankForEnergy(SIGMA, 14, 0.93), 3);
  assert.equal(rankForEnergy(SIGMA, 14, 1), 3);
  assert.equal(rankForEnergy(SIGMA, 20, 0.9), 3, 'never reached: every value computed');
});

test('the relative error of the best rank-r approximation is √(energy left / ‖W‖²_F)', () => {
  assert.equal(relativeReconstructionError(SIGMA, 14, 0), 1);
  assert.equal(relativeReconstructionError(SIGMA, 14, 1), Math.sqrt(5 / 14));
  assert.equal(relativeReconstructionError(SIGMA, 14, 2), Math.sqrt(1 / 14));
  assert.equal(relativeReconstructionError(SIGMA, 14, 3), 0);
  assert.equal(relativeReconstructionError(SIGMA, 14, 7), 0, 'a rank past the values');
  assert.equal(relativeReconstructionError(SIGMA, 20, 3), Math.sqrt(6 / 20));
  assert.equal(relativeReconstructionError([], 0, 1), 0);
});

test('only non-empty floating-point matrices have a spectrum', () => {
  assert.equal(hasSpectrum({ shape: [4, 4], dtype: 'float32' }), true);
  assert.equal(hasSpectrum({ shape: [2, 3, 4], dtype: 'float32' }), true);
  assert.equal(hasSpectrum({ shape: [16], dtype: 'float32' }), false);
  assert.equal(hasSpectrum({ shape: [0, 4], dtype: 'float32' }), false);
  assert.equal(hasSpectrum({ shape: [4, 4], dtype: 'int8' }), false);
});

test('spectral metrics unasked: weight matrices only, never scales, shapes or other matrices', () => {
  assert.equal(hasSpectralMetrics({ shape: [512, 128], dtype: 'float32' }, true), true);
  // A float matrix the compressor leaves alone (a quantization grid's scales, a constant).
  assert.equal(hasSpectralMetrics({ shape: [6, 1], dtype: 'float32' }, false), false);
  assert.equal(hasSpectralMetrics({ shape: [6], dtype: 'float32' }, true), false);
  assert.equal(hasSpectralMetrics({ shape: [], dtype: 'int64' }, false), false);
});

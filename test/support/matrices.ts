/**
 * Test matrices with known singular values: seeded Gaussian matrices, random orthogonal
 * factors, and W = U·diag(σ)·Vᵀ for a chosen σ. Row-major, float64.
 */

import { seededNormal } from '../../src/server/runtime/sampleInputs';

/** `count` values of N(0, scale²) from the sample-input generator's seeded normal. */
export function normalValues(count: number, seed: number, scale: number): number[] {
  const next = seededNormal(seed);
  return Array.from({ length: count }, () => next() * scale);
}

/** A rows × cols matrix of exactly rank `rank`: the product of two random factors (N(0, 0.25)). */
export function lowRankValues(rows: number, cols: number, rank: number, seed: number): number[] {
  const a = normalValues(rows * rank, seed, 0.5);
  const b = normalValues(rank * cols, seed + 1, 0.5);
  const out: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += a[i * rank + k]! * b[k * cols + j]!;
      out.push(sum);
    }
  }
  return out;
}

/** Deterministic standard normal numbers (mulberry32 + Box–Muller). */
export function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function gaussianMatrix(rows: number, cols: number, seed: number): Float64Array {
  const next = gaussian(seed);
  return Float64Array.from({ length: rows * cols }, next);
}

/** A rows × cols Gaussian matrix scaled by `scale`, as the plain numbers a tensor builder takes. */
export function scaledGaussian(rows: number, cols: number, seed: number, scale: number): number[] {
  return Array.from(gaussianMatrix(rows, cols, seed), (v) => v * scale);
}

/**
 * An n × k matrix with orthonormal columns (row-major): modified Gram–Schmidt, twice, on a
 * Gaussian matrix.
 */
export function orthonormalColumns(n: number, k: number, seed: number): Float64Array {
  const q = gaussianMatrix(n, k, seed);
  for (let round = 0; round < 2; round++) {
    for (let j = 0; j < k; j++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += q[i * k + p]! * q[i * k + j]!;
        for (let i = 0; i < n; i++) q[i * k + j]! -= dot * q[i * k + p]!;
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += q[i * k + j]! ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < n; i++) q[i * k + j]! /= norm;
    }
  }
  return q;
}

/** W = U·diag(σ)·Vᵀ, rows × cols, with random orthonormal U, V and the given σ (length ≤ min). */
export function matrixWithSpectrum(
  rows: number,
  cols: number,
  sigma: readonly number[],
  seed: number,
): Float64Array {
  const r = sigma.length;
  const u = orthonormalColumns(rows, r, seed);
  const v = orthonormalColumns(cols, r, seed + 1);
  const w = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let p = 0; p < r; p++) {
      const scaled = u[i * r + p]! * sigma[p]!;
      if (scaled === 0) continue;
      for (let j = 0; j < cols; j++) w[i * cols + j]! += scaled * v[j * r + p]!;
    }
  }
  return w;
}

/** Largest |a_i − b_i| over the first `count` entries. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>, count: number): number {
  let worst = 0;
  for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jacobiSingularValues } from '../../../../src/server/analysis/jacobiSvd';
import { gaussianFill } from '../../../../src/server/analysis/randomizedSvd';
import {
  householderQr,
  isSmallForExactSvd,
  takesExactRoute,
  truncatedSvd,
  type TruncatedSvd,
} from '../../../../src/server/analysis/truncatedSvd';
import { relativeFrobeniusError } from '../../../../src/server/compress/kernels';
import {
  checkLowRankLimits,
  factoriseLowRank,
  LowRankRefusal,
  multiplyFactors,
} from '../../../../src/server/compress/lowrank';
import { sharedMatMulRuntime } from '../../../../src/server/runtime/matmul';
import { MAX_LOWRANK_ELEMENTS, MAX_LOWRANK_SIDE } from '../../../../src/shared/limits';
import { rankForEnergy } from '../../../../src/shared/spectrum';

const runtime = sharedMatMulRuntime('cpu');
const never = () => {};

function gaussian(count: number, seed: number): Float64Array {
  const values = new Float64Array(count);
  gaussianFill(values, seed);
  return values;
}

/** rows × cols = Q₁·diag(σ)·Q₂ᵀ with random orthonormal Q₁, Q₂ (row-major float32). */
function withSpectrum(rows: number, cols: number, sigma: readonly number[], seed: number) {
  const k = sigma.length;
  const left = householderQr(gaussian(rows * k, seed), rows, k).qT; // k × rows
  const right = householderQr(gaussian(cols * k, seed + 1), cols, k).qT; // k × cols
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += left[t * rows + i]! * sigma[t]! * right[t * cols + j]!;
      values[i * cols + j] = sum;
    }
  }
  return values;
}

async function rebuild(svd: TruncatedSvd): Promise<Float64Array> {
  const product = await runtime.gemm(
    { rows: svd.rows, cols: svd.rank, data: svd.scaledLeft },
    { rows: svd.rank, cols: svd.cols, data: svd.rightT },
  );
  return product.data;
}

function frobenius(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! ** 2;
  return Math.sqrt(sum);
}

/** ‖W − Ŵ‖_F against the Eckart–Young optimum √(Σ_{i≥r} σᵢ²). */
function errorRatio(
  values: Float32Array,
  rebuilt: ArrayLike<number>,
  sigma: Float64Array,
  r: number,
) {
  const difference = Float64Array.from(values, (v, i) => v - rebuilt[i]!);
  let optimal = 0;
  for (let i = r; i < sigma.length; i++) optimal += sigma[i]! ** 2;
  return frobenius(difference) / Math.sqrt(optimal);
}

test('Householder QR: Q has orthonormal columns and Q·R is the input, also for a rank-deficient one', () => {
  const m = 50;
  const n = 8;
  const columns = gaussian(m * n, 3);
  // Column 5 repeats column 1: rank 7.
  columns.copyWithin(5 * m, 1 * m, 2 * m);
  const original = columns.slice();
  const { qT, r } = householderQr(columns, m, n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      let dot = 0;
      for (let i = 0; i < m; i++) dot += qT[a * m + i]! * qT[b * m + i]!;
      assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-13, `QᵀQ[${a}, ${b}] = ${dot}`);
    }
  }
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let sum = 0;
      for (let t = 0; t <= j; t++) sum += qT[t * m + i]! * r[t * n + j]!;
      assert.ok(Math.abs(sum - original[j * m + i]!) < 1e-12);
    }
    for (let t = j + 1; t < n; t++) assert.equal(r[t * n + j], 0);
  }
});

test('exact route: a rank as large as the smaller side reconstructs within float rounding', async () => {
  for (const [rows, cols] of [
    [30, 20],
    [20, 30],
    [600, 24],
  ] as const) {
    const values = Float32Array.from(gaussian(rows * cols, rows + cols));
    const side = Math.min(rows, cols);
    assert.ok(takesExactRoute(rows, cols, side));
    const svd = await truncatedSvd(runtime, { rows, cols, data: values }, side, never);
    assert.match(svd.route, /Jacobi/);
    assert.ok(relativeFrobeniusError(values, await rebuild(svd)) < 1e-6);
  }
});

test('randomized route recovers an exactly rank-r matrix to float32 rounding', async () => {
  const rows = 320;
  const cols = 256;
  const sigma = Array.from({ length: 12 }, (_, i) => 100 / (i + 1));
  const values = withSpectrum(rows, cols, sigma, 11);
  for (const rank of [12, 20]) {
    assert.ok(!takesExactRoute(rows, cols, rank));
    const svd = await truncatedSvd(runtime, { rows, cols, data: values }, rank, never);
    assert.match(svd.route, /randomized/);
    assert.ok(relativeFrobeniusError(values, await rebuild(svd)) < 2e-6, svd.route);
    for (let i = 0; i < 12; i++) {
      assert.ok(Math.abs(svd.singularValues[i]! - sigma[i]!) < 1e-4 * sigma[0]!);
    }
  }
});

test('randomized route: error against the Eckart–Young optimum (Gaussian, and low rank plus noise)', async () => {
  const rows = 400;
  const cols = 300;
  const gaussianValues = Float32Array.from(gaussian(rows * cols, 21));
  const signal = withSpectrum(
    rows,
    cols,
    Array.from({ length: 30 }, (_, i) => 200 * 0.9 ** i),
    22,
  );
  const noise = gaussian(rows * cols, 23);
  const noisy = Float32Array.from(signal, (v, i) => v + 0.05 * noise[i]!);
  for (const [label, values] of [
    ['gaussian', gaussianValues],
    ['low rank + noise', noisy],
  ] as const) {
    const sigma = jacobiSingularValues(values, rows, cols);
    for (const rank of [10, 40]) {
      const svd = await truncatedSvd(runtime, { rows, cols, data: values }, rank, never);
      assert.match(svd.route, /randomized/);
      const ratio = errorRatio(values, await rebuild(svd), sigma, rank);
      // Within the signal's 30 components there is a gap at σ_r: the optimum to 1e-5. In
      // a flat spectrum (all of the Gaussian one, the noise beyond 30) within 1%.
      const bound = label === 'gaussian' || rank > 30 ? 1.01 : 1.00001;
      assert.ok(ratio >= 1 - 1e-6 && ratio <= bound, `${label}, rank ${rank}: ratio ${ratio}`);
      for (let i = 0; i < rank; i++) {
        assert.ok(
          svd.singularValues[i]! <= sigma[i]! * (1 + 1e-6),
          `${label}: σ${i} ${svd.singularValues[i]} ${sigma[i]}`,
        );
        // Where the spectrum has a gap the values are sharp; a flat one (Gaussian) only
        // gets the subspace's energy right, which is what the error bound above measures.
        if (label !== 'gaussian' && i < 30) {
          assert.ok(svd.singularValues[i]! >= sigma[i]! * 0.999, `${label}: σ${i}`);
        }
      }
    }
  }
});

test('energy target: the rank comes from the full spectrum, and the factors reach it', async () => {
  const rows = 300;
  const cols = 260;
  const sigma = Array.from({ length: 60 }, (_, i) => 50 * 0.93 ** i);
  const values = withSpectrum(rows, cols, sigma, 31);
  assert.ok(!isSmallForExactSvd(rows, cols));
  let total = 0;
  for (const s of sigma) total += s * s;
  for (const energy of [0.5, 0.9, 0.99]) {
    const expected = rankForEnergy(sigma, total, energy);
    const result = await factoriseLowRank(values, rows, cols, { energy });
    assert.equal(result.rank, expected, `energy ${energy}`);
    assert.match(result.route, /randomized/);
    const product = await multiplyFactors(result.a, result.b, rows, result.rank, cols);
    let dropped = 0;
    for (let i = expected; i < sigma.length; i++) dropped += sigma[i]! ** 2;
    const error = relativeFrobeniusError(values, product);
    assert.ok(Math.abs(error - Math.sqrt(dropped / total)) < 1e-4, `${error}`);
  }
});

test('factorisation: refused ranks before any work, limits named, and cancellation between steps', async () => {
  const rows = 300;
  const cols = 260;
  const values = Float32Array.from(gaussian(rows * cols, 41));
  await assert.rejects(
    factoriseLowRank(values, rows, cols, { rank: 140 }),
    (error: unknown) =>
      error instanceof LowRankRefusal && /largest rank that saves is 139/.test(error.message),
  );
  await assert.rejects(factoriseLowRank(values, rows, cols, { rank: 0 }), RangeError);
  await assert.rejects(
    factoriseLowRank(new Float32Array(10), 3, 4, { rank: 1 }),
    /a 3 × 4 matrix needs 12 values, got 10/,
  );
  assert.throws(
    () => checkLowRankLimits(MAX_LOWRANK_SIDE + 1, MAX_LOWRANK_SIDE + 1),
    new RegExp(`smaller side ≤ ${MAX_LOWRANK_SIDE}`),
  );
  checkLowRankLimits(MAX_LOWRANK_SIDE, MAX_LOWRANK_ELEMENTS / MAX_LOWRANK_SIDE);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    factoriseLowRank(values, rows, cols, { rank: 8 }, { signal: controller.signal }),
    { name: 'AbortError' },
  );
  // Cancelled in the middle: the check is polled between the products.
  let polls = 0;
  await assert.rejects(
    factoriseLowRank(values, rows, cols, { rank: 8 }, { isCancelled: () => ++polls > 3 }),
    { name: 'AbortError' },
  );
  assert.ok(polls > 3);
  polls = 0;
  await assert.rejects(
    factoriseLowRank(values, rows, cols, { energy: 0.3 }, { isCancelled: () => ++polls > 2 }),
    { name: 'AbortError' },
  );
});

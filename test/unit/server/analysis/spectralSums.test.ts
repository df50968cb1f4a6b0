import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { AnalysisService } from '../../../../src/server/analysisService';
import { float32ToBfloat16Bits } from '../../../../src/server/compress/kernels';
import { ModelService } from '../../../../src/server/modelService';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { randomizedRange } from '../../../../src/server/analysis/randomizedSvd';
import {
  effectiveRank,
  effectiveRankOfSums,
  spectralMetrics,
  spectralSumsOf,
} from '../../../../src/server/analysis/spectralMetrics';
import {
  estimateSpectralSums,
  gaussQuadrature,
} from '../../../../src/server/analysis/spectralSums';
import {
  computeSpectrumInThread,
  FAST_FULL_MAX_SIDE,
  FAST_TOPK,
  frobeniusSquaredOf,
  resolveMethod,
  resolveTopK,
} from '../../../../src/server/analysis/spectrum';
import { MatMulRuntime } from '../../../../src/server/runtime/matmul';
import { gaussianMatrix, matrixWithSpectrum } from '../../../support/matrices';

const runtime = new MatMulRuntime('cpu');
after(() => runtime.dispose());
const noCancel = () => {};

/** σᵢ = i^(−power), i = 1…count. */
function powerLawSpectrum(count: number, power: number): number[] {
  return Array.from({ length: count }, (_, i) => (i + 1) ** -power);
}

describe('Gauss quadrature of a tridiagonal matrix', () => {
  test('[[2, 1], [1, 2]]: nodes 1 and 3, weights ½ each', () => {
    const { nodes, weights } = gaussQuadrature([2, 2], [1]);
    const order = [...nodes.keys()].sort((a, b) => nodes[a]! - nodes[b]!);
    assert.ok(Math.abs(nodes[order[0]!]! - 1) < 1e-14);
    assert.ok(Math.abs(nodes[order[1]!]! - 3) < 1e-14);
    for (const weight of weights) assert.ok(Math.abs(weight - 0.5) < 1e-14);
  });

  test('the 1-2-1 matrix: weights sum to 1, Σ w·θ = T₁₁ and Σ w·θ² = (T²)₁₁', () => {
    const m = 12;
    const { nodes, weights } = gaussQuadrature(new Array(m).fill(2), new Array(m - 1).fill(-1));
    let w0 = 0;
    let w1 = 0;
    let w2 = 0;
    for (let k = 0; k < m; k++) {
      w0 += weights[k]!;
      w1 += weights[k]! * nodes[k]!;
      w2 += weights[k]! * nodes[k]! ** 2;
    }
    assert.ok(Math.abs(w0 - 1) < 1e-13);
    assert.ok(Math.abs(w1 - 2) < 1e-13);
    assert.ok(Math.abs(w2 - 5) < 1e-13);
    // Its eigenvalues are 2 − 2cos(kπ/(m+1)).
    const expected = Array.from(
      { length: m },
      (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (m + 1)),
    );
    const sorted = Float64Array.from(nodes).sort();
    for (let k = 0; k < m; k++) assert.ok(Math.abs(sorted[k]! - expected[k]!) < 1e-13);
  });
});

describe('spectral sums', () => {
  test('the effective rank from the sums is that of the values', () => {
    const values = powerLawSpectrum(50, 0.7);
    const exact = effectiveRank(values);
    assert.ok(Math.abs(effectiveRankOfSums(spectralSumsOf(values)) - exact) < 1e-12 * exact);
    // Equal values: the rank is their count; one value: 1; none: 0.
    assert.ok(Math.abs(effectiveRank([3, 3, 3, 3]) - 4) < 1e-12);
    assert.equal(effectiveRank([5]), 1);
    assert.equal(effectiveRank([]), 0);
  });

  test('equal singular values are estimated exactly, wide and tall', async () => {
    // A = c·[I 0]: G = c²·I, every quadrature node is c², every probe weight is the side.
    for (const [rows, cols] of [
      [40, 70],
      [70, 40],
    ] as const) {
      const c = 2.5;
      const a = new Float32Array(rows * cols);
      for (let i = 0; i < Math.min(rows, cols); i++) a[i * cols + i] = c;
      const sums = await estimateSpectralSums(
        runtime,
        { rows, cols, data: a },
        frobeniusSquaredOf(a),
        noCancel,
      );
      const side = Math.min(rows, cols);
      assert.ok(Math.abs(sums.sigma / (side * c) - 1) < 1e-6, `${rows} × ${cols}: ${sums.sigma}`);
      assert.ok(Math.abs(sums.sigmaLogSigma / (side * c * Math.log(c)) - 1) < 1e-5);
      assert.ok(Math.abs(effectiveRankOfSums(sums) - side) < 1e-3 * side);
    }
  });

  test('a power-law spectrum: within 2% of the exact sums, closer with the top values deflated', async () => {
    const rows = 160;
    const cols = 240;
    const sigma = powerLawSpectrum(rows, 0.5);
    const a = Float32Array.from(matrixWithSpectrum(rows, cols, sigma, 11));
    const matrix = { rows, cols, data: a };
    const exact = spectralSumsOf(sigma);
    const exactRank = effectiveRankOfSums(exact);
    const frobenius = frobeniusSquaredOf(a);
    const plain = await estimateSpectralSums(runtime, matrix, frobenius, noCancel);
    const top = await randomizedRange(runtime, matrix, 32, noCancel, 2);
    const deflated = await estimateSpectralSums(runtime, matrix, frobenius, noCancel, {
      deflation: top,
    });
    const error = (estimate: { sigma: number; sigmaLogSigma: number }) => ({
      sigma: Math.abs(estimate.sigma / exact.sigma - 1),
      rank: Math.abs(effectiveRankOfSums(estimate) / exactRank - 1),
    });
    assert.ok(error(plain).sigma < 0.02, `plain Σσ off by ${error(plain).sigma}`);
    assert.ok(error(plain).rank < 0.02, `plain effective rank off by ${error(plain).rank}`);
    assert.ok(error(deflated).sigma < 0.01, `deflated Σσ off by ${error(deflated).sigma}`);
    assert.ok(
      error(deflated).rank < 0.01,
      `deflated effective rank off by ${error(deflated).rank}`,
    );
    // Same seed, same estimate.
    const again = await estimateSpectralSums(runtime, matrix, frobenius, noCancel);
    assert.equal(again.sigma, plain.sigma);
  });

  test('a tall matrix read transposed gives the wide transpose’s top values and deflated sums', async () => {
    const rows = 160;
    const cols = 240;
    const sigma = powerLawSpectrum(rows, 0.5);
    const wide = Float32Array.from(matrixWithSpectrum(rows, cols, sigma, 5));
    const tall = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) tall[c * rows + r] = wide[r * cols + c]!;
    }
    const frobenius = frobeniusSquaredOf(wide);
    const wideMatrix = { rows, cols, data: wide };
    const tallMatrix = { rows: cols, cols: rows, data: tall };
    const fromWide = await randomizedRange(runtime, wideMatrix, 32, noCancel, 2);
    const fromTall = await randomizedRange(runtime, tallMatrix, 32, noCancel, 2, true);
    assert.equal(fromTall.basis.rows, rows);
    for (let i = 0; i < 32; i++) {
      const relative = Math.abs(fromTall.eigenvalues[i]! / fromWide.eigenvalues[i]! - 1);
      assert.ok(
        relative < 1e-4,
        `eigenvalue ${i}: ${fromTall.eigenvalues[i]} against ${fromWide.eigenvalues[i]}`,
      );
    }
    const sumsWide = await estimateSpectralSums(runtime, wideMatrix, frobenius, noCancel, {
      deflation: fromWide,
    });
    const sumsTall = await estimateSpectralSums(runtime, tallMatrix, frobenius, noCancel, {
      deflation: fromTall,
    });
    assert.ok(Math.abs(sumsTall.sigma / sumsWide.sigma - 1) < 1e-4);
    assert.ok(Math.abs(effectiveRankOfSums(sumsTall) / effectiveRankOfSums(sumsWide) - 1) < 1e-4);
  });

  test('a deflation basis must be of vectors of the smaller side', async () => {
    const a = new Float32Array(30 * 20).fill(1);
    const basis = { rows: 30, cols: 4, data: new Float32Array(120) };
    await assert.rejects(
      estimateSpectralSums(runtime, { rows: 30, cols: 20, data: a }, 600, noCancel, {
        deflation: { basis, eigenvalues: [1, 1, 1, 1] },
      }),
      /basis of 20-vectors/,
    );
  });
});

describe("the 'fast' spectrum method", () => {
  test('small matrices get the full spectrum; k defaults to FAST_TOPK', () => {
    assert.equal(resolveMethod({ method: 'fast' }, FAST_FULL_MAX_SIDE), 'full');
    assert.equal(resolveMethod({ method: 'fast' }, FAST_FULL_MAX_SIDE + 1), 'fast');
    assert.equal(resolveTopK({ method: 'fast' }, 4096), FAST_TOPK);
    assert.equal(resolveTopK({ method: 'fast', k: 64 }, 4096), 64);
  });

  test('top values, stable rank and effective rank agree with the full spectrum', async () => {
    const rows = 1100;
    const cols = FAST_FULL_MAX_SIDE + 16;
    const values = Float32Array.from(gaussianMatrix(rows, cols, 5));
    // Columns scaled by a power law: a spread spectrum with a few large values.
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) values[r * cols + c]! *= (1 + c) ** -0.4;
    }
    const full = await computeSpectrumInThread(values, [rows, cols], { method: 'full' });
    const fast = await computeSpectrumInThread(values, [rows, cols], { method: 'fast' });
    assert.equal(fast.method, 'fast');
    assert.equal(fast.singularValues.length, FAST_TOPK);
    assert.match(fast.backend, /Lanczos quadrature/);
    const sigma1 = full.singularValues[0]!;
    for (let i = 0; i < 16; i++) {
      assert.ok(
        Math.abs(fast.singularValues[i]! - full.singularValues[i]!) < 1e-3 * sigma1,
        `σ${i + 1}: ${fast.singularValues[i]} vs ${full.singularValues[i]}`,
      );
    }
    const exact = spectralMetrics(full.singularValues, rows, cols, full.frobeniusSquared);
    const estimate = spectralMetrics(
      fast.singularValues,
      rows,
      cols,
      fast.frobeniusSquared,
      fast.sums,
    );
    assert.ok(Math.abs(estimate.stableRank / exact.stableRank - 1) < 1e-4);
    assert.ok(
      Math.abs(estimate.effectiveRank / exact.effectiveRank - 1) < 0.02,
      `effective rank ${estimate.effectiveRank} vs ${exact.effectiveRank}`,
    );
    assert.ok(estimate.alpha !== null);
  });
});

describe('the fast method in the analysis service', () => {
  test("a bfloat16 file: 'auto' is full, or fast under the setting; unknown methods are refused", async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'layerlens-fast-spectra-'));
    const models = new ModelService({ workerCount: 1 });
    const analysis = new AnalysisService(models);
    try {
      const rows = FAST_FULL_MAX_SIDE + 8;
      const cols = FAST_FULL_MAX_SIDE + 40;
      const values = Float32Array.from(gaussianMatrix(rows, cols, 3));
      const file = await writeSafetensors(path.join(folder, 'model.safetensors'), [
        { name: 'w', dtype: 'BF16', shape: [rows, cols], data: float32ToBfloat16Bits(values) },
      ]);
      analysis.setSpectrumMethod('fast');
      const fast = await analysis.spectrum(file, 0);
      assert.equal(fast.method, 'fast');
      assert.equal(fast.singularValues.length, FAST_TOPK);
      assert.equal((await analysis.spectrum(file, 0, { method: 'auto' })).method, 'fast');
      // Read and widened by the worker from the file, computed with single-threaded products:
      // the values computed here from the same bfloat16 values in memory.
      const bits = float32ToBfloat16Bits(values);
      const widened = new Float32Array(
        new Uint32Array(bits.length).map((_, i) => bits[i]! << 16).buffer,
      );
      const here = await computeSpectrumInThread(widened, [rows, cols], { method: 'fast' });
      for (let i = 0; i < FAST_TOPK; i++) {
        assert.ok(Math.abs(fast.singularValues[i]! / here.singularValues[i]! - 1) < 1e-6, `σ${i}`);
      }
      assert.ok(
        Math.abs(
          fast.metrics.effectiveRank /
            spectralMetrics(here.singularValues, rows, cols, here.frobeniusSquared, here.sums)
              .effectiveRank -
            1,
        ) < 1e-6,
      );
      analysis.setSpectrumMethod('auto');
      const full = await analysis.spectrum(file, 0);
      assert.equal(full.method, 'full');
      assert.equal(full.singularValues.length, rows);
      // A Gaussian matrix has no gap below σ₁, the randomized SVD's hardest case.
      assert.ok(Math.abs(fast.metrics.spectralNorm / full.metrics.spectralNorm - 1) < 1e-2);
      assert.ok(Math.abs(fast.metrics.effectiveRank / full.metrics.effectiveRank - 1) < 0.02);
      await assert.rejects(
        analysis.spectrum(file, 0, { method: 'exact' as never }),
        /unknown spectrum method "exact"/,
      );
    } finally {
      analysis.dispose();
      models.dispose();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

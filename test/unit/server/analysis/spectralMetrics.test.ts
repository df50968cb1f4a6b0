import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeSpectrumInThread } from '../../../../src/server/analysis/spectrum';
import {
  effectiveRank,
  energyRank,
  fitPowerLaw,
  MIN_POWER_LAW_TAIL,
  NO_SPECTRAL_METRICS,
  spectralMetrics,
} from '../../../../src/server/analysis/spectralMetrics';
import { rankForEnergy } from '../../../../src/shared/spectrum';
import { gaussian, gaussianMatrix, matrixWithSpectrum } from '../../../support/matrices';

/** Eigenvalues λ = σ² drawn from a Pareto law p(λ) ∝ λ^(−α), λ ≥ 1 (deterministic quantiles). */
function paretoSingularValues(count: number, alpha: number): number[] {
  const sigma: number[] = [];
  for (let i = 0; i < count; i++) {
    const u = (i + 0.5) / count;
    sigma.push(Math.sqrt(u ** (-1 / (alpha - 1))));
  }
  return sigma.sort((a, b) => b - a);
}

describe('rank metrics', () => {
  test('stable rank, effective rank, energy ranks and spectral norm by their formulas', () => {
    const sigma = [3, 2, 1];
    const metrics = spectralMetrics(sigma, 4, 3, 14);
    assert.equal(metrics.spectralNorm, 3);
    assert.equal(metrics.stableRank, 14 / 9);
    const p = sigma.map((s) => s / 6);
    assert.ok(
      Math.abs(metrics.effectiveRank - Math.exp(-p.reduce((h, x) => h + x * Math.log(x), 0))) <
        1e-15,
    );
    // Energies 9, 13, 14 of 14: 64%, 93%, 100%.
    assert.equal(metrics.rank90, 2);
    assert.equal(metrics.rank99, 3);
    assert.equal(energyRank(sigma, 14, 0.6), 1);
    assert.equal(energyRank(sigma, 14, 0.9), rankForEnergy(sigma, 14, 0.9));
  });

  test('equal singular values: effective rank n, stable rank n, no power law', () => {
    const sigma = new Array<number>(40).fill(2);
    const metrics = spectralMetrics(sigma, 40, 40, 160);
    assert.ok(Math.abs(metrics.effectiveRank - 40) < 1e-9);
    assert.ok(Math.abs(metrics.stableRank - 40) < 1e-12);
    assert.equal(metrics.rank90, 36);
    assert.equal(metrics.alpha, null);
    assert.equal(effectiveRank([5]), 1);
  });

  test('a top-k spectrum counts the energy it did not compute', () => {
    // 10 values of 1 computed, the other 90 (energy 90) not: 90% needs more than we have.
    const metrics = spectralMetrics(new Array<number>(10).fill(1), 100, 100, 100);
    assert.equal(metrics.stableRank, 100);
    assert.equal(metrics.rank90, 10);
  });

  test('a zero matrix has zero ranks and no fits', () => {
    const metrics = spectralMetrics([0, 0, 0], 3, 3, 0);
    assert.equal(metrics, NO_SPECTRAL_METRICS);
    assert.equal(metrics.stableRank, 0);
    assert.equal(metrics.rank99, 0);
    assert.equal(metrics.alpha, null);
    assert.equal(metrics.mpSpikes, null);
  });
});

describe('power-law alpha', () => {
  for (const alpha of [2.5, 4]) {
    test(`recovers α = ${alpha} from Pareto eigenvalues`, () => {
      const sigma = paretoSingularValues(2000, alpha);
      const fit = fitPowerLaw(sigma.map((s) => s * s))!;
      assert.ok(Math.abs(fit.alpha - alpha) < 0.1, `α = ${fit.alpha}`);
      assert.ok(fit.ks < 0.05);
      const metrics = spectralMetrics(
        sigma,
        4000,
        2000,
        sigma.reduce((e, s) => e + s * s, 0),
      );
      assert.equal(metrics.alpha, fit.alpha);
      assert.equal(metrics.alphaXmin, fit.xmin);
    });
  }

  test('xmin by KS: a power-law tail above a uniform bulk is found', () => {
    const bulk = Array.from({ length: 600 }, (_, i) => 0.1 + (0.9 * i) / 600);
    const tail = Array.from({ length: 400 }, (_, i) => ((i + 0.5) / 400) ** (-1 / 2) * 1.0);
    const fit = fitPowerLaw([...bulk, ...tail])!;
    assert.ok(fit.xmin >= 0.9, `xmin = ${fit.xmin}`);
    assert.ok(Math.abs(fit.alpha - 3) < 0.25, `α = ${fit.alpha}`);
  });

  test('too few values give no fit', () => {
    assert.equal(
      fitPowerLaw(Array.from({ length: MIN_POWER_LAW_TAIL - 1 }, (_, i) => i + 1)),
      null,
    );
    assert.notEqual(
      fitPowerLaw(Array.from({ length: MIN_POWER_LAW_TAIL }, (_, i) => (i + 1) ** 2)),
      null,
    );
  });

  test('on a matrix built with a power-law spectrum, through the full computation', async () => {
    const rows = 360;
    const cols = 300;
    const sigma = paretoSingularValues(cols, 3);
    const w = Float32Array.from(matrixWithSpectrum(rows, cols, sigma, 7));
    const spectrum = await computeSpectrumInThread(w, [rows, cols], { precision: 'float64' });
    const metrics = spectralMetrics(spectrum.singularValues, rows, cols, spectrum.frobeniusSquared);
    const exact = fitPowerLaw(sigma.map((s) => s * s))!;
    assert.ok(Math.abs(metrics.alpha! - exact.alpha) < 0.02, `${metrics.alpha} vs ${exact.alpha}`);
    assert.ok(Math.abs(metrics.alpha! - 3) < 0.35);
    assert.ok(Math.abs(metrics.spectralNorm - sigma[0]!) < 1e-5 * sigma[0]!);
  });
});

describe('Marchenko–Pastur', () => {
  test('a Gaussian matrix is all bulk: soft rank near 1, no more than a couple of spikes', async () => {
    const rows = 600;
    const cols = 300;
    const w = Float32Array.from(gaussianMatrix(rows, cols, 17));
    const spectrum = await computeSpectrumInThread(w, [rows, cols]);
    const metrics = spectralMetrics(spectrum.singularValues, rows, cols, spectrum.frobeniusSquared);
    assert.ok(Math.abs(metrics.mpSoftRank! - 1) < 0.1, `soft rank ${metrics.mpSoftRank}`);
    assert.ok(metrics.mpSpikes! <= 2, `spikes ${metrics.mpSpikes}`);
  });

  test('three strong directions added to noise are three spikes, and the soft rank drops', async () => {
    const rows = 500;
    const cols = 250;
    const noise = gaussianMatrix(rows, cols, 23);
    const signal = matrixWithSpectrum(rows, cols, [400, 300, 200], 29);
    const w = Float32Array.from(noise, (x, i) => x + signal[i]!);
    const spectrum = await computeSpectrumInThread(w, [rows, cols]);
    const metrics = spectralMetrics(spectrum.singularValues, rows, cols, spectrum.frobeniusSquared);
    assert.equal(metrics.mpSpikes, 3);
    // Bulk edge (√500 + √250)² ≈ 1457 against λmax ≈ 400² = 160000.
    assert.ok(metrics.mpSoftRank! < 0.02, `soft rank ${metrics.mpSoftRank}`);
    assert.ok(metrics.mpSoftRank! > 0.005);
  });

  test('deterministic Gaussian helper is standard normal', () => {
    const next = gaussian(3);
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < 20000; i++) {
      const x = next();
      sum += x;
      squares += x * x;
    }
    assert.ok(Math.abs(sum / 20000) < 0.03);
    assert.ok(Math.abs(squares / 20000 - 1) < 0.05);
  });
});

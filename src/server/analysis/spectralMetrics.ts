/**
 * Spectral metrics of a weight matrix from its singular values, as WeightWatcher defines
 * them (see DOMAIN.md): stable and effective rank, energy ranks, spectral norm, the
 * power-law exponent of the eigenvalue tail and the Marchenko–Pastur soft rank.
 *
 * The values may be a top-k subset: metrics that need the whole spectrum use
 * `frobeniusSquared` (the total energy) for what was not computed.
 */
import type { SpectralMetrics, SpectralSums } from '../../shared/spectrum';

/** Fewest eigenvalues in a power-law tail: shorter tails give meaningless exponents. */
export const MIN_POWER_LAW_TAIL = 10;
/** Candidate xmin values tried at most (evenly spaced over the sorted eigenvalues). */
const MAX_XMIN_CANDIDATES = 2000;
/** Iterations of the Marchenko–Pastur bulk-variance estimate (it settles in a few). */
const MP_ITERATIONS = 50;

/** The metrics of a matrix without energy (all zero): no ranks, no fits. */
export const NO_SPECTRAL_METRICS: SpectralMetrics = Object.freeze({
  stableRank: 0,
  effectiveRank: 0,
  rank90: 0,
  rank99: 0,
  spectralNorm: 0,
  alpha: null,
  alphaXmin: null,
  alphaKs: null,
  mpSoftRank: null,
  mpSpikes: null,
});

export interface PowerLawFit {
  readonly alpha: number;
  readonly xmin: number;
  /** Kolmogorov–Smirnov distance between the tail and the fitted law. */
  readonly ks: number;
  /** Values in the tail (≥ xmin). */
  readonly tailSize: number;
}

/**
 * `sums`, when given, are the sums over all values (the values may then be a top-k
 * subset): the effective rank comes from them instead of from the values.
 */
export function spectralMetrics(
  singularValues: ArrayLike<number>,
  rows: number,
  cols: number,
  frobeniusSquared: number,
  sums?: SpectralSums,
): SpectralMetrics {
  const count = singularValues.length;
  const sigmaMax = count > 0 ? singularValues[0]! : 0;
  if (count === 0 || !(sigmaMax > 0) || !(frobeniusSquared > 0)) {
    return NO_SPECTRAL_METRICS;
  }
  const eigenvalues = new Float64Array(count);
  for (let i = 0; i < count; i++) eigenvalues[i] = singularValues[i]! * singularValues[i]!;
  const fit = fitPowerLaw(eigenvalues);
  const mp = marchenkoPastur(eigenvalues, rows, cols, frobeniusSquared);
  return {
    stableRank: frobeniusSquared / (sigmaMax * sigmaMax),
    effectiveRank: sums ? effectiveRankOfSums(sums) : effectiveRank(singularValues),
    rank90: energyRank(singularValues, frobeniusSquared, 0.9),
    rank99: energyRank(singularValues, frobeniusSquared, 0.99),
    spectralNorm: sigmaMax,
    alpha: fit?.alpha ?? null,
    alphaXmin: fit?.xmin ?? null,
    alphaKs: fit?.ks ?? null,
    mpSoftRank: mp?.softRank ?? null,
    mpSpikes: mp?.spikes ?? null,
  };
}

/** exp(−Σ pᵢ log pᵢ) with pᵢ = σᵢ / Σσ (Roy & Vetterli). */
export function effectiveRank(singularValues: ArrayLike<number>): number {
  return effectiveRankOfSums(spectralSumsOf(singularValues));
}

/** Σσ and Σσ·ln σ of the given values. */
export function spectralSumsOf(singularValues: ArrayLike<number>): SpectralSums {
  let sigma = 0;
  let sigmaLogSigma = 0;
  for (let i = 0; i < singularValues.length; i++) {
    const value = singularValues[i]!;
    sigma += value;
    if (value > 0) sigmaLogSigma += value * Math.log(value);
  }
  return { sigma, sigmaLogSigma };
}

/**
 * The effective rank from the sums over all values: −Σ pᵢ log pᵢ = ln Σσ − Σσ·ln σ / Σσ.
 * Estimated sums may put it slightly outside [1, count]; it is kept at least 1.
 */
export function effectiveRankOfSums({ sigma, sigmaLogSigma }: SpectralSums): number {
  if (!(sigma > 0)) return 0;
  return Math.max(1, Math.exp(Math.log(sigma) - sigmaLogSigma / sigma));
}

/** Smallest r with Σ_{i≤r} σᵢ² ≥ target · ‖W‖²_F; the count of values when never reached. */
export function energyRank(
  singularValues: ArrayLike<number>,
  frobeniusSquared: number,
  target: number,
): number {
  const goal = target * frobeniusSquared * (1 - 1e-12);
  let kept = 0;
  for (let i = 0; i < singularValues.length; i++) {
    kept += singularValues[i]! * singularValues[i]!;
    if (kept >= goal) return i + 1;
  }
  return singularValues.length;
}

/**
 * Continuous power law p(x) ∝ x^(−α) for x ≥ xmin, fitted by maximum likelihood
 * (α = 1 + n / Σ ln(xᵢ/xmin), Clauset, Shalizi & Newman), with xmin the candidate that
 * minimises the Kolmogorov–Smirnov distance between the tail and the fit, as the
 * `powerlaw` package that WeightWatcher uses does. Candidates are the distinct positive
 * values that leave at least MIN_POWER_LAW_TAIL values in the tail (at most
 * MAX_XMIN_CANDIDATES of them, evenly spaced). Null when no candidate qualifies.
 */
export function fitPowerLaw(values: ArrayLike<number>): PowerLawFit | null {
  const positive: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value > 0 && Number.isFinite(value)) positive.push(value);
  }
  const x = Float64Array.from(positive).sort();
  const n = x.length;
  const lastCandidate = n - MIN_POWER_LAW_TAIL;
  if (lastCandidate < 0) return null;
  // Suffix sums of ln x give each candidate's α in O(1).
  const logSuffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) logSuffix[i] = logSuffix[i + 1]! + Math.log(x[i]!);
  const stride = Math.max(1, Math.ceil((lastCandidate + 1) / MAX_XMIN_CANDIDATES));
  let best: PowerLawFit | null = null;
  for (let start = 0; start <= lastCandidate; start += stride) {
    // Ties: a candidate is the first occurrence of its value.
    if (start > 0 && x[start - 1] === x[start]) continue;
    const xmin = x[start]!;
    const tail = n - start;
    const logSum = logSuffix[start]! - tail * Math.log(xmin);
    if (!(logSum > 0)) continue;
    const alpha = 1 + tail / logSum;
    let ks = 0;
    for (let i = start; i < n; i++) {
      const model = 1 - Math.pow(x[i]! / xmin, 1 - alpha);
      const below = (i - start) / tail;
      const atOrBelow = (i - start + 1) / tail;
      ks = Math.max(ks, Math.abs(model - below), Math.abs(atOrBelow - model));
    }
    if (best === null || ks < best.ks) best = { alpha, xmin, ks, tailSize: tail };
  }
  return best;
}

/**
 * Marchenko–Pastur bulk of the ESD. For an N × M matrix (N ≥ M) of i.i.d. entries of
 * variance s², the eigenvalues of WᵀW/N fill [s²(1 − 1/√Q)², s²(1 + 1/√Q)²] with Q = N/M,
 * and their mean is s². The bulk variance s² is estimated from the eigenvalues inside the
 * bulk: start from all of them (‖W‖²_F / (N·M)), drop those above the edge, re-estimate
 * from the rest, until the spike count settles. Values not computed (top-k) are inside
 * the bulk by then, their energy being ‖W‖²_F minus the computed ones'.
 * mpSoftRank = λ⁺ / λmax (above 1 when even λmax lies inside the bulk); spikes = eigenvalues
 * above λ⁺.
 */
function marchenkoPastur(
  eigenvaluesDescending: Float64Array,
  rows: number,
  cols: number,
  frobeniusSquared: number,
): { softRank: number; spikes: number } | null {
  const big = Math.max(rows, cols);
  const small = Math.min(rows, cols);
  if (small < 1) return null;
  // Eigenvalues of the whole ESD: pooled spectra hold several matrices' worth.
  const slices = Math.max(1, Math.round(eigenvaluesDescending.length / small));
  const totalCount = slices * small;
  const q = big / small;
  const edgeFactor = (1 + 1 / Math.sqrt(q)) ** 2;
  const lambdaMax = eigenvaluesDescending[0]!;
  let spikes = 0;
  let edge = 0;
  for (let iteration = 0; iteration < MP_ITERATIONS; iteration++) {
    let spikeEnergy = 0;
    for (let i = 0; i < spikes; i++) spikeEnergy += eigenvaluesDescending[i]!;
    const bulkCount = totalCount - spikes;
    if (bulkCount <= 0) return null;
    const variance = Math.max(0, frobeniusSquared - spikeEnergy) / (big * bulkCount);
    edge = variance * edgeFactor * big;
    let next = 0;
    while (next < eigenvaluesDescending.length && eigenvaluesDescending[next]! > edge) next++;
    if (next === spikes) break;
    spikes = next;
  }
  return { softRank: edge / lambdaMax, spikes };
}

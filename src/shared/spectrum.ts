/**
 * Rank spectra and spectral metrics of weight matrices: the view-model types and the pure
 * arithmetic the webview, the CLI and the server share (energy curves, low-rank costs).
 *
 * A weight tensor is read as a matrix of `rows` × `cols`: 2-D as stored; convolution
 * kernels `[out, in, kh, kw…]` as out × in·kh·kw ('flatten'), or as one out × in matrix per
 * spatial position whose spectra are pooled ('spatial').
 */
import { DTYPES } from './dtypes';
import { matrixShape } from './heatmap';
import type { TensorInfo } from './model';

export type SpectrumPrecision = 'float32' | 'float64';

/** How a convolution kernel becomes a matrix. */
export type ConvMatrixMode = 'flatten' | 'spatial';

/** How a spectrum is computed (SpectrumOptions.method). */
export type SpectrumMethod = 'auto' | 'full' | 'topk' | 'fast';

/** The methods a request or the `layerlens.spectrum.method` setting may name. */
export const SPECTRUM_METHODS: readonly SpectrumMethod[] = ['auto', 'full', 'topk', 'fast'];

/**
 * Σσᵢ and Σσᵢ·ln σᵢ over every singular value: all the effective rank needs. Estimated
 * (stochastic Lanczos quadrature) by the 'fast' method, which computes only the top values.
 */
export interface SpectralSums {
  readonly sigma: number;
  readonly sigmaLogSigma: number;
}

export interface SpectrumOptions {
  /**
   * 'full': every singular value; 'topk': the `k` largest (randomized SVD with power
   * iterations); 'auto': full up to MAX_FULL_SPECTRUM_SIDE on the smaller side, top-k beyond;
   * 'fast': for whole models, the `k` largest (FAST_TOPK in the server's spectrum.ts by
   * default, fewer power iterations) with the effective rank estimated over all values (SpectralSums); matrices
   * small enough for the exact route get it, as with 'auto'.
   */
  readonly method?: SpectrumMethod;
  readonly k?: number;
  /** float64 keeps small singular values accurate (the Gram route squares the condition number). */
  readonly precision?: SpectrumPrecision;
  readonly conv?: ConvMatrixMode;
}

/** Metrics of one spectrum; the formulas are those of DOMAIN.md. */
export interface SpectralMetrics {
  /** ‖W‖_F² / σ₁². */
  readonly stableRank: number;
  /** exp of the entropy of p_i = σ_i / Σσ (Roy & Vetterli). */
  readonly effectiveRank: number;
  /** Smallest r whose first r values keep 90% / 99% of Σσ². */
  readonly rank90: number;
  readonly rank99: number;
  /** σ₁. */
  readonly spectralNorm: number;
  /** Power-law exponent of the eigenvalue (σ²) density tail, maximum likelihood with xmin by KS distance; null when too few values. */
  readonly alpha: number | null;
  readonly alphaXmin: number | null;
  /** Kolmogorov–Smirnov distance of the fit. */
  readonly alphaKs: number | null;
  /** Marchenko–Pastur soft rank and the count of eigenvalues above the MP bulk edge. */
  readonly mpSoftRank: number | null;
  readonly mpSpikes: number | null;
}

export interface Spectrum {
  readonly index: number;
  readonly rows: number;
  readonly cols: number;
  readonly method: 'full' | 'topk' | 'fast';
  readonly precision: SpectrumPrecision;
  readonly conv: ConvMatrixMode | null;
  /** Descending. All min(rows, cols) of them for 'full', the k largest for 'topk' and 'fast'. */
  readonly singularValues: readonly number[];
  /** ‖W‖_F², so that the energy of values not computed (top-k) is still known. */
  readonly frobeniusSquared: number;
  readonly metrics: SpectralMetrics;
  /** Where it ran, e.g. "cpu (onnxruntime MLAS, wasm eigen-solver)", and any fallback message. */
  readonly backend: string;
  readonly elapsedMs: number;
}

/** Parameters of W ≈ A·B with A: rows × r and B: r × cols. */
export function lowRankParameters(rows: number, cols: number, rank: number): number {
  return rank * (rows + cols);
}

/** Largest rank that still stores fewer parameters than the dense matrix: r < N·M/(N+M). */
export function maxSavingRank(rows: number, cols: number): number {
  return Math.ceil((rows * cols) / (rows + cols)) - 1;
}

/** Cumulative energy Σ_{i<r} σ_i² / ‖W‖_F², for r = 1…n. */
export function cumulativeEnergy(
  singularValues: readonly number[],
  frobeniusSquared: number,
): number[] {
  const curve: number[] = [];
  let sum = 0;
  for (const sigma of singularValues) {
    sum += sigma * sigma;
    curve.push(frobeniusSquared > 0 ? Math.min(1, sum / frobeniusSquared) : 1);
  }
  return curve;
}

/** Smallest rank keeping at least `target` (0…1] of the energy; n when never reached. */
export function rankForEnergy(
  singularValues: readonly number[],
  frobeniusSquared: number,
  target: number,
): number {
  const curve = cumulativeEnergy(singularValues, frobeniusSquared);
  const rank = curve.findIndex((energy) => energy >= target - 1e-12);
  return rank < 0 ? curve.length : rank + 1;
}

/** ‖W − W_r‖_F / ‖W‖_F of the best rank-r approximation (Eckart–Young). */
export function relativeReconstructionError(
  singularValues: readonly number[],
  frobeniusSquared: number,
  rank: number,
): number {
  if (frobeniusSquared <= 0) return 0;
  let kept = 0;
  for (let i = 0; i < Math.min(rank, singularValues.length); i++) {
    kept += singularValues[i] * singularValues[i];
  }
  return Math.sqrt(Math.max(0, frobeniusSquared - kept) / frobeniusSquared);
}

/**
 * Matrices up to this many values get their spectral metrics without being asked (table
 * columns, code lenses): a spectrum of that size takes milliseconds.
 */
export const AUTO_SPECTRUM_MAX_ELEMENTS = 512 * 512;

/**
 * Whether the table and the code lenses show a tensor's spectral metrics unasked: only for
 * weights (tensors compression methods act on, WeightTensors) that have a spectrum, never
 * for shape constants, quantization scales or other vectors. The Spectrum tab still shows
 * any matrix the user selects.
 */
export function hasSpectralMetrics(
  info: Pick<TensorInfo, 'shape' | 'dtype'>,
  isWeight: boolean,
): boolean {
  return isWeight && hasSpectrum(info);
}

/** Whether a tensor has a spectrum: a non-empty floating-point matrix (2-D or more). */
export function hasSpectrum(info: Pick<TensorInfo, 'shape' | 'dtype'>): boolean {
  const matrix = matrixShape(info.shape);
  const dtype = DTYPES[info.dtype];
  return matrix !== null && matrix.rows * matrix.cols > 0 && dtype.isFloat && dtype.numeric;
}

/**
 * Low-rank factorisation W ≈ A·B (A: rows × r, B: r × cols) for compression.
 *
 * The rank is the one asked for, or the smallest keeping an energy target of Σσ²; for the
 * latter the full spectrum comes first from the spectrum code (Gram matrix and eigenvalues
 * on onnxruntime, or the exact Jacobi SVD when small). The factors come from the rank-r
 * truncated SVD (analysis/truncatedSvd.ts): a randomized range finder whose products run
 * on onnxruntime, exact (one-sided Jacobi) for small matrices and ranks near full. A rank
 * that would not store fewer parameters than W is refused before any of that work.
 */
import { MAX_LOWRANK_ELEMENTS, MAX_LOWRANK_SIDE } from '../../shared/limits';
import { maxSavingRank, rankForEnergy } from '../../shared/spectrum';
import { jacobiSvd } from '../analysis/jacobiSvd';
import { computeSpectrumInThread } from '../analysis/spectrum';
import type { CancelCheck } from '../analysis/symmetricEigen';
import { isSmallForExactSvd, truncatedSvd, type TruncatedSvd } from '../analysis/truncatedSvd';
import { sharedMatMulRuntime, type MatMulRuntime } from '../runtime/matmul';

export interface RankChoice {
  readonly rank?: number;
  readonly energy?: number;
}

/** The singular values a rank is chosen from: all min(rows, cols) of them, descending. */
export interface SingularSpectrum {
  readonly rows: number;
  readonly cols: number;
  readonly singularValues: Float64Array;
}

/** A rank that would not reduce the parameter count. */
export class LowRankRefusal extends Error {
  override readonly name = 'LowRankRefusal';
}

/** Throws unless `rows` × `cols` is within MAX_LOWRANK_SIDE and MAX_LOWRANK_ELEMENTS. */
export function checkLowRankLimits(rows: number, cols: number): void {
  if (Math.min(rows, cols) > MAX_LOWRANK_SIDE || rows * cols > MAX_LOWRANK_ELEMENTS) {
    throw new RangeError(
      `${rows} × ${cols} is beyond the low-rank limits (smaller side ≤ ${MAX_LOWRANK_SIDE}, ≤ ${MAX_LOWRANK_ELEMENTS} elements)`,
    );
  }
}

/** `rank` checked: a positive integer (capped at the smaller side) that saves parameters. */
export function checkRank(rows: number, cols: number, rank: number): number {
  if (!Number.isInteger(rank) || rank < 1) {
    throw new RangeError(`rank must be a positive integer, got ${rank}`);
  }
  const capped = Math.min(rank, Math.min(rows, cols));
  const limit = maxSavingRank(rows, cols);
  if (capped > limit) {
    throw new LowRankRefusal(
      `rank ${capped} of a ${rows} × ${cols} matrix stores ${capped * (rows + cols)} parameters, not fewer than ${rows * cols}; the largest rank that saves is ${limit}`,
    );
  }
  return capped;
}

/** Σσ² of all singular values (= ‖W‖_F² up to rounding). */
function energyOf(singularValues: Float64Array): number {
  let sum = 0;
  for (const s of singularValues) sum += s * s;
  return sum;
}

/**
 * The rank to keep: the explicit `rank`, or the smallest one keeping `energy` of Σσ².
 * Throws, naming the limit, when that rank would not store fewer parameters than W.
 */
export function chooseRank(spectrum: SingularSpectrum, choice: RankChoice): number {
  if (choice.rank !== undefined) return checkRank(spectrum.rows, spectrum.cols, choice.rank);
  if (choice.energy === undefined)
    throw new RangeError('low-rank needs a rank or an energy target');
  if (!(choice.energy > 0 && choice.energy <= 1)) {
    throw new RangeError(`energy must be in (0, 1], got ${choice.energy}`);
  }
  const rank = rankForEnergy(
    Array.from(spectrum.singularValues),
    energyOf(spectrum.singularValues),
    choice.energy,
  );
  return checkRank(spectrum.rows, spectrum.cols, rank);
}

export interface LowRankFactorisation {
  readonly rank: number;
  /** min(rows, cols). */
  readonly fullRank: number;
  /** U_r·√Σ_r, rows × rank row-major. */
  readonly a: Float32Array;
  /** √Σ_r·V_rᵀ, rank × cols row-major. */
  readonly b: Float32Array;
  /** How the factors were computed. */
  readonly route: string;
}

export interface FactoriseOptions {
  /** Polled between steps; when it returns true the work stops with an AbortError. */
  readonly isCancelled?: () => boolean;
  readonly signal?: AbortSignal;
  readonly runtime?: MatMulRuntime;
  /** Use the exact (Jacobi) SVD whatever the size. */
  readonly exact?: boolean;
}

function cancelCheck(options: FactoriseOptions): CancelCheck {
  return () => {
    options.signal?.throwIfAborted();
    if (options.isCancelled?.()) {
      const error = new Error('The low-rank factorisation was cancelled');
      error.name = 'AbortError';
      throw error;
    }
  };
}

/**
 * The rank-r factors of the row-major `rows` × `cols` matrix `values` for `choice`.
 * Throws RangeError beyond the limits or for a bad choice, LowRankRefusal for a rank that
 * saves nothing, and an AbortError when cancelled.
 */
export async function factoriseLowRank(
  values: Float32Array | Float64Array,
  rows: number,
  cols: number,
  choice: RankChoice,
  options: FactoriseOptions = {},
): Promise<LowRankFactorisation> {
  if (rows * cols !== values.length) {
    throw new RangeError(
      `a ${rows} × ${cols} matrix needs ${rows * cols} values, got ${values.length}`,
    );
  }
  checkLowRankLimits(rows, cols);
  const check = cancelCheck(options);
  check();
  const runtime = options.runtime ?? sharedMatMulRuntime('cpu');
  let svd: TruncatedSvd;
  let rank: number;
  if (choice.rank !== undefined) {
    rank = checkRank(rows, cols, choice.rank);
    svd = await truncatedSvd(runtime, { rows, cols, data: values }, rank, check, options);
  } else if (options.exact || isSmallForExactSvd(rows, cols)) {
    // Small: one exact SVD gives both the spectrum and the factors.
    const full = jacobiSvd(values, rows, cols);
    rank = chooseRank(full, choice);
    svd = await truncatedSvd(runtime, { rows, cols, data: values }, rank, check, {
      exact: true,
    });
  } else {
    const spectrum = await computeSpectrumInThread(values, [rows, cols], { method: 'full' }, () => {
      check();
      return false;
    });
    rank = chooseRank({ rows, cols, singularValues: spectrum.singularValues }, choice);
    svd = await truncatedSvd(runtime, { rows, cols, data: values }, rank, check, options);
  }
  check();
  return { ...lowRankFactors(svd, rank), rank, fullRank: Math.min(rows, cols), route: svd.route };
}

/**
 * Factors of the rank-r approximation as float32: A = U_r·√Σ_r (rows × r) and
 * B = √Σ_r·V_rᵀ (r × cols), so that both factors have comparable ranges. `svd` holds at
 * least r singular triplets (scaledLeft: rows × k, rightT: k × cols).
 */
export function lowRankFactors(
  svd: {
    readonly rows: number;
    readonly cols: number;
    readonly singularValues: Float64Array;
    readonly scaledLeft: Float64Array;
    readonly rightT: Float64Array;
  },
  rank: number,
): { a: Float32Array; b: Float32Array } {
  const k = svd.singularValues.length;
  const r = Math.min(rank, k);
  const a = new Float32Array(svd.rows * r);
  const b = new Float32Array(r * svd.cols);
  for (let j = 0; j < r; j++) {
    const sigma = svd.singularValues[j]!;
    const root = Math.sqrt(sigma);
    const leftScale = sigma > 0 ? 1 / root : 0;
    for (let row = 0; row < svd.rows; row++) {
      a[row * r + j] = svd.scaledLeft[row * k + j]! * leftScale;
    }
    for (let c = 0; c < svd.cols; c++) b[j * svd.cols + c] = svd.rightT[j * svd.cols + c]! * root;
  }
  return { a, b };
}

/** A·B for row-major A (rows × r) and B (r × cols), as float32, on onnxruntime. */
export async function multiplyFactors(
  a: Float32Array,
  b: Float32Array,
  rows: number,
  rank: number,
  cols: number,
  runtime: MatMulRuntime = sharedMatMulRuntime('cpu'),
): Promise<Float32Array> {
  const product = await runtime.gemm({ rows, cols: rank, data: a }, { rows: rank, cols, data: b });
  return product.data;
}

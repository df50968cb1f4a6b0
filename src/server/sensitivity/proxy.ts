/**
 * The data-free proxy of a sweep: Ŵ for each level with the compressor's own kernels, and
 * its relative error ‖W − Ŵ‖_F/‖W‖_F and SQNR. `reconstruct` is the one function that
 * makes Ŵ, for the proxy, the measured sweep and the planner alike.
 */
import type { ProxyPoint, SweepLevel } from '../../shared/sensitivity';
import { jacobiSvd, type JacobiSvd } from '../analysis/jacobiSvd';
import { isSmallForExactSvd } from '../analysis/truncatedSvd';
import { relativeFrobeniusError, type MatrixLayout } from '../compress/kernels';
import { methodModule } from '../compress/methods';
import { LevelNotApplicable } from '../compress/methods/types';
import { levelProblem, type TensorTraits } from './levels';

export { LevelNotApplicable } from '../compress/methods/types';

/**
 * One tensor's exact SVD, kept while its low-rank levels are swept: for a matrix small
 * enough for the exact route, every energy or rank then costs one product instead of an
 * SVD (the compressor takes the same route, so Ŵ is the same).
 */
export class LowRankBasis {
  private svd: JacobiSvd | null | undefined;

  /** The exact SVD of `values`, or null when the matrix is too large for the exact route. */
  exact(values: Float32Array, rows: number, cols: number): JacobiSvd | null {
    if (this.svd === undefined) {
      this.svd = isSmallForExactSvd(rows, cols) ? jacobiSvd(values, rows, cols) : null;
    }
    return this.svd;
  }
}

/**
 * Ŵ: the float32 values a model compressed at `level` computes with, in the stored order
 * of `values`. `layout` is the tensor as a matrix with its input axis (required by every
 * method but prune and the casts). Throws LevelNotApplicable when the compressor would
 * skip the tensor at this level, and an AbortError when `signal` fires during a low-rank
 * factorisation. `basis` (one per tensor) lets several low-rank levels share one SVD.
 */
export async function reconstruct(
  values: Float32Array,
  layout: MatrixLayout | undefined,
  level: SweepLevel,
  signal?: AbortSignal,
  basis?: LowRankBasis,
): Promise<Float32Array> {
  return methodModule(level.method).reconstruct(values, layout, level, signal, basis);
}

/** The proxy point of Ŵ against W. */
export function proxyPoint(key: string, values: Float32Array, restored: Float32Array): ProxyPoint {
  const relativeError = relativeFrobeniusError(values, restored);
  const sqnrDb = relativeError === 0 ? Infinity : -20 * Math.log10(relativeError);
  return { key, relativeError, sqnrDb };
}

/** One level of one tensor: Ŵ and its proxy point, or why the level does not apply. */
export type LevelOutcome =
  | { readonly level: SweepLevel; readonly restored: Float32Array; readonly point: ProxyPoint }
  | { readonly level: SweepLevel; readonly skipped: string };

/**
 * Every level of `levels` on one tensor. `each` sees every outcome as soon as it is made
 * (the measured sweep runs the model on Ŵ there, so Ŵ need not be kept for all levels).
 */
export async function sweepLevels(
  values: Float32Array,
  traits: TensorTraits,
  levels: readonly SweepLevel[],
  each: (outcome: LevelOutcome) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<void> {
  const basis = new LowRankBasis();
  for (const level of levels) {
    signal?.throwIfAborted();
    const problem = levelProblem(level, traits);
    if (problem) {
      await each({ level, skipped: problem });
      continue;
    }
    let restored: Float32Array;
    try {
      restored = await reconstruct(values, traits.layout, level, signal, basis);
    } catch (error) {
      if (!(error instanceof LevelNotApplicable)) throw error;
      await each({ level, skipped: error.message });
      continue;
    }
    await each({ level, restored, point: proxyPoint(level.key, values, restored) });
  }
}

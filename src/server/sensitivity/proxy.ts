/**
 * The data-free proxy of a sweep: Ŵ for each level with the compressor's own kernels, and
 * its relative error ‖W − Ŵ‖_F/‖W‖_F and SQNR. `reconstruct` is the one function that
 * makes Ŵ, for the proxy, the measured sweep and the planner alike.
 */
import type { ProxyPoint, SweepLevel } from '../../shared/sensitivity';
import {
  allFinite,
  dequantizeBlocks,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  type MatrixLayout,
} from '../compress/kernels';
import {
  chooseRank,
  factoriseLowRank,
  lowRankFactors,
  LowRankRefusal,
  multiplyFactors,
} from '../compress/lowrank';
import { jacobiSvd, type JacobiSvd } from '../analysis/jacobiSvd';
import { isSmallForExactSvd } from '../analysis/truncatedSvd';
import { float32ToBfloat16Bits, float32ToFloat16Bits } from '../compress/kernels';
import { decodeValues } from '../analysis/decode';
import { levelProblem, type TensorTraits } from './levels';

/** A level that does not apply to a tensor (the compressor would skip it), with the reason. */
export class LevelNotApplicable extends Error {
  override readonly name = 'LevelNotApplicable';
}

function needLayout(layout: MatrixLayout | undefined, level: SweepLevel): MatrixLayout {
  if (!layout) throw new LevelNotApplicable(`${level.label} needs the tensor's input axis`);
  return layout;
}

function needFinite(values: Float32Array, level: SweepLevel): void {
  if (!allFinite(values)) {
    throw new LevelNotApplicable(`${level.label}: the tensor holds non-finite values (inf or NaN)`);
  }
}

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

async function lowRankValues(
  values: Float32Array,
  rows: number,
  cols: number,
  choice: { rank: number } | { energy: number },
  signal: AbortSignal | undefined,
  basis: LowRankBasis | undefined,
): Promise<Float32Array> {
  const svd = basis?.exact(values, rows, cols);
  if (svd) {
    const rank = chooseRank(svd, choice);
    const { a, b } = lowRankFactors(svd, rank);
    return multiplyFactors(a, b, rows, rank, cols);
  }
  const { a, b, rank } = await factoriseLowRank(values, rows, cols, choice, { signal });
  return multiplyFactors(a, b, rows, rank, cols);
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
  const options = level.options;
  switch (options.method) {
    case 'prune':
      return pruneMagnitude(values, options.sparsity ?? 0.5);
    case 'nm':
      return pruneNM(values, needLayout(layout, level), options.n ?? 2, options.m ?? 4);
    case 'int8': {
      const matrix = needLayout(layout, level);
      needFinite(values, level);
      return dequantizeBlocks(quantizeInt8PerChannel(values, matrix), matrix);
    }
    case 'int4': {
      const matrix = needLayout(layout, level);
      needFinite(values, level);
      return dequantizeBlocks(quantizeInt4Blocks(values, matrix, options.blockSize ?? 32), matrix);
    }
    case 'lowrank': {
      const { rows, cols } = needLayout(layout, level);
      needFinite(values, level);
      const choice =
        options.rank !== undefined ? { rank: options.rank } : { energy: options.energy ?? 0.9 };
      try {
        return await lowRankValues(values, rows, cols, choice, signal, basis);
      } catch (error) {
        if (error instanceof LowRankRefusal || error instanceof RangeError) {
          throw new LevelNotApplicable(error.message);
        }
        throw error;
      }
    }
    case 'fp16':
      return Float32Array.from(
        decodeValues('float16', new Uint8Array(float32ToFloat16Bits(values).buffer), values.length),
      );
    case 'bf16':
      return Float32Array.from(
        decodeValues(
          'bfloat16',
          new Uint8Array(float32ToBfloat16Bits(values).buffer),
          values.length,
        ),
      );
  }
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

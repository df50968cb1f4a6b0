/**
 * What a statistics job is, shared by the entry point (computeStats.ts), the pool it runs
 * in (workerPool.ts) and the worker (statsWorker.ts): where the worker reads the tensor's
 * bytes, the job itself, and its answer.
 */
import type { NumericDType } from '../analysis/decode';
import type { DequantizePlan } from '../analysis/dequantize';
import type { GridState, MomentsSummary, TensorStatsValues } from '../analysis/stats';
import type { PackedRange } from '../formats/types';

/** Where a worker job reads a tensor's bytes. */
export type TensorByteSource =
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly offset: number;
      readonly length: number;
    }
  /** Bytes moved to the worker (transferred, not copied). */
  | { readonly kind: 'memory'; readonly bytes: Uint8Array }
  /** A range of a packed file's original, which the worker decodes chunk by chunk. */
  | ({ readonly kind: 'packed'; readonly length: number } & PackedRange)
  /** A quantized tensor's float32 values, which the worker decodes from its stored parts. */
  | {
      readonly kind: 'decoded';
      readonly length: number;
      readonly plan: DequantizePlan;
      readonly codes: TensorByteSource;
      readonly params: readonly TensorByteSource[];
    };

/** One statistics job as the worker receives it. */
export interface StatsJob {
  readonly dtype: NumericDType;
  readonly elementCount: number;
  readonly source: TensorByteSource;
  /** The source holds ggml blocks of this type, dequantized by the worker (TensorData's `blocks`). */
  readonly blocks?: string;
  /** Bytes read at a time; STATS_CHUNK_BYTES when absent. */
  readonly chunkBytes?: number;
  /**
   * One round over a part of a tensor split across workers: its moments, its histogram
   * over the whole tensor's range, the counts of its 16-bit patterns, or its moments and
   * grid histogram in one pass (float32). Absent: the whole statistics of the data.
   */
  readonly part?:
    | { readonly kind: 'moments' }
    | { readonly kind: 'patterns' }
    | { readonly kind: 'onePass' }
    | {
        readonly kind: 'histogram';
        readonly min: number;
        readonly max: number;
        readonly allFinite: boolean;
      };
}

/**
 * What the statistics worker answers: whole statistics, a part's moments, a part's
 * histogram counts, a part's pattern counts, or a part's moments and grid histogram.
 */
export type StatsJobResult =
  | TensorStatsValues
  | MomentsSummary
  | number[]
  | Float64Array
  | { readonly moments: MomentsSummary; readonly grid: GridState };

/** Per-tensor statistics, computed in the worker pool: the entry point the server calls. */
import { byteLengthOf } from '../../shared/dtypes';
import { MAX_IN_MEMORY_TENSOR_BYTES } from '../../shared/limits';
import { isNumericDType, type NumericDType } from '../analysis/decode';
import type { TensorStatsValues } from '../analysis/stats';
import type { TensorEntry } from '../formats/types';
import { JobAbortedError, type WorkerPool } from './workerPool';

/** One statistics job as the worker receives it. */
export interface StatsJob {
  readonly dtype: NumericDType;
  readonly elementCount: number;
  readonly source:
    | {
        readonly kind: 'file';
        readonly path: string;
        readonly offset: number;
        readonly length: number;
      }
    /** Bytes moved to the worker (transferred, not copied). */
    | { readonly kind: 'memory'; readonly bytes: Uint8Array };
  /** Bytes read at a time; STATS_CHUNK_BYTES when absent. */
  readonly chunkBytes?: number;
}

export interface ComputeStatsOptions {
  readonly chunkBytes?: number;
}

/**
 * Statistics of one tensor. File-backed tensors are read by the worker itself; in-memory
 * ones are materialised here (bounded by MAX_IN_MEMORY_TENSOR_BYTES) and handed over.
 * Rejects for non-numeric dtypes, with an AbortError when `signal` aborts, and with a
 * ModelFileError when the data file cannot be read.
 */
export async function computeTensorStats(
  pool: WorkerPool,
  entry: TensorEntry,
  signal?: AbortSignal,
  options: ComputeStatsOptions = {},
): Promise<TensorStatsValues> {
  const { info, data } = entry;
  const { dtype } = info;
  if (!isNumericDType(dtype)) {
    throw new Error(
      `tensor "${info.name}" holds ${dtype} values, which have no numeric statistics`,
    );
  }
  const expectedBytes = byteLengthOf(dtype, info.parameterCount);
  if (data.length !== expectedBytes) {
    throw new Error(
      `tensor "${info.name}" has ${data.length} bytes of data, but ${info.parameterCount} ${dtype} elements need ${expectedBytes}`,
    );
  }
  if (signal?.aborted) throw new JobAbortedError();
  const base = { dtype, elementCount: info.parameterCount, chunkBytes: options.chunkBytes };
  if (data.kind === 'file') {
    const job: StatsJob = {
      ...base,
      source: { kind: 'file', path: data.path, offset: data.offset, length: data.length },
    };
    return pool.run(job, signal);
  }
  if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new Error(
      `tensor "${info.name}" would need ${data.length} bytes in memory, more than the limit of ${MAX_IN_MEMORY_TENSOR_BYTES}`,
    );
  }
  // A private copy: `load()` may return a view on a buffer the model still uses, and
  // transferring detaches the buffer on this side.
  const bytes = data.load().slice();
  if (bytes.byteLength !== data.length) {
    throw new Error(
      `tensor "${info.name}" produced ${bytes.byteLength} bytes instead of ${data.length}`,
    );
  }
  const job: StatsJob = { ...base, source: { kind: 'memory', bytes } };
  return pool.run(job, signal, [bytes.buffer]);
}

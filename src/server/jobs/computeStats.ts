/** Per-tensor statistics, computed in the worker pool: the entry point the server calls. */
import { byteLengthOf, DTYPES } from '../../shared/dtypes';
import {
  MAX_IN_MEMORY_TENSOR_BYTES,
  MAX_PACKED_STATS_BYTES,
  SPLIT_STATS_MIN_BYTES,
} from '../../shared/limits';
import { isNumericDType, type NumericDType } from '../analysis/decode';
import { decodedGgmlType, storedBytesOf } from '../analysis/ggmlValues';
import { countsPatterns } from '../analysis/patternCounts';
import {
  binsOnGrid,
  statsOfPatternCounts,
  type GridState,
  type MomentsSummary,
  type TensorStatsValues,
} from '../analysis/stats';
import {
  mergeMoments,
  splitElements,
  statsFromOnePassParts,
  statsFromParts,
} from '../analysis/statsParts';
import type { TensorData, TensorEntry } from '../formats/types';
import type { StatsJob, TensorByteSource } from './statsJob';
import { JobAbortedError, type WorkerPool } from './workerPool';

/**
 * Where a worker job reads `data`, when it can read it itself (a file range, a packed
 * file's range, a quantized tensor whose stored parts are such ranges); undefined for
 * values only the main thread can build.
 */
export function workerSourceOf(data: TensorData): TensorByteSource | undefined {
  if (data.kind === 'file') {
    return { kind: 'file', path: data.path, offset: data.offset, length: data.length };
  }
  if (data.decoded) {
    const codes = workerSourceOf(data.decoded.codes);
    const params = data.decoded.params.map(workerSourceOf);
    if (!codes || !params.every((param) => param !== undefined)) return undefined;
    return { kind: 'decoded', length: data.length, plan: data.decoded.plan, codes, params };
  }
  return data.packed ? { kind: 'packed', length: data.length, ...data.packed } : undefined;
}

export interface ComputeStatsOptions {
  readonly chunkBytes?: number;
  /** File tensors from this size on are split across the pool's workers (SPLIT_STATS_MIN_BYTES). */
  readonly splitBytes?: number;
}

/**
 * Statistics of one tensor. File-backed tensors and those of packed files are read by the
 * worker itself; other in-memory ones are materialised here (bounded by
 * MAX_IN_MEMORY_TENSOR_BYTES) and handed over.
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
  const { blocks } = data;
  // Quantized blocks: an Error saying why when the type is not decoded.
  if (blocks) decodedGgmlType(blocks);
  const expectedBytes = blocks
    ? storedBytesOf(blocks, info.parameterCount)
    : byteLengthOf(dtype, info.parameterCount);
  if (data.length !== expectedBytes) {
    throw new Error(
      `tensor "${info.name}" has ${data.length} bytes of data, but ${info.parameterCount} ${dtype} elements need ${expectedBytes}`,
    );
  }
  if (signal?.aborted) throw new JobAbortedError();
  const base = {
    dtype,
    elementCount: info.parameterCount,
    chunkBytes: options.chunkBytes,
    ...(blocks ? { blocks } : {}),
  };
  if (data.kind === 'file') {
    const splitBytes = options.splitBytes ?? SPLIT_STATS_MIN_BYTES;
    if (pool.size > 1 && data.length >= splitBytes && DTYPES[dtype].bits >= 8) {
      return splitFileStats(pool, dtype, info.parameterCount, data, options, signal);
    }
    const job: StatsJob = { ...base, source: workerSourceOf(data)! };
    return pool.run(job, signal) as Promise<TensorStatsValues>;
  }
  const packed = workerSourceOf(data);
  if (packed && data.length > MAX_PACKED_STATS_BYTES) {
    throw new Error(
      `tensor "${info.name}" holds ${data.length} bytes in a packed file; statistics decode packed tensors of at most ${MAX_PACKED_STATS_BYTES} bytes (unpack the file to analyse it)`,
    );
  }
  if (packed) return pool.run({ ...base, source: packed }, signal) as Promise<TensorStatsValues>;
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
  return pool.run(job, signal, [bytes.buffer]) as Promise<TensorStatsValues>;
}

/**
 * One file tensor's statistics from as many parts as the pool has workers: one round of
 * pattern counts for 16-bit types (added up), one round of moments and grid histograms
 * for float32 (merged), else a round of moments, then a round of histograms over the
 * merged range (see statsParts.ts).
 */
async function splitFileStats(
  pool: WorkerPool,
  dtype: NumericDType,
  elementCount: number,
  data: { readonly path: string; readonly offset: number; readonly blocks?: string },
  options: ComputeStatsOptions,
  signal: AbortSignal | undefined,
): Promise<TensorStatsValues> {
  const ranges = splitElements(dtype, elementCount, pool.size);
  const jobFor = (range: (typeof ranges)[number], part: StatsJob['part']): StatsJob => ({
    dtype,
    elementCount: range.count,
    chunkBytes: options.chunkBytes,
    // Parts start on multiples of 1024 values, whole blocks of every ggml type.
    source: {
      kind: 'file',
      path: data.path,
      offset:
        data.offset + (data.blocks ? storedBytesOf(data.blocks, range.start) : range.byteOffset),
      length: data.blocks ? storedBytesOf(data.blocks, range.count) : range.byteLength,
    },
    ...(data.blocks ? { blocks: data.blocks } : {}),
    part,
  });
  if (!data.blocks && countsPatterns(dtype)) {
    const parts = (await Promise.all(
      ranges.map((range) => pool.run(jobFor(range, { kind: 'patterns' }), signal)),
    )) as Float64Array[];
    const counts = parts[0]!;
    for (const part of parts.slice(1)) {
      for (let pattern = 0; pattern < counts.length; pattern++) counts[pattern]! += part[pattern]!;
    }
    return statsOfPatternCounts(dtype, counts);
  }
  if (binsOnGrid(dtype)) {
    const parts = (await Promise.all(
      ranges.map((range) => pool.run(jobFor(range, { kind: 'onePass' }), signal)),
    )) as { moments: MomentsSummary; grid: GridState }[];
    return statsFromOnePassParts(parts);
  }
  const moments = mergeMoments(
    (await Promise.all(
      ranges.map((range) => pool.run(jobFor(range, { kind: 'moments' }), signal)),
    )) as MomentsSummary[],
  );
  if (moments.finiteCount === 0) return statsFromParts(moments, []);
  const range = {
    kind: 'histogram' as const,
    min: moments.min,
    max: moments.max,
    allFinite: moments.nanCount + moments.infCount === 0,
  };
  const counts = (await Promise.all(
    ranges.map((part) => pool.run(jobFor(part, range), signal)),
  )) as number[][];
  return statsFromParts(moments, counts);
}

/**
 * Statistics of one large tensor split across workers. float32 parts are read once each
 * (moments and a grid histogram, merged exactly: see GridHistogram); 16-bit parts are
 * counted by pattern (stats.ts, countPatternsOf). For other types, each part of the tensor's
 * elements is summarised on its own (count, Chan mean/M2, extremes, zeros, non-finite
 * counts) and the summaries are merged exactly as blocks are within one part. The
 * histogram needs the tensor's range first, so it is a second round over the parts with
 * the merged min/max: every part bins with the same origin and scale, and the counts
 * add up to those of a single pass, bin for bin. (The single-worker path reads a tensor
 * larger than one chunk twice as well.)
 */
import { byteLengthOf, DTYPES } from '../../shared/dtypes';
import { HISTOGRAM_BINS, STATS_CHUNK_BYTES } from '../../shared/limits';
import { elementsInBytes, type NumericDType } from './decode';
import {
  addInOnePass,
  forEachDecoded,
  GridHistogram,
  HistogramAccumulator,
  kernelReadBuffers,
  MomentAccumulator,
  summarise,
  type GridState,
  type MomentsSummary,
  type StatsOptions,
  type TensorBytes,
  type TensorStatsValues,
} from './stats';

/** Elements decoded into scratch at a time (as in stats.ts). */
const SCRATCH_ELEMENTS = 16384;

/** One part of a tensor: `count` elements from element `start`, at `byteOffset` of its data. */
export interface ElementRange {
  readonly start: number;
  readonly count: number;
  readonly byteOffset: number;
  readonly byteLength: number;
}

/**
 * `parts` consecutive ranges covering `elementCount` elements of a byte-sized dtype,
 * each starting on a multiple of 1024 elements (so float views stay aligned and the
 * statistics blocks of a part line up with a single pass's).
 */
export function splitElements(
  dtype: NumericDType,
  elementCount: number,
  parts: number,
): ElementRange[] {
  if (DTYPES[dtype].bits < 8) throw new Error(`${dtype} tensors are not split`);
  const granule = 1024;
  const per = Math.ceil(elementCount / parts / granule) * granule;
  const ranges: ElementRange[] = [];
  for (let start = 0; start < elementCount; start += per) {
    const count = Math.min(per, elementCount - start);
    ranges.push({
      start,
      count,
      byteOffset: byteLengthOf(dtype, start),
      byteLength: byteLengthOf(dtype, count),
    });
  }
  return ranges;
}

function walkValues(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  options: StatsOptions,
  visit: (values: Float32Array | Float64Array) => void,
): Promise<void> {
  const expected = byteLengthOf(dtype, elementCount);
  if (source.byteLength !== expected) {
    throw new Error(
      `${elementCount} ${dtype} elements need ${expected} bytes, but the data holds ${source.byteLength}`,
    );
  }
  const chunkBytes = Math.max(8, Math.floor((options.chunkBytes ?? STATS_CHUNK_BYTES) / 8) * 8);
  const isCancelled = options.isCancelled ?? (() => false);
  const scratch = new Float64Array(SCRATCH_ELEMENTS);
  let remaining = elementCount;
  return source.chunks(
    chunkBytes,
    (chunk) => {
      if (isCancelled()) {
        const error = new Error('The statistics computation was cancelled');
        error.name = 'AbortError';
        throw error;
      }
      const elements = Math.min(remaining, elementsInBytes(dtype, chunk.byteLength));
      remaining -= elements;
      forEachDecoded(dtype, chunk, elements, scratch, visit);
    },
    kernelReadBuffers(dtype),
  );
}

function summaryOf(moments: MomentAccumulator): MomentsSummary {
  const { total, finiteCount, mean, m2, min, max, zeros, nanCount, infCount } = moments;
  return { total, finiteCount, mean, m2, min, max, zeros, nanCount, infCount };
}

/** Moments and grid histogram of one part of a float32 tensor (binsOnGrid), in one pass. */
export async function computeOnePassPart(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  options: StatsOptions = {},
): Promise<{ readonly moments: MomentsSummary; readonly grid: GridState }> {
  const moments = new MomentAccumulator();
  const grid = new GridHistogram(options.bins ?? HISTOGRAM_BINS);
  await walkValues(dtype, elementCount, source, options, (values) =>
    addInOnePass(moments, grid, values),
  );
  return { moments: summaryOf(moments), grid: grid.state() };
}

/** The tensor's statistics from its one-pass parts (computeOnePassPart), in order. */
export function statsFromOnePassParts(
  parts: readonly { readonly moments: MomentsSummary; readonly grid: GridState }[],
): TensorStatsValues {
  const moments = mergeMoments(parts.map((part) => part.moments));
  const [first, ...others] = parts.map((part) => GridHistogram.fromState(part.grid));
  for (const other of others) first!.absorb(other);
  return summarise(moments, first ?? null);
}

/** Moments, extremes and counts of one part. */
export async function computeMomentsPart(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  options: StatsOptions = {},
): Promise<MomentsSummary> {
  const moments = new MomentAccumulator();
  await walkValues(dtype, elementCount, source, options, (values) => moments.add(values));
  return summaryOf(moments);
}

/** Histogram counts of one part over the whole tensor's [min, max]. */
export async function computeHistogramPart(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  range: { readonly min: number; readonly max: number; readonly allFinite: boolean },
  options: StatsOptions = {},
): Promise<number[]> {
  const histogram = new HistogramAccumulator(range.min, range.max, options.bins ?? HISTOGRAM_BINS);
  await walkValues(dtype, elementCount, source, options, (values) =>
    histogram.add(values, range.allFinite),
  );
  return Array.from(histogram.counts);
}

/** The merged moments of all parts, in order. */
export function mergeMoments(parts: readonly MomentsSummary[]): MomentAccumulator {
  const merged = new MomentAccumulator();
  for (const part of parts) merged.absorb(part);
  return merged;
}

/** The tensor's statistics from merged moments and the parts' histogram counts (none: no finite values). */
export function statsFromParts(
  moments: MomentAccumulator,
  histogramParts: readonly (readonly number[])[],
  bins: number = HISTOGRAM_BINS,
): TensorStatsValues {
  if (moments.finiteCount === 0 || histogramParts.length === 0) return summarise(moments, null);
  const histogram = new HistogramAccumulator(moments.min, moments.max, bins);
  for (const counts of histogramParts) {
    for (let bin = 0; bin < bins; bin++) histogram.counts[bin]! += counts[bin]!;
  }
  return summarise(moments, histogram);
}

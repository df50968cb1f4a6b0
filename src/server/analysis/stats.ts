/**
 * Streaming per-tensor statistics: moments, extremes, sparsity, norm, non-finite counts
 * and a histogram, computed chunk by chunk so that a tensor never has to fit in memory.
 *
 * Moments are exact-ish in float64: each block of BLOCK_ELEMENTS values is summarised
 * with two passes (mean, then squared deviations, while the block is in cache) and blocks
 * are merged with Chan et al.'s parallel formula. float32 values (and float16/bfloat16,
 * widened exactly) go through the WebAssembly kernels of wasmStats.ts, which sum a block's
 * deviations and squared deviations from the running mean in one pass and compute bin
 * positions in float32 lanes checked against the bin edges (same counts).
 *
 * Each tensor is read once where the type allows: 16-bit types by counting their bit
 * patterns (patternCounts.ts, exact [min, max] bins), float32 with a histogram on a
 * power-of-two grid re-based as the range grows (GridHistogram). Other types need the
 * final range for their [min, max] bins, so a tensor larger than one chunk is read twice.
 */
import * as fs from 'node:fs';
import { byteLengthOf } from '../../shared/dtypes';
import { HISTOGRAM_BINS, STATS_CHUNK_BYTES } from '../../shared/limits';
import type { Histogram, TensorStats } from '../../shared/model';
import { ModelFileError } from '../formats/types';
import { decodeHalfToFloat32, decodeValues, elementsInBytes, type NumericDType } from './decode';
import { countsPatterns, patternCounter, patternValues } from './patternCounts';
import {
  flushKernelCounts,
  MAX_KERNEL_BINS,
  PIECE_ELEMENTS,
  statsKernel,
  type StatsKernel,
} from './wasmStats';

export type TensorStatsValues = Omit<TensorStats, 'index'>;

/**
 * Lends `count` buffers of `byteLength` bytes for a reader to fill in turn, until it calls
 * `release()`; null when they are lent out already.
 */
export type ReadBuffers = (
  byteLength: number,
  count: number,
) => { readonly buffers: readonly Uint8Array[]; release(): void } | null;

/** The bytes of one tensor, delivered in consecutive element-aligned chunks. */
export interface TensorBytes {
  readonly byteLength: number;
  /**
   * Calls `visit` with consecutive chunks of at most `chunkBytes` bytes that cover the
   * tensor in order. A chunk's memory may be reused once `visit` returns. A reader that
   * copies the bytes (from a file) copies them into `readBuffers` when given.
   */
  chunks(
    chunkBytes: number,
    visit: (chunk: Uint8Array) => void,
    readBuffers?: ReadBuffers,
  ): Promise<void>;
}

export interface StatsOptions {
  /** Bytes read and decoded at a time (rounded down to a multiple of 8). */
  readonly chunkBytes?: number;
  readonly bins?: number;
  /** Polled between chunks; when it returns true the computation stops with an AbortError. */
  readonly isCancelled?: () => boolean;
}

/** Values summarised with two passes at a time; small enough to stay in the L1/L2 cache. */
const BLOCK_ELEMENTS = 4096;
/**
 * float32 arrays at least this long go through the WebAssembly SIMD kernels (same blocks,
 * same arithmetic); shorter ones are not worth the copy into the module's memory.
 */
const KERNEL_MIN_ELEMENTS = 1024;
/** Elements decoded at a time for types that are not read in place (multiple of 8). */
const DECODE_ELEMENTS = 16384;
/** float16/bfloat16 values widened at a time: whole 4096-value blocks, 256 KB of float32. */
const HALF_PIECE_ELEMENTS = PIECE_ELEMENTS;

type Values = Float32Array | Float64Array;

/** What a MomentAccumulator knows, as plain data (it crosses thread boundaries). */
export interface MomentsSummary {
  readonly total: number;
  readonly finiteCount: number;
  readonly mean: number;
  readonly m2: number;
  readonly min: number;
  readonly max: number;
  readonly zeros: number;
  readonly nanCount: number;
  readonly infCount: number;
}

/** Count, extremes and moments of the finite values, plus zero and non-finite counts. */
export class MomentAccumulator implements MomentsSummary {
  /** Elements seen, finite or not. */
  total = 0;
  finiteCount = 0;
  mean = 0;
  /** Sum of squared deviations from the mean (finite values). */
  m2 = 0;
  min = Infinity;
  max = -Infinity;
  zeros = 0;
  nanCount = 0;
  infCount = 0;

  add(values: Values): void {
    const length = values.length;
    this.total += length;
    const kernel =
      values instanceof Float32Array && length >= KERNEL_MIN_ELEMENTS ? statsKernel() : null;
    if (kernel) {
      this.addWithKernel(kernel, values as Float32Array);
      return;
    }
    for (let start = 0; start < length; start += BLOCK_ELEMENTS) {
      this.addBlock(values, start, Math.min(start + BLOCK_ELEMENTS, length));
    }
  }

  /** The same blocks through the SIMD kernel; blocks with non-finite values come back here. */
  private addWithKernel(kernel: StatsKernel, values: Float32Array): void {
    const state = Float64Array.of(
      this.finiteCount,
      this.mean,
      this.m2,
      this.min,
      this.max,
      this.zeros,
    );
    const load = () => {
      [this.finiteCount, this.mean, this.m2, this.min, this.max, this.zeros] = state;
    };
    kernel.moments(values, BLOCK_ELEMENTS, state, (start, end) => {
      load();
      this.addBlockWithNonFinite(values, start, end);
      state.set([this.finiteCount, this.mean, this.m2, this.min, this.max, this.zeros]);
    });
    load();
  }

  private addBlock(values: Values, start: number, end: number): void {
    // Fast path without per-element finiteness checks: a NaN or ±Infinity in the block
    // makes the sum non-finite, and the block is then redone with checks. Two elements
    // per step with two sums shortens the chain of dependent additions. Sums are taken
    // around a shift near the mean, so that data far from zero loses no precision.
    const shift = this.shiftFor(values, start, end);
    let evenSum = 0;
    let oddSum = 0;
    let zeros = 0;
    let min = Infinity;
    let max = -Infinity;
    let i = start;
    for (; i + 1 < end; i += 2) {
      const even = values[i]!;
      const odd = values[i + 1]!;
      evenSum += even - shift;
      oddSum += odd - shift;
      if (even === 0) zeros++;
      if (odd === 0) zeros++;
      if (even < min) min = even;
      if (even > max) max = even;
      if (odd < min) min = odd;
      if (odd > max) max = odd;
    }
    if (i < end) {
      const last = values[i]!;
      evenSum += last - shift;
      if (last === 0) zeros++;
      if (last < min) min = last;
      if (last > max) max = last;
    }
    const sum = evenSum + oddSum;
    // value - value is 0 for finite numbers and NaN for NaN and ±Infinity.
    if (sum - sum !== 0) {
      this.addBlockWithNonFinite(values, start, end);
      return;
    }
    const count = end - start;
    const blockMean = shift + sum / count;
    let evenM2 = 0;
    let oddM2 = 0;
    for (i = start; i + 1 < end; i += 2) {
      const evenDeviation = values[i]! - blockMean;
      const oddDeviation = values[i + 1]! - blockMean;
      evenM2 += evenDeviation * evenDeviation;
      oddM2 += oddDeviation * oddDeviation;
    }
    if (i < end) {
      const deviation = values[i]! - blockMean;
      evenM2 += deviation * deviation;
    }
    this.zeros += zeros;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    this.merge(count, blockMean, evenM2 + oddM2);
  }

  /** The running mean, or for the first block its first value; 0 when neither is finite. */
  private shiftFor(values: Values, start: number, end: number): number {
    if (this.finiteCount > 0) return this.mean;
    const first = start < end ? values[start]! : 0;
    return first - first === 0 ? first : 0;
  }

  /** The same summary for a block that holds NaN or ±Infinity (or whose float64 sum overflowed). */
  private addBlockWithNonFinite(values: Values, start: number, end: number): void {
    let min = this.min;
    let max = this.max;
    const shift = this.shiftFor(values, start, end);
    let sum = 0;
    let zeros = 0;
    let nonFinite = 0;
    for (let i = start; i < end; i++) {
      const value = values[i]!;
      if (value - value !== 0) {
        nonFinite++;
        if (value !== value) this.nanCount++;
        else this.infCount++;
        continue;
      }
      if (value === 0) zeros++;
      if (value < min) min = value;
      if (value > max) max = value;
      sum += value - shift;
    }
    this.zeros += zeros;
    const count = end - start - nonFinite;
    if (count === 0) return;
    this.min = min;
    this.max = max;
    // The sum of finite float64 values can still overflow; a sum of value/count cannot.
    const blockMean = Number.isFinite(sum)
      ? shift + sum / count
      : scaledMean(values, start, end, count);
    let blockM2 = 0;
    for (let i = start; i < end; i++) {
      const deviation = values[i]! - blockMean;
      if (deviation - deviation === 0) blockM2 += deviation * deviation;
    }
    this.merge(count, blockMean, blockM2);
  }

  /** Adds another accumulator's summary (of other elements of the same tensor). */
  absorb(other: MomentsSummary): void {
    this.total += other.total;
    this.zeros += other.zeros;
    this.nanCount += other.nanCount;
    this.infCount += other.infCount;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    if (other.finiteCount > 0) this.merge(other.finiteCount, other.mean, other.m2);
  }

  /** Chan et al.: combine this summary with another group's count, mean and M2. */
  private merge(count: number, mean: number, m2: number): void {
    const total = this.finiteCount + count;
    const delta = mean - this.mean;
    this.mean += (delta * count) / total;
    this.m2 += m2 + ((delta * delta * this.finiteCount) / total) * count;
    this.finiteCount = total;
  }
}

function scaledMean(values: Values, start: number, end: number, count: number): number {
  let mean = 0;
  for (let i = start; i < end; i++) {
    const value = values[i]!;
    if (value - value === 0) mean += value / count;
  }
  return mean;
}

/** Fixed-range histogram of finite values; the last bin includes its upper edge. */
export class HistogramAccumulator {
  /** The bin counts, some of which may wait in the kernel: read them through `counts`. */
  private readonly binCounts: Float64Array;
  private readonly evenCounts: Uint32Array;
  private readonly oddCounts: Uint32Array;
  readonly low: number;
  readonly high: number;
  private readonly origin: number;
  private readonly scale: number;
  private readonly valueScale: number;
  /** All values go to one bin when the range has no width (or no resolution left). */
  private readonly singleBin: number;

  /** The bin counts (the kernel's waiting counts added first). */
  get counts(): Float64Array {
    flushKernelCounts(this.binCounts);
    return this.binCounts;
  }

  constructor(min: number, max: number, bins: number) {
    this.binCounts = new Float64Array(bins);
    this.evenCounts = new Uint32Array(bins);
    this.oddCounts = new Uint32Array(bins);
    // Like NumPy, a range of one value is widened to ±0.5 around it.
    this.low = min === max ? min - 0.5 : min;
    this.high = min === max ? max + 0.5 : max;
    this.singleBin = this.low === this.high ? bins >> 1 : -1;
    // A range wider than the largest double (e.g. -1e308…1e308) is binned on halved values.
    this.valueScale = Number.isFinite(this.high - this.low) ? 1 : 0.5;
    this.origin = this.low * this.valueScale;
    this.scale = bins / (this.high * this.valueScale - this.origin);
  }

  /** Counts `count` copies of the finite `value` (the bin `add` gives it). */
  addRepeated(value: number, count: number): void {
    if (this.singleBin >= 0) {
      this.counts[this.singleBin]! += count;
      return;
    }
    const bin = ((value * this.valueScale - this.origin) * this.scale) | 0;
    const lastBin = this.binCounts.length - 1;
    this.counts[bin > lastBin ? lastBin : bin]! += count;
  }

  /**
   * Bins the finite values of `values`. `allFinite` (known once the moments pass is done)
   * skips the per-element finiteness check.
   */
  add(values: Values, allFinite: boolean): void {
    const length = values.length;
    if (this.singleBin >= 0) {
      let finite = 0;
      for (let i = 0; i < length; i++) if (values[i]! - values[i]! === 0) finite++;
      this.counts[this.singleBin]! += finite;
      return;
    }
    const kernel =
      this.valueScale === 1 &&
      values instanceof Float32Array &&
      length >= KERNEL_MIN_ELEMENTS &&
      this.binCounts.length <= MAX_KERNEL_BINS
        ? statsKernel()
        : null;
    if (
      kernel?.histogram(values as Float32Array, this.origin, this.scale, this.binCounts, allFinite)
    ) {
      return;
    }
    // Two integer sub-histograms: consecutive equal bins do not wait on each other's store.
    const even = this.evenCounts;
    const odd = this.oddCounts;
    const origin = this.origin;
    const scale = this.scale;
    const valueScale = this.valueScale;
    const lastBin = this.binCounts.length - 1;
    if (allFinite && valueScale === 1) {
      let i = 0;
      for (; i + 1 < length; i += 2) {
        const evenBin = ((values[i]! - origin) * scale) | 0;
        const oddBin = ((values[i + 1]! - origin) * scale) | 0;
        even[evenBin > lastBin ? lastBin : evenBin]++;
        odd[oddBin > lastBin ? lastBin : oddBin]++;
      }
      if (i < length) {
        const bin = ((values[i]! - origin) * scale) | 0;
        even[bin > lastBin ? lastBin : bin]++;
      }
    } else {
      for (let i = 0; i < length; i++) {
        const value = values[i]!;
        if (value - value !== 0) continue;
        const bin = ((value * valueScale - origin) * scale) | 0;
        even[bin > lastBin ? lastBin : bin]++;
      }
    }
    // Fold into float64 totals after each call so the 32-bit counters cannot overflow.
    for (let bin = 0; bin <= lastBin; bin++) {
      this.counts[bin]! += even[bin]! + odd[bin]!;
    }
    even.fill(0);
    odd.fill(0);
  }
}

/** GridHistogram's state: its grid, range, waiting values and counts (null: no window yet). */
export interface GridState {
  readonly bins: number;
  readonly exponent: number;
  readonly first: number;
  readonly low: number;
  readonly high: number;
  readonly waiting: number;
  readonly waitingAt: number;
  readonly counts: readonly number[] | null;
}

/**
 * float32 values (the type of most full-precision checkpoints, and of dequantized blocks)
 * are read once: moments and a GridHistogram together. Other types that are not counted
 * by pattern read a tensor larger than one chunk twice, for bins over [min, max].
 */
export function binsOnGrid(dtype: NumericDType): boolean {
  return dtype === 'float32';
}

/**
 * Adds float32 `values` to `moments` and `grid` piece by piece (whole moment blocks), so
 * that each piece is binned while it is still in the cache.
 */
export function addInOnePass(
  moments: MomentAccumulator,
  grid: GridHistogram,
  values: Values,
): void {
  for (let start = 0; start < values.length; start += PIECE_ELEMENTS) {
    const piece = values.subarray(start, start + PIECE_ELEMENTS);
    const finiteBefore = moments.finiteCount;
    moments.add(piece);
    grid.add(
      piece,
      moments.min,
      moments.max,
      moments.finiteCount - finiteBefore,
      moments.nanCount + moments.infCount === 0,
    );
  }
}

/**
 * A histogram of float32 values built in one pass while their range is still growing. Its
 * bins are 2^e wide and start on multiples of 2^e, e the smallest exponent for which the
 * values seen span at most `bins` of them; the window starts at the bin of the smallest
 * value. When the range grows, e only grows and the window only moves down, so each old
 * bin lies inside exactly one new bin: counts are merged exactly (re-based), and the final
 * counts are those of binning every value directly on the final grid, whatever the order
 * or the chunking of the values. Unlike HistogramAccumulator's [min, max] bins, the edges
 * are powers-of-two steps around [min, max], reported as they are (`histogram()`), with
 * the empty bins past the largest value left out (between bins/2 and `bins` bins remain).
 * Values of a range with no width wait, counted, until the range has one; a tensor of one
 * value gets HistogramAccumulator's ±0.5 histogram.
 */
export class GridHistogram {
  private exponent = 0;
  /** Grid index (multiples of 2^exponent) of the window's first bin. */
  private first = 0;
  /** The window's bin counts (some may wait in the kernel: read them through `windowCounts`). */
  private counts: Float64Array | null = null;
  private low = Infinity;
  private high = -Infinity;
  /** Finite values seen while low === high, all equal to `waitingAt`. */
  private waiting = 0;
  private waitingAt = NaN;

  constructor(private readonly bins: number) {}

  /** Everything the histogram knows, as plain data (it crosses thread boundaries). */
  state(): GridState {
    const { bins, exponent, first, low, high, waiting, waitingAt } = this;
    const counts = this.counts ? Array.from(this.windowCounts()) : null;
    return { bins, exponent, first, low, high, waiting, waitingAt, counts };
  }

  static fromState(state: GridState): GridHistogram {
    const grid = new GridHistogram(state.bins);
    grid.exponent = state.exponent;
    grid.first = state.first;
    grid.low = state.low;
    grid.high = state.high;
    grid.waiting = state.waiting;
    grid.waitingAt = state.waitingAt;
    if (state.counts) grid.counts = Float64Array.from(state.counts);
    return grid;
  }

  /**
   * Bins the finite values of `values`; `low` and `high` are the extremes of the finite
   * values seen so far, these included, and `finite` how many of these are finite.
   */
  add(values: Values, low: number, high: number, finite: number, allFinite: boolean): void {
    if (finite === 0) return;
    this.low = low;
    this.high = high;
    if (low === high) {
      this.waiting += finite;
      this.waitingAt = low;
      return;
    }
    this.cover(low, high);
    const counts = this.counts!;
    // bin = floor(value / 2^e) − first: exact in float64, and in the kernel's float32.
    const inverseWidth = 2 ** -this.exponent;
    const first = this.first;
    const kernel =
      values instanceof Float32Array && values.length >= KERNEL_MIN_ELEMENTS ? statsKernel() : null;
    if (kernel?.gridHistogram(values as Float32Array, inverseWidth, first, counts, allFinite)) {
      return;
    }
    flushKernelCounts(counts);
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (value - value === 0) counts[Math.floor(value * inverseWidth) - first]!++;
    }
  }

  /** Adds another grid histogram of other values of the same tensor (a part's). */
  absorb(other: GridHistogram): void {
    if (other.low > other.high) return;
    const low = Math.min(this.low, other.low);
    const high = Math.max(this.high, other.high);
    this.low = low;
    this.high = high;
    if (low === high) {
      this.waiting += other.waiting;
      this.waitingAt = low;
      return;
    }
    this.cover(low, high);
    other.cover(low, high);
    const counts = this.windowCounts();
    const others = other.windowCounts();
    for (let bin = 0; bin < this.bins; bin++) counts[bin]! += others[bin]!;
  }

  /** The window's counts, with those waiting in the kernel added. */
  private windowCounts(): Float64Array {
    flushKernelCounts(this.counts!);
    return this.counts!;
  }

  /** The window for [low, high] (low < high) on the finest grid that holds it, re-based. */
  private cover(low: number, high: number): void {
    let exponent = this.counts
      ? this.exponent
      : Math.floor(Math.log2((high - low) / this.bins)) - 1;
    while (Math.floor(high / 2 ** exponent) - Math.floor(low / 2 ** exponent) >= this.bins) {
      exponent++;
    }
    const first = Math.floor(low / 2 ** exponent);
    if (this.counts && exponent === this.exponent && first === this.first) return;
    const next = new Float64Array(this.bins);
    if (this.counts) {
      const merged = 2 ** (exponent - this.exponent);
      const counts = this.windowCounts();
      for (let bin = 0; bin < this.bins; bin++) {
        if (counts[bin] !== 0) {
          next[Math.floor((this.first + bin) / merged) - first]! += counts[bin]!;
        }
      }
    }
    if (this.waiting > 0) {
      next[Math.floor(this.waitingAt / 2 ** exponent) - first]! += this.waiting;
      this.waiting = 0;
    }
    this.counts = next;
    this.exponent = exponent;
    this.first = first;
  }

  /** The counts and edges; null when no finite value was seen. */
  histogram(): Histogram | null {
    if (this.low > this.high) return null;
    if (this.low === this.high) {
      const single = new HistogramAccumulator(this.low, this.high, this.bins);
      single.addRepeated(this.low, this.waiting);
      return histogramOf(single);
    }
    const width = 2 ** this.exponent;
    const used = Math.floor(this.high / width) - this.first + 1;
    return {
      min: this.first * width,
      max: (this.first + used) * width,
      counts: Array.from(this.windowCounts().subarray(0, used)),
    };
  }
}

function abortError(): Error {
  const error = new Error('The statistics computation was cancelled');
  error.name = 'AbortError';
  return error;
}

/** float32 scratch for 16-bit floats widened in pieces (reused; its users are synchronous). */
let halfScratch: Float32Array | null = null;

/**
 * Calls `use` on the decoded values of one chunk, in pieces for types decoded into scratch.
 * float16 and bfloat16 are widened to float32 (exactly), so that they take the float32
 * kernels; other narrow types are decoded into the float64 `scratch`.
 */
export function forEachDecoded(
  dtype: NumericDType,
  chunk: Uint8Array,
  elementCount: number,
  scratch: Float64Array,
  use: (values: Values) => void,
): void {
  if (dtype === 'float32' || dtype === 'float64') {
    use(decodeValues(dtype, chunk, elementCount));
    return;
  }
  if (dtype === 'float16' || dtype === 'bfloat16') {
    // Widened by the kernel module when it loads (SIMD, in its memory), else here.
    const kernel = statsKernel();
    halfScratch ??= kernel ? null : new Float32Array(HALF_PIECE_ELEMENTS);
    for (let done = 0; done < elementCount; done += HALF_PIECE_ELEMENTS) {
      const pieceElements = Math.min(HALF_PIECE_ELEMENTS, elementCount - done);
      const piece = chunk.subarray(done * 2);
      use(
        kernel
          ? kernel.widen(dtype, piece, pieceElements)
          : decodeHalfToFloat32(dtype, piece, pieceElements, halfScratch!),
      );
    }
    return;
  }
  const bytesPerPiece = byteLengthOf(dtype, DECODE_ELEMENTS);
  for (let done = 0; done < elementCount; done += DECODE_ELEMENTS) {
    const pieceElements = Math.min(DECODE_ELEMENTS, elementCount - done);
    const byteStart = (done / DECODE_ELEMENTS) * bytesPerPiece;
    use(decodeValues(dtype, chunk.subarray(byteStart), pieceElements, scratch));
  }
}

/**
 * For float32 data, buffers in the statistics kernel's memory to read file chunks into,
 * so that the kernels work on them in place (no copy); undefined otherwise.
 */
export function kernelReadBuffers(dtype: NumericDType): ReadBuffers | undefined {
  const kernel = dtype === 'float32' || countsPatterns(dtype) ? statsKernel() : null;
  return kernel ? (byteLength, count) => kernel.lendReadBuffers(byteLength, count) : undefined;
}

/** Statistics of `elementCount` elements of `dtype` delivered by `source`. */
export async function computeStats(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  options: StatsOptions = {},
): Promise<TensorStatsValues> {
  const expectedBytes = byteLengthOf(dtype, elementCount);
  if (source.byteLength !== expectedBytes) {
    throw new Error(
      `${elementCount} ${dtype} elements need ${expectedBytes} bytes, but the data holds ${source.byteLength}`,
    );
  }
  const bins = options.bins ?? HISTOGRAM_BINS;
  if (countsPatterns(dtype)) {
    return statsOfPatternCounts(
      dtype,
      await countPatternsOf(dtype, elementCount, source, options),
      bins,
    );
  }
  const chunkBytes = chunkBytesOf(options);
  const isCancelled = options.isCancelled ?? (() => false);
  const scratch = new Float64Array(DECODE_ELEMENTS);
  const moments = new MomentAccumulator();
  const grid = binsOnGrid(dtype) ? new GridHistogram(bins) : null;
  const singleChunk = expectedBytes <= chunkBytes;
  let histogram: HistogramAccumulator | null = null;

  // Elements of each chunk in turn; the last chunk may hold a padding nibble (4-bit types).
  const walk = (
    visitValues: (values: Values) => void,
    afterChunk?: (chunk: Uint8Array, elements: number) => void,
  ) => {
    let remaining = elementCount;
    return source.chunks(
      chunkBytes,
      (chunk) => {
        if (isCancelled()) throw abortError();
        const elements = Math.min(remaining, elementsInBytes(dtype, chunk.byteLength));
        remaining -= elements;
        forEachDecoded(dtype, chunk, elements, scratch, visitValues);
        afterChunk?.(chunk, elements);
      },
      kernelReadBuffers(dtype),
    );
  };

  if (grid) {
    await walk((values) => addInOnePass(moments, grid, values));
    if (isCancelled()) throw abortError();
    return summarise(moments, grid);
  }
  await walk(
    (values) => moments.add(values),
    (chunk, elements) => {
      // A tensor that fits one chunk is binned now, while its bytes are at hand.
      if (singleChunk && moments.finiteCount > 0) {
        histogram = new HistogramAccumulator(moments.min, moments.max, bins);
        const target = histogram;
        const allFinite = moments.nanCount + moments.infCount === 0;
        forEachDecoded(dtype, chunk, elements, scratch, (values) => target.add(values, allFinite));
      }
    },
  );
  if (!singleChunk && moments.finiteCount > 0) {
    const target = new HistogramAccumulator(moments.min, moments.max, bins);
    histogram = target;
    const allFinite = moments.nanCount + moments.infCount === 0;
    await walk((values) => target.add(values, allFinite));
  }
  if (isCancelled()) throw abortError();
  return summarise(moments, histogram);
}

function chunkBytesOf(options: StatsOptions): number {
  return Math.max(8, Math.floor((options.chunkBytes ?? STATS_CHUNK_BYTES) / 8) * 8);
}

/**
 * The count of each bit pattern of `elementCount` 16-bit values (countsPatterns) delivered
 * by `source`, in one pass.
 */
export async function countPatternsOf(
  dtype: NumericDType,
  elementCount: number,
  source: TensorBytes,
  options: StatsOptions = {},
): Promise<Float64Array> {
  const expectedBytes = byteLengthOf(dtype, elementCount);
  if (!countsPatterns(dtype) || source.byteLength !== expectedBytes) {
    throw new Error(
      `cannot count the patterns of ${elementCount} ${dtype} elements in ${source.byteLength} bytes`,
    );
  }
  const isCancelled = options.isCancelled ?? (() => false);
  const counter = patternCounter();
  try {
    await source.chunks(
      chunkBytesOf(options),
      (chunk) => {
        if (isCancelled()) throw abortError();
        counter.add(chunk, chunk.byteLength >> 1);
      },
      kernelReadBuffers(dtype),
    );
    if (isCancelled()) throw abortError();
    return counter.finish();
  } finally {
    counter.release();
  }
}

/**
 * Statistics of a 16-bit tensor from the counts of its patterns (countPatternsOf): counts,
 * extremes and histogram exactly as a pass over the values gives them; the mean from a
 * compensated float64 sum over the distinct values weighted by their counts, M2 from the
 * squared deviations from it.
 */
export function statsOfPatternCounts(
  dtype: NumericDType,
  counts: Float64Array,
  bins: number = HISTOGRAM_BINS,
): TensorStatsValues {
  const values = patternValues(dtype);
  const moments = new MomentAccumulator();
  let sum = 0;
  let compensation = 0;
  for (let pattern = 0; pattern < counts.length; pattern++) {
    const count = counts[pattern]!;
    if (count === 0) continue;
    const value = values[pattern]!;
    moments.total += count;
    if (value !== value) moments.nanCount += count;
    else if (value - value !== 0) moments.infCount += count;
    else {
      moments.finiteCount += count;
      // Neumaier's compensated sum of the count·value terms (65536 at most).
      const term = count * value;
      const next = sum + term;
      compensation += Math.abs(sum) >= Math.abs(term) ? sum - next + term : term - next + sum;
      sum = next;
      if (value === 0) moments.zeros += count;
      if (value < moments.min) moments.min = value;
      if (value > moments.max) moments.max = value;
    }
  }
  if (moments.finiteCount === 0) return summarise(moments, null);
  moments.mean = (sum + compensation) / moments.finiteCount;
  const histogram = new HistogramAccumulator(moments.min, moments.max, bins);
  for (let pattern = 0; pattern < counts.length; pattern++) {
    const count = counts[pattern]!;
    const value = values[pattern]!;
    if (count === 0 || value - value !== 0) continue;
    const deviation = value - moments.mean;
    moments.m2 += count * deviation * deviation;
    histogram.addRepeated(value, count);
  }
  return summarise(moments, histogram);
}

/** A fixed-range histogram's edges and counts. */
export function histogramOf(histogram: HistogramAccumulator): Histogram {
  return { min: histogram.low, max: histogram.high, counts: Array.from(histogram.counts) };
}

export function summarise(
  moments: MomentAccumulator,
  histogram: HistogramAccumulator | GridHistogram | null,
): TensorStatsValues {
  const hasFinite = moments.finiteCount > 0;
  // Σx² = M2 + n·mean²: two non-negative terms, so no cancellation.
  const sumOfSquares = moments.m2 + moments.finiteCount * moments.mean * moments.mean;
  return {
    count: moments.total,
    min: hasFinite ? moments.min : null,
    max: hasFinite ? moments.max : null,
    mean: hasFinite ? moments.mean : null,
    std: hasFinite ? Math.sqrt(moments.m2 / moments.finiteCount) : null,
    sparsity: moments.total === 0 ? 0 : moments.zeros / moments.total,
    l2Norm: Math.sqrt(sumOfSquares),
    nanCount: moments.nanCount,
    infCount: moments.infCount,
    histogram:
      histogram instanceof GridHistogram
        ? histogram.histogram()
        : histogram
          ? histogramOf(histogram)
          : null,
  };
}

/** Tensor bytes already in memory. */
export function memoryTensorBytes(bytes: Uint8Array): TensorBytes {
  return {
    byteLength: bytes.byteLength,
    async chunks(chunkBytes, visit) {
      for (let start = 0; start < bytes.byteLength; start += chunkBytes) {
        visit(bytes.subarray(start, Math.min(start + chunkBytes, bytes.byteLength)));
      }
    },
  };
}

/**
 * Tensor bytes at `offset` in a file, read chunk by chunk into two reused buffers (the
 * given `readBuffers`, or its own): the next chunk is read while `visit` works on this one.
 * With `synchronous` (a thread that waits for nothing else: a worker), each chunk is read
 * into one buffer on this thread, then visited: the copy out of the page cache runs on
 * this thread's core, and `visit` finds the bytes still in its cache.
 */
export function fileTensorBytes(
  path: string,
  offset: number,
  length: number,
  { synchronous = false } = {},
): TensorBytes {
  return {
    byteLength: length,
    async chunks(chunkBytes, visit, readBuffers) {
      let handle: fs.promises.FileHandle;
      try {
        handle = await fs.promises.open(path, 'r');
      } catch (error) {
        throw new ModelFileError(
          path,
          `cannot open the file to read tensor data (${describeError(error)})`,
        );
      }
      const endedAt = (at: number) =>
        new ModelFileError(
          path,
          `the file ends at byte ${at}, before the end of the tensor data (byte ${offset + length}); was it changed after it was opened?`,
        );
      const readChunk = async (buffer: Uint8Array, start: number): Promise<Uint8Array> => {
        const wanted = Math.min(buffer.byteLength, length - start);
        let filled = 0;
        while (filled < wanted) {
          const { bytesRead } = await handle.read(
            buffer,
            filled,
            wanted - filled,
            offset + start + filled,
          );
          if (bytesRead === 0) throw endedAt(offset + start + filled);
          filled += bytesRead;
        }
        return buffer.subarray(0, wanted);
      };
      const size = Math.max(1, Math.min(chunkBytes, length));
      if (synchronous) {
        const lent = readBuffers?.(size, 1) ?? null;
        const buffer = lent?.buffers[0] ?? new Uint8Array(size);
        try {
          for (let start = 0; start < length;) {
            const chunk = buffer.subarray(0, Math.min(size, length - start));
            for (let filled = 0; filled < chunk.byteLength;) {
              const at = offset + start + filled;
              const read = fs.readSync(handle.fd, chunk, filled, chunk.byteLength - filled, at);
              if (read === 0) throw endedAt(at);
              filled += read;
            }
            start += chunk.byteLength;
            visit(chunk);
          }
        } finally {
          lent?.release();
          await handle.close();
        }
        return;
      }
      let pending: Promise<Uint8Array> | null = null;
      const count = size < length ? 2 : 1;
      const lent = readBuffers?.(size, count) ?? null;
      try {
        // A fresh ArrayBuffer starts at offset 0, so float views on it are always aligned
        // (and lent buffers are 16-byte aligned).
        const buffers = lent?.buffers ?? Array.from({ length: count }, () => new Uint8Array(size));
        if (length > 0) pending = readChunk(buffers[0]!, 0);
        for (let done = 0, turn = 0; done < length; turn++) {
          const chunk: Uint8Array = await pending!;
          pending = null;
          done += chunk.byteLength;
          if (done < length) pending = readChunk(buffers[(turn + 1) % count]!, done);
          visit(chunk);
        }
      } finally {
        // A read still in flight (visit threw) finishes before the file is closed.
        await pending?.catch(() => undefined);
        lent?.release();
        await handle.close();
      }
    },
  };
}

function describeError(error: unknown): string {
  if (error instanceof Error)
    return 'code' in error && typeof error.code === 'string' ? error.code : error.message;
  return String(error);
}

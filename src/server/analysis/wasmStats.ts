/**
 * The WebAssembly (SIMD) statistics kernels of src/server/wasm/stats.ts, loaded once per
 * thread (see wasmLoader.ts). When they cannot be loaded, `statsKernel()` returns null and
 * the statistics use their plain TypeScript loops, which give the same results.
 */
import { instantiateWasm, type WasmMemory } from './wasmLoader';

interface StatsExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  momentsF32(values: number, start: number, end: number, state: number): number;
  histogramF32(
    values: number,
    count: number,
    origin: number,
    scale: number,
    lastBin: number,
    counts: number,
  ): void;
  histogramCheckedF32(
    values: number,
    count: number,
    origin: number,
    scale: number,
    lastBin: number,
    counts: number,
    origin32: number,
    scale32: number,
    near: number,
  ): void;
  widenFloat16(source: number, count: number, target: number): void;
  widenBfloat16(source: number, count: number, target: number): void;
  countPatterns16(source: number, count: number, table: number): void;
  histogramPairsF32(
    values: number,
    count: number,
    origin: number,
    scale: number,
    lastBin: number,
    counts: number,
    origin32: number,
    scale32: number,
    near: number,
    pairs: number,
  ): void;
  foldPairs(pairs: number, bins: number, counts: number): void;
  gridPairsF32(
    values: number,
    count: number,
    inverseWidth: number,
    first: number,
    lastBin: number,
    pairs: number,
    counts: number,
    checked: boolean,
  ): void;
}

/** Accumulator slots the kernel reads and writes: finite count, mean, M2, min, max, zeros. */
export const KERNEL_STATE_SLOTS = 6;
export const WASM_PAGE_BYTES = 65536;
/** Histograms with more bins than this take the TypeScript loop. */
export const MAX_KERNEL_BINS = 4096;
/**
 * Values copied into the module at a time (256 KB, a whole number of 4096-value blocks):
 * a piece is still in the core's cache when the kernel reads it.
 */
export const PIECE_ELEMENTS = 65536;
/** Distinct 16-bit patterns: the counters of a table of pattern counts. */
export const PATTERNS_16 = 65536;
/** Values counted between two folds of the kernel's u32 counters into float64 (no overflow). */
const PATTERN_FOLD_ELEMENTS = 2 ** 30;
/** Histograms of at most this many bins are counted by pairs of bins (histogramPairsF32). */
export const PAIR_BINS = 256;

/**
 * Inputs to the float32 bin arithmetic of histogramCheckedF32, or null when the float64
 * kernel must bin (range or scale out of float32's comfortable span, origin not a
 * float32). `near` bounds how far the float32 bin position may be from the float64 one:
 * each of the three float32 roundings (value − origin, scale, product) is within 2^-24
 * relative, the position is at most bins·(1 + 2^-50), so the two differ by less than
 * 3.01·2^-24·bins; `near` is more than twice that.
 */
export function float32Binning(
  origin: number,
  scale: number,
  bins: number,
): { origin32: number; scale32: number; near: number } | null {
  const origin32 = Math.fround(origin);
  const scale32 = Math.fround(scale);
  const span = bins / scale;
  const fits =
    origin32 === origin &&
    Number.isFinite(scale32) &&
    scale32 >= 2 ** -100 &&
    scale32 <= 2 ** 100 &&
    span <= 2 ** 120 &&
    bins <= MAX_KERNEL_BINS;
  return fits ? { origin32, scale32, near: (bins + 1) * 2 ** -21 } : null;
}

/** One instance of the kernels with the host side of their memory layout. */
export class StatsKernel {
  /**
   * Accumulator state (64 bytes), four lanes of MAX_KERNEL_BINS counters, a piece of
   * float32 values, a piece of 16-bit floats and the float32 values widened from them, two
   * tables of 16-bit pattern counters, two tables of bin-pair counters.
   */
  private readonly state: number;
  private readonly counts: number;
  private readonly piece: number;
  private readonly halves: number;
  private readonly widened: number;
  private readonly patterns: number;
  private readonly pairs: number;
  /**
   * The histogram whose counts wait in the pair counters and in the first lane of bin
   * counters (folded into `counts` by flush), or null: the pair counters are all zero.
   */
  private pending: {
    readonly counts: Float64Array;
    readonly origin: number;
    readonly scale: number;
    values: number;
  } | null = null;
  /** Start of the read buffers handed out by readBuffers(). */
  private readonly buffers: number;
  private lent = false;
  private patternsLent = false;

  constructor(private readonly wasm: StatsExports) {
    this.state = wasm.heapBase();
    this.counts = this.state + 64;
    this.piece = this.counts + MAX_KERNEL_BINS * 16;
    this.halves = this.piece + PIECE_ELEMENTS * 4;
    this.widened = this.halves + PIECE_ELEMENTS * 2;
    this.patterns = this.widened + PIECE_ELEMENTS * 4;
    this.pairs = this.patterns + PATTERNS_16 * 8;
    this.buffers = this.pairs + PAIR_BINS * PAIR_BINS * 8;
    this.ensure(this.buffers);
  }

  private ensure(bytes: number): void {
    const memory = this.wasm.memory;
    if (bytes > memory.buffer.byteLength) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE_BYTES));
    }
  }

  /**
   * Lends `count` buffers of `byteLength` bytes inside the module's memory, 16-byte
   * aligned, for reading tensor data into: float32 values decoded in place from them reach
   * the kernels without a copy. One reader at a time (null while they are lent): growing
   * the memory for another would detach them.
   */
  lendReadBuffers(
    byteLength: number,
    count: number,
  ): { readonly buffers: readonly Uint8Array[]; release(): void } | null {
    if (this.lent) return null;
    const stride = (byteLength + 15) & ~15;
    this.ensure(this.buffers + stride * count);
    const memory = this.wasm.memory.buffer;
    this.lent = true;
    let released = false;
    return {
      buffers: Array.from(
        { length: count },
        (_, index) => new Uint8Array(memory, this.buffers + stride * index, byteLength),
      ),
      release: () => {
        if (released) return;
        released = true;
        this.lent = false;
      },
    };
  }

  /**
   * Calls `run(address, start, count)` over `values` in the module's memory: in place when
   * they already are there, else piece by piece through a copy (`start` is the index in
   * `values` of the piece's first value).
   */
  private forPieces(
    values: Float32Array,
    run: (address: number, start: number, count: number) => void,
  ): void {
    if (values.buffer === this.wasm.memory.buffer) {
      run(values.byteOffset, 0, values.length);
      return;
    }
    const piece = new Float32Array(this.wasm.memory.buffer, this.piece, PIECE_ELEMENTS);
    for (let start = 0; start < values.length; start += PIECE_ELEMENTS) {
      const count = Math.min(PIECE_ELEMENTS, values.length - start);
      piece.set(values.subarray(start, start + count));
      run(this.piece, start, count);
    }
  }

  /**
   * Adds `values` to `state` (KERNEL_STATE_SLOTS numbers, updated in place) in blocks of
   * `blockElements` from the start of `values`; `addWithChecks(start, end)` is called for
   * each block holding non-finite values, with `state` current, and must update `state`.
   */
  moments(
    values: Float32Array,
    blockElements: number,
    state: Float64Array,
    addWithChecks: (start: number, end: number) => void,
  ): void {
    const stateView = new Float64Array(this.wasm.memory.buffer, this.state, KERNEL_STATE_SLOTS);
    stateView.set(state);
    this.forPieces(values, (address, first, count) => {
      // Pieces hold whole blocks, so the blocks are those of `values`.
      let start = 0;
      while (start < count) {
        const stopped = this.wasm.momentsF32(address, start, count, this.state);
        if (stopped >= count) break;
        const end = Math.min(stopped + blockElements, count);
        state.set(stateView);
        addWithChecks(first + stopped, first + end);
        stateView.set(state);
        start = end;
      }
    });
    state.set(stateView);
  }

  /**
   * Adds the bins of the finite `values` (within the range that gave `origin` and `scale`)
   * to `counts` (Float64Array of at most MAX_KERNEL_BINS bins). Returns false, having done
   * nothing, when `values` may hold NaN or ±Infinity (`allFinite` false) and the range
   * needs the float64 kernel, which takes finite values only. With at most PAIR_BINS bins
   * the counts wait in the kernel's pair counters until `flush(counts)`, which another
   * histogram's call does too.
   */
  histogram(
    values: Float32Array,
    origin: number,
    scale: number,
    counts: Float64Array,
    allFinite: boolean,
  ): boolean {
    const bins = counts.length;
    const checked = float32Binning(origin, scale, bins);
    if (!checked && !allFinite) return false;
    if (checked && bins <= PAIR_BINS) {
      this.countPairs(values, counts, origin, scale, (address, count) =>
        this.wasm.histogramPairsF32(
          address,
          count,
          origin,
          scale,
          bins - 1,
          this.counts,
          checked.origin32,
          checked.scale32,
          checked.near,
          this.pairs,
        ),
      );
      return true;
    }
    // The lanes below are the counters the pair counts wait in: those are folded in first.
    if (this.pending) this.flush(this.pending.counts);
    const lanes = new Uint32Array(this.wasm.memory.buffer, this.counts, bins * 4);
    lanes.fill(0);
    this.forPieces(values, (address, _first, count) => {
      if (checked) {
        this.wasm.histogramCheckedF32(
          address,
          count,
          origin,
          scale,
          bins - 1,
          this.counts,
          checked.origin32,
          checked.scale32,
          checked.near,
        );
      } else {
        this.wasm.histogramF32(address, count, origin, scale, bins - 1, this.counts);
      }
    });
    for (let bin = 0; bin < bins; bin++) {
      counts[bin]! +=
        lanes[bin]! + lanes[bins + bin]! + lanes[2 * bins + bin]! + lanes[3 * bins + bin]!;
    }
    return true;
  }

  /**
   * Adds the bins of the finite float32 `values` on GridHistogram's grid (bin =
   * floor(value · inverseWidth) − first, inverseWidth a power of two; every finite value
   * in the grid's window) to `counts` (at most PAIR_BINS bins), through the pair counters
   * as `histogram` does: exact, no edge checks. Returns false, having done nothing, when
   * float32 cannot hold the grid (inverseWidth or first out of its range).
   */
  gridHistogram(
    values: Float32Array,
    inverseWidth: number,
    first: number,
    counts: Float64Array,
    allFinite: boolean,
  ): boolean {
    const bins = counts.length;
    const fits =
      bins <= PAIR_BINS &&
      inverseWidth >= 2 ** -126 &&
      inverseWidth <= 2 ** 127 &&
      Math.fround(first) === first &&
      Math.abs(first) + bins <= 2 ** 100;
    if (!fits) return false;
    // Below 1, a tiny negative value may scale to −0 (whose floor is 0, not −1): checked.
    const checked = !allFinite || inverseWidth < 1;
    this.countPairs(values, counts, first, inverseWidth, (address, count) =>
      this.wasm.gridPairsF32(
        address,
        count,
        inverseWidth,
        first,
        bins - 1,
        this.pairs,
        this.counts,
        checked,
      ),
    );
    return true;
  }

  /**
   * Runs `count(address, length)` over `values` piece by piece, its counts waiting in the
   * pair counters and the first lane of bin counters for `counts` (keyed by `origin` and
   * `scale`), folded in when they are read (flush) or another histogram needs the
   * counters: one fold per tensor rather than one per call.
   */
  private countPairs(
    values: Float32Array,
    counts: Float64Array,
    origin: number,
    scale: number,
    count: (address: number, length: number) => void,
  ): void {
    const pending = this.pending;
    if (
      pending &&
      (pending.counts !== counts || pending.origin !== origin || pending.scale !== scale)
    ) {
      this.flush(pending.counts);
    }
    if (!this.pending) {
      new Uint32Array(this.wasm.memory.buffer, this.counts, counts.length).fill(0);
      this.pending = { counts, origin, scale, values: 0 };
    }
    this.forPieces(values, (address, _first, length) => count(address, length));
    this.pending!.values += values.length;
    if (this.pending!.values >= PATTERN_FOLD_ELEMENTS) this.flush(counts);
  }

  /**
   * Adds the counts that wait in the kernel's pair counters for the histogram `counts` (a
   * `counts` given to `histogram` or `gridHistogram`) to it; nothing when none wait for it. Whoever reads or
   * changes such counts calls this first.
   */
  flush(counts: Float64Array): void {
    const pending = this.pending;
    if (!pending || pending.counts !== counts) return;
    this.pending = null;
    const bins = counts.length;
    this.wasm.foldPairs(this.pairs, bins, this.counts);
    const folded = new Uint32Array(this.wasm.memory.buffer, this.counts, bins);
    for (let bin = 0; bin < bins; bin++) counts[bin]! += folded[bin]!;
  }

  /**
   * The first `count` (at most PIECE_ELEMENTS) float16 or bfloat16 values of `bytes`
   * widened to float32 in the module's memory, where the kernels read them in place. The
   * view is overwritten by the next call.
   */
  widen(dtype: 'float16' | 'bfloat16', bytes: Uint8Array, count: number): Float32Array {
    if (count > PIECE_ELEMENTS || bytes.byteLength < count * 2) {
      throw new RangeError(`cannot widen ${count} ${dtype} values from ${bytes.byteLength} bytes`);
    }
    const memory = this.wasm.memory.buffer;
    new Uint8Array(memory, this.halves, count * 2).set(bytes.subarray(0, count * 2));
    if (dtype === 'float16') this.wasm.widenFloat16(this.halves, count, this.widened);
    else this.wasm.widenBfloat16(this.halves, count, this.widened);
    return new Float32Array(memory, this.widened, count);
  }

  /**
   * Lends the module's 16-bit pattern counters to one counting at a time (null while they
   * are lent): `add` counts the patterns of the first `count` values of `bytes` (little
   * endian), in place when `bytes` lies in the module's memory (read buffers), else through
   * copies of PIECE_ELEMENTS values; `finish` adds the counts to `table` (PATTERNS_16
   * float64 counters) and gives the counters back.
   */
  lendPatternCounters(): {
    add(bytes: Uint8Array, count: number): void;
    finish(table: Float64Array | null): void;
  } | null {
    if (this.patternsLent) return null;
    this.patternsLent = true;
    let pending = 0;
    const fold = (table: Float64Array | null) => {
      const counters = new Uint32Array(this.wasm.memory.buffer, this.patterns, PATTERNS_16 * 2);
      if (table) {
        for (let pattern = 0; pattern < PATTERNS_16; pattern++) {
          const counted = counters[pattern]! + counters[PATTERNS_16 + pattern]!;
          if (counted !== 0) table[pattern]! += counted;
        }
      }
      counters.fill(0);
      pending = 0;
    };
    let overflow: Float64Array | null = null;
    let finished = false;
    return {
      add: (bytes, count) => {
        if (bytes.byteLength < count * 2) {
          throw new RangeError(
            `cannot count ${count} 16-bit patterns in ${bytes.byteLength} bytes`,
          );
        }
        for (let done = 0; done < count;) {
          // The u32 counters are folded into float64 before they could overflow.
          if (pending >= PATTERN_FOLD_ELEMENTS) {
            overflow ??= new Float64Array(PATTERNS_16);
            fold(overflow);
          }
          const partCount = Math.min(PATTERN_FOLD_ELEMENTS - pending, count - done);
          const part = bytes.subarray(done * 2);
          const memory = this.wasm.memory.buffer;
          if (part.buffer === memory && (part.byteOffset & 1) === 0) {
            this.wasm.countPatterns16(part.byteOffset, partCount, this.patterns);
          } else {
            const halves = new Uint8Array(memory, this.halves, PIECE_ELEMENTS * 2);
            for (let start = 0; start < partCount; start += PIECE_ELEMENTS) {
              const pieceCount = Math.min(PIECE_ELEMENTS, partCount - start);
              halves.set(part.subarray(start * 2, (start + pieceCount) * 2));
              this.wasm.countPatterns16(this.halves, pieceCount, this.patterns);
            }
          }
          pending += partCount;
          done += partCount;
        }
      },
      finish: (table) => {
        if (finished) return;
        finished = true;
        fold(table);
        if (table && overflow) {
          for (let pattern = 0; pattern < PATTERNS_16; pattern++)
            table[pattern]! += overflow[pattern]!;
        }
        this.patternsLent = false;
      },
    };
  }

  /** Bytes of memory the module holds now (it grows to the largest read buffers asked for). */
  get heldBytes(): number {
    return this.wasm.memory.buffer.byteLength;
  }
}

let loaded: StatsKernel | null | undefined;

/**
 * Adds the counts that wait in this thread's kernel for the histogram `counts` (see
 * StatsKernel.flush); loads nothing.
 */
export function flushKernelCounts(counts: Float64Array): void {
  loaded?.flush(counts);
}

/** The kernels of this thread, or null when the WebAssembly module is not available. */
export function statsKernel(): StatsKernel | null {
  if (loaded !== undefined) return loaded;
  const wasm = instantiateWasm('stats');
  loaded = wasm ? new StatsKernel(wasm as unknown as StatsExports) : null;
  return loaded;
}

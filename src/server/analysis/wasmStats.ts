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
}

/** Accumulator slots the kernel reads and writes: finite count, mean, M2, min, max, zeros. */
export const KERNEL_STATE_SLOTS = 6;
export const WASM_PAGE_BYTES = 65536;

/** One instance of the kernels with the host side of their memory layout. */
export class StatsKernel {
  private readonly base: number;
  private memoryBytes = 0;

  constructor(private readonly exports: StatsExports) {
    this.base = exports.heapBase();
  }

  /** Byte offsets of the state, the sub-histograms and the values for `bins` and `values` bytes. */
  private layout(
    bins: number,
    valueBytes: number,
  ): { state: number; counts: number; values: number } {
    const state = this.base;
    const counts = state + 64;
    const values = (counts + bins * 16 + 15) & ~15;
    const needed = values + valueBytes;
    const memory = this.exports.memory;
    if (needed > memory.buffer.byteLength) {
      memory.grow(Math.ceil((needed - memory.buffer.byteLength) / WASM_PAGE_BYTES));
    }
    this.memoryBytes = memory.buffer.byteLength;
    return { state, counts, values };
  }

  /** Copies `values` into the module and returns where they are. */
  private place(values: Float32Array, bins: number) {
    const layout = this.layout(bins, values.byteLength);
    new Float32Array(this.exports.memory.buffer, layout.values, values.length).set(values);
    return layout;
  }

  /**
   * Adds `values` to `state` (KERNEL_STATE_SLOTS numbers, updated in place) block by block;
   * `addWithChecks(start, end)` is called for each block holding non-finite values, with
   * `state` current, and must update `state` itself.
   */
  moments(
    values: Float32Array,
    blockElements: number,
    state: Float64Array,
    addWithChecks: (start: number, end: number) => void,
  ): void {
    const layout = this.place(values, 0);
    const stateView = new Float64Array(
      this.exports.memory.buffer,
      layout.state,
      KERNEL_STATE_SLOTS,
    );
    let start = 0;
    while (start < values.length) {
      stateView.set(state);
      const stopped = this.exports.momentsF32(layout.values, start, values.length, layout.state);
      state.set(stateView);
      if (stopped >= values.length) break;
      const end = Math.min(stopped + blockElements, values.length);
      addWithChecks(stopped, end);
      start = end;
    }
  }

  /** Adds the bins of finite `values` to `counts` (Float64Array of bins). */
  histogram(values: Float32Array, origin: number, scale: number, counts: Float64Array): void {
    const bins = counts.length;
    const layout = this.place(values, bins);
    const lanes = new Uint32Array(this.exports.memory.buffer, layout.counts, bins * 4);
    lanes.fill(0);
    this.exports.histogramF32(layout.values, values.length, origin, scale, bins - 1, layout.counts);
    for (let bin = 0; bin < bins; bin++) {
      counts[bin]! +=
        lanes[bin]! + lanes[bins + bin]! + lanes[2 * bins + bin]! + lanes[3 * bins + bin]!;
    }
  }

  /** Bytes of memory the module holds now (it grows to the largest chunk seen). */
  get heldBytes(): number {
    return this.memoryBytes;
  }
}

let loaded: StatsKernel | null | undefined;

/** The kernels of this thread, or null when the WebAssembly module is not available. */
export function statsKernel(): StatsKernel | null {
  if (loaded !== undefined) return loaded;
  const exports = instantiateWasm('stats');
  loaded = exports ? new StatsKernel(exports as unknown as StatsExports) : null;
  return loaded;
}

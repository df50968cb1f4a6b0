/**
 * The WebAssembly (SIMD) statistics kernels of src/server/wasm/stats.ts, loaded once per
 * thread. Bundled, the module is dist/wasm/stats.wasm beside the bundle; run from source
 * (tests under tsx), it is built into dist/wasm/ first when missing or older than its
 * source. When it cannot be loaded, `statsKernel()` returns null and the statistics use
 * their plain TypeScript loops, which give the same results.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// The parts of the WebAssembly JS API used here (the project's libs do not declare it).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: unknown };
};

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
const WASM_PAGE_BYTES = 65536;

function wasmFile(name: string): string {
  if (!__filename.endsWith('.ts')) return path.join(__dirname, 'wasm', `${name}.wasm`);
  const root = path.resolve(__dirname, '..', '..', '..');
  const output = path.join(root, 'dist', 'wasm', `${name}.wasm`);
  const source = path.join(root, 'src', 'server', 'wasm', `${name}.ts`);
  const stale = !fs.existsSync(output) || fs.statSync(output).mtimeMs < fs.statSync(source).mtimeMs;
  if (stale) {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build-wasm.mjs')], {
      cwd: root,
      stdio: 'ignore',
    });
  }
  return output;
}

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
  try {
    const module = new WebAssembly.Module(fs.readFileSync(wasmFile('stats')));
    const instance = new WebAssembly.Instance(module, {});
    loaded = new StatsKernel(instance.exports as unknown as StatsExports);
  } catch {
    loaded = null;
  }
  return loaded;
}

/**
 * The quantization kernels of kernels.ts on WebAssembly SIMD (src/server/wasm/quantize.ts,
 * built into dist/wasm/quantize.wasm). Results are bit-identical to the scalar code; where
 * WebAssembly SIMD is unavailable the callers fall back to it. The module is compiled once
 * and one instance is kept; its memory holds the values, the quantized bytes and the
 * per-block scratch of the current call (an instance grown past KEPT_MEMORY_BYTES is
 * dropped after its call, so that one large tensor does not pin that memory).
 */
import type { MatrixLayout, QuantizedBlocks } from './kernelTypes';
import { compileWasm } from '../analysis/wasmLoader';

/** The parts of the WebAssembly API used here (the project's type libraries leave it out). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

interface QuantizeExports {
  readonly memory: WasmMemory;
  absMaxColumns(src: number, rows: number, cols: number, dst: number): void;
  quantizeColumns(
    src: number,
    q: number,
    rows: number,
    cols: number,
    inverses: number,
    qmax: number,
  ): void;
  quantizeRows(
    src: number,
    q: number,
    rows: number,
    n: number,
    blockSize: number,
    qmax: number,
    scales: number,
  ): void;
}

const PAGE_BYTES = 65536;
/** WebAssembly memory (32-bit addresses) holds at most 4 GiB; larger inputs use the scalar code. */
const MAX_WASM_BYTES = 4 * 1024 * 1024 * 1024 - PAGE_BYTES;

let compiled: object | null | undefined;

function wasmModule(): object | null {
  if (compiled === undefined) {
    compiled = wasmApi ? compileWasm('quantize') : null;
  }
  return compiled;
}

/** An instance whose memory grew beyond this is dropped after the call instead of kept. */
const KEPT_MEMORY_BYTES = 256 * 1024 * 1024;

let cached: QuantizeExports | undefined;

/** The kept instance (a new one when there is none), its memory grown to `bytes`. */
function instanceWith(module: object, api: WasmApi, bytes: number): QuantizeExports {
  cached ??= new api.Instance(module, {}).exports as QuantizeExports;
  const memory = cached.memory;
  const pages = Math.ceil(bytes / PAGE_BYTES);
  const current = memory.buffer.byteLength / PAGE_BYTES;
  if (pages > current) memory.grow(pages - current);
  return cached;
}

function align(offset: number): number {
  return Math.ceil(offset / 16) * 16;
}

/** quantizeBlocks on SIMD, or undefined when WebAssembly cannot take it. */
export function quantizeBlocksWasm(
  values: Float32Array,
  layout: MatrixLayout,
  blockSize: number,
  qmax: number,
  blocks: number,
  channels: number,
  inputs: number,
): QuantizedBlocks | undefined {
  const module = wasmModule();
  if (!module || !wasmApi) return undefined;
  const n = values.length;
  const srcAt = 0;
  const qAt = align(srcAt + n * 4);
  const scalesAt = align(qAt + n);
  const scratchAt = align(scalesAt + channels * blocks * 4);
  const inversesAt = align(scratchAt + channels * 4);
  const end = align(inversesAt + channels * 4);
  if (end > MAX_WASM_BYTES) return undefined;
  const kernels = instanceWith(module, wasmApi, end);
  const memory = kernels.memory;
  const buffer = memory.buffer;
  new Float32Array(buffer, srcAt, n).set(values);
  const scales = new Float32Array(channels * blocks);
  if (layout.inputAxis === 1) {
    kernels.quantizeRows(srcAt, qAt, channels, inputs, blockSize, qmax, scalesAt);
    scales.set(new Float32Array(buffer, scalesAt, channels * blocks));
  } else {
    const scratch = new Float32Array(buffer, scratchAt, channels);
    const inverses = new Float32Array(buffer, inversesAt, channels);
    for (let b = 0; b < blocks; b++) {
      const first = b * blockSize;
      const rows = Math.min(inputs, first + blockSize) - first;
      scratch.fill(0);
      kernels.absMaxColumns(srcAt + first * channels * 4, rows, channels, scratchAt);
      for (let c = 0; c < channels; c++) {
        const scale = Math.fround(scratch[c]! / qmax) || 1;
        scales[c * blocks + b] = scale;
        inverses[c] = Math.fround(1 / scale);
      }
      kernels.quantizeColumns(
        srcAt + first * channels * 4,
        qAt + first * channels,
        rows,
        channels,
        inversesAt,
        qmax,
      );
    }
  }
  const q = new Int8Array(n);
  q.set(new Int8Array(buffer, qAt, n));
  if (end > KEPT_MEMORY_BYTES) cached = undefined;
  return { q, scales, blocks, blockSize };
}

/**
 * The WebAssembly ggml dequantization kernels (src/server/wasm/ggml.ts), one instance per
 * thread. Blocks are copied into the module's memory and decoded there in pieces of at
 * most PIECE_BLOCKS_BYTES, then copied out. `ggmlKernel()` is null when the module cannot
 * be loaded; the callers then use the TypeScript reference (ggmlDequant.ts), which gives
 * the same values.
 */
import type { GgmlType } from '../formats/gguf/ggmlTypes';
import { instantiateWasm, type WasmMemory } from './wasmLoader';
import { WASM_PAGE_BYTES } from './wasmStats';

interface GgmlExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  dequantize(typeId: number, src: number, blocks: number, dst: number): number;
  quantize(
    typeId: number,
    src: number,
    blocks: number,
    dst: number,
    importance: number,
    rowLength: number,
  ): number;
}

/** Stored bytes decoded per call (the output takes up to 8× as much for 4-bit types). */
const PIECE_BYTES = 1024 * 1024;

export class GgmlKernel {
  private readonly base: number;

  constructor(private readonly wasm: GgmlExports) {
    this.base = wasm.heapBase();
  }

  private ensure(bytes: number): void {
    const memory = this.wasm.memory;
    if (bytes > memory.buffer.byteLength) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE_BYTES));
    }
  }

  /** Dequantize `blocks` blocks of `type` from `bytes` into `out`; its filled prefix. */
  dequantize(type: GgmlType, bytes: Uint8Array, blocks: number, out: Float32Array): Float32Array {
    const elements = blocks * type.blockElements;
    if (bytes.byteLength < blocks * type.blockBytes || out.length < elements) {
      throw new RangeError(
        `${blocks} ${type.name} blocks need ${blocks * type.blockBytes} bytes and ${elements} outputs, got ${bytes.byteLength} and ${out.length}`,
      );
    }
    const perPiece = Math.max(1, Math.floor(PIECE_BYTES / type.blockBytes));
    const src = this.base;
    const dst = src + ((perPiece * type.blockBytes + 15) & ~15);
    this.ensure(dst + perPiece * type.blockElements * 4);
    for (let done = 0; done < blocks; done += perPiece) {
      const count = Math.min(perPiece, blocks - done);
      const memory = this.wasm.memory.buffer;
      new Uint8Array(memory, src, count * type.blockBytes).set(
        bytes.subarray(done * type.blockBytes, (done + count) * type.blockBytes),
      );
      if (!this.wasm.dequantize(type.id, src, count, dst)) {
        throw new Error(`values not decoded: the kernels do not dequantize ${type.name} blocks`);
      }
      out.set(new Float32Array(memory, dst, count * type.blockElements), done * type.blockElements);
    }
    return out.subarray(0, elements);
  }

  /**
   * Quantize `values` (finite, a whole number of `type` blocks) to `out`, weighted by
   * `importance` (one value per column of rows of its length) where given: the bytes the
   * TypeScript reference (compress/ggml/) writes. False when the kernels do not quantize to
   * `type`.
   */
  quantize(
    type: GgmlType,
    values: Float32Array,
    out: Uint8Array,
    importance?: Float32Array,
  ): boolean {
    const blocks = values.length / type.blockElements;
    const rowLength = importance?.length ?? type.blockElements;
    // Pieces of whole rows (so each piece starts at column 0), about PIECE_BYTES of weights.
    const rowBlocks = rowLength / type.blockElements;
    const perPiece = rowBlocks * Math.max(1, Math.floor(PIECE_BYTES / (4 * rowLength)));
    const weights = this.base;
    const src = weights + ((4 * (importance?.length ?? 0) + 15) & ~15);
    const dst = src + ((perPiece * type.blockElements * 4 + 15) & ~15);
    this.ensure(dst + perPiece * type.blockBytes);
    if (importance)
      new Float32Array(this.wasm.memory.buffer, weights, importance.length).set(importance);
    for (let done = 0; done < blocks; done += perPiece) {
      const count = Math.min(perPiece, blocks - done);
      const memory = this.wasm.memory.buffer;
      new Float32Array(memory, src, count * type.blockElements).set(
        values.subarray(done * type.blockElements, (done + count) * type.blockElements),
      );
      if (!this.wasm.quantize(type.id, src, count, dst, importance ? weights : 0, rowLength)) {
        return false;
      }
      out.set(new Uint8Array(memory, dst, count * type.blockBytes), done * type.blockBytes);
    }
    return true;
  }
}

let loaded: GgmlKernel | null | undefined;

/** This thread's kernels; null when the module cannot be loaded. */
export function ggmlKernel(): GgmlKernel | null {
  if (loaded !== undefined) return loaded;
  const wasm = instantiateWasm('ggml');
  loaded = wasm ? new GgmlKernel(wasm as unknown as GgmlExports) : null;
  return loaded;
}

/**
 * The values of a GGUF quantized tensor: its stored ggml blocks dequantized to float32,
 * block by block. `dequantizedBytes` turns a tensor's stored bytes into the float32 bytes
 * that the statistics read chunk by chunk; `dequantizeAll` decodes bytes held whole (spectra,
 * heatmap rows). The kernels are the WebAssembly ones when they load (ggmlKernel.ts), the
 * TypeScript reference otherwise.
 */
import { ggmlByteLength, ggmlType, type GgmlType } from '../formats/gguf/ggmlTypes';
import { dequantizeReference, notDecodedReason } from './ggmlDequant';
import { ggmlKernel } from './ggmlKernel';
import type { TensorBytes } from './stats';

/** The ggml type named `blocks`, or an Error saying why its values are not decoded. */
export function decodedGgmlType(blocks: string): GgmlType {
  const type = ggmlType(blocks);
  const reason = notDecodedReason(type);
  if (reason !== null || type.plain) throw new Error(reason ?? `${blocks} is not a block type`);
  return type;
}

/** Stored bytes of `elements` values of the block type `blocks` (whole blocks). */
export function storedBytesOf(blocks: string, elements: number): number {
  return ggmlByteLength(ggmlType(blocks), elements);
}

/** Dequantize whole blocks of `type` at the start of `bytes` into `out` (its filled prefix returned). */
export function dequantizeBlocks(
  type: GgmlType,
  bytes: Uint8Array,
  blocks: number,
  out: Float32Array,
): Float32Array {
  const kernel = ggmlKernel();
  return kernel
    ? kernel.dequantize(type, bytes, blocks, out)
    : dequantizeReference(type.name, bytes, blocks, out);
}

/** All `elements` values of the blocks of `blocks` in `bytes`. */
export function dequantizeAll(blocks: string, bytes: Uint8Array, elements: number): Float32Array {
  const type = decodedGgmlType(blocks);
  const count = elements / type.blockElements;
  if (!Number.isInteger(count) || bytes.byteLength !== count * type.blockBytes) {
    throw new RangeError(
      `${elements} ${type.name} values need ${ggmlByteLength(type, elements)} bytes, got ${bytes.byteLength}`,
    );
  }
  return dequantizeBlocks(type, bytes, count, new Float32Array(elements));
}

/**
 * The float32 bytes of the dequantized values of `stored` (blocks of `blocks`), read and
 * decoded chunk by chunk: a chunk of `chunkBytes` float32 bytes comes from the whole blocks
 * that make it (bytes of a block split between two stored chunks are carried over).
 */
export function dequantizedBytes(stored: TensorBytes, blocks: string): TensorBytes {
  const type = decodedGgmlType(blocks);
  const blockCount = stored.byteLength / type.blockBytes;
  if (!Number.isInteger(blockCount)) {
    throw new RangeError(
      `${stored.byteLength} bytes are not a whole number of ${type.name} blocks of ${type.blockBytes} bytes`,
    );
  }
  return {
    byteLength: blockCount * type.blockElements * 4,
    async chunks(chunkBytes, visit) {
      const blocksPerChunk = Math.max(1, Math.floor(chunkBytes / 4 / type.blockElements));
      const out = new Float32Array(blocksPerChunk * type.blockElements);
      const carry = new Uint8Array(type.blockBytes);
      let carried = 0;
      const emit = (bytes: Uint8Array, count: number) => {
        const values = dequantizeBlocks(type, bytes, count, out);
        visit(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      };
      await stored.chunks(blocksPerChunk * type.blockBytes, (chunk) => {
        let start = 0;
        if (carried > 0) {
          start = Math.min(type.blockBytes - carried, chunk.byteLength);
          carry.set(chunk.subarray(0, start), carried);
          carried += start;
          if (carried < type.blockBytes) return;
          emit(carry, 1);
          carried = 0;
        }
        const whole = Math.floor((chunk.byteLength - start) / type.blockBytes);
        if (whole > 0) {
          emit(chunk.subarray(start, start + whole * type.blockBytes), whole);
        }
        const rest = chunk.subarray(start + whole * type.blockBytes);
        carry.set(rest, 0);
        carried = rest.byteLength;
      });
    },
  };
}

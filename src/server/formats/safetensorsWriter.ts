/**
 * safetensors writer: the layout the reader (safetensors.ts) and Hugging Face's
 * `safetensors` library read. An 8-byte little-endian header length N, N bytes of JSON
 * (`__metadata__` with string values, then per tensor `dtype`, `shape`, `data_offsets`
 * relative to the data section), padded with spaces so that the data section starts at a
 * multiple of 8, then the tensors' bytes back to back in header order.
 *
 * Tensors are produced one at a time (`bytes()` is called when the writer reaches the
 * tensor), so a model is never held in memory whole.
 */
import * as fs from 'node:fs/promises';
import { byteLengthOf, type DType } from '../../shared/dtypes';
import { SAFETENSORS_DTYPES } from './safetensors';

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The tensor's little-endian bytes; exactly byteLengthOf(dtype, elements) of them. */
  bytes(): Promise<Uint8Array> | Uint8Array;
}

const HEADER_LENGTH_BYTES = 8;
const DATA_ALIGNMENT = 8;
const METADATA_KEY = '__metadata__';

/** The safetensors code of a DType (`float32` → `F32`), or undefined when the format has none. */
export function safetensorsDtypeCode(dtype: DType): string | undefined {
  return Object.keys(SAFETENSORS_DTYPES).find((code) => SAFETENSORS_DTYPES[code] === dtype);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** The header bytes (length field included) for these tensors and metadata. */
export function encodeHeader(
  tensors: readonly Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>[],
  metadata: Readonly<Record<string, string>>,
): { header: Uint8Array; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) json[METADATA_KEY] = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    const code = safetensorsDtypeCode(tensor.dtype);
    if (!code) throw new RangeError(`safetensors has no dtype for ${tensor.dtype}`);
    if (tensor.name === METADATA_KEY || Object.hasOwn(json, tensor.name)) {
      throw new RangeError(`tensor name "${tensor.name}" is used twice`);
    }
    const length = byteLengthOf(tensor.dtype, elementCount(tensor.shape));
    json[tensor.name] = {
      dtype: code,
      shape: tensor.shape,
      data_offsets: [offset, offset + length],
    };
    offset += length;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil((HEADER_LENGTH_BYTES + text.length) / DATA_ALIGNMENT) * DATA_ALIGNMENT;
  const header = new Uint8Array(padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded - HEADER_LENGTH_BYTES), true);
  header.set(text, HEADER_LENGTH_BYTES);
  return { header, dataBytes: offset };
}

/**
 * Write a safetensors file at `path` (created, never replacing an existing file). Checks
 * each tensor's byte count against its dtype and shape; `signal` stops between tensors.
 * Returns the file's size. On failure the partial file is left for the caller to remove.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<number> {
  const { header, dataBytes } = encodeHeader(tensors, metadata);
  const handle = await fs.open(path, 'wx');
  try {
    let position = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      let written = 0;
      while (written < bytes.byteLength) {
        const { bytesWritten } = await handle.write(
          bytes,
          written,
          bytes.byteLength - written,
          position,
        );
        written += bytesWritten;
        position += bytesWritten;
      }
    };
    await write(header);
    for (const tensor of tensors) {
      signal?.throwIfAborted();
      const bytes = await tensor.bytes();
      const expected = byteLengthOf(tensor.dtype, elementCount(tensor.shape));
      if (bytes.byteLength !== expected) {
        throw new RangeError(
          `tensor "${tensor.name}": ${bytes.byteLength} bytes given, ${expected} expected`,
        );
      }
      await write(bytes);
    }
    return header.byteLength + dataBytes;
  } finally {
    await handle.close();
  }
}

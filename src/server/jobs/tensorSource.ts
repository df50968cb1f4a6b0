/**
 * The bytes a worker job names: a file range, bytes moved to the worker, a packed file's
 * range, or a quantized tensor's values decoded here from its stored parts.
 */
import { dequantizedBytes } from '../analysis/ggmlValues';
import { fileTensorBytes, memoryTensorBytes, type TensorBytes } from '../analysis/stats';
import { dequantizeBytes } from '../analysis/dequantize';
import { packedTensorBytes } from '../lossless/packedBytes';
import type { TensorByteSource } from './statsJob';

/** Chunks read at a time when a stored part is read whole. */
const PART_CHUNK_BYTES = 16 * 1024 * 1024;

export function tensorBytesOf(source: TensorByteSource): TensorBytes {
  switch (source.kind) {
    case 'file':
      // Read synchronously: a job's thread (a worker, or the in-process runner, whose
      // decoding blocks as long) waits for nothing else meanwhile.
      return fileTensorBytes(source.path, source.offset, source.length, { synchronous: true });
    case 'memory':
      return memoryTensorBytes(source.bytes);
    case 'packed':
      return packedTensorBytes(source, source.length);
    case 'decoded':
      return {
        byteLength: source.length,
        async chunks(chunkBytes, visit) {
          const [codes, ...params] = await Promise.all(
            [source.codes, ...source.params].map((part) => wholeBytes(tensorBytesOf(part))),
          );
          const values = dequantizeBytes(source.plan, codes!, params);
          if (values.byteLength !== source.length) {
            throw new Error(
              `decoded ${values.byteLength} bytes of values instead of ${source.length}`,
            );
          }
          await memoryTensorBytes(values).chunks(chunkBytes, visit);
        },
      };
  }
}

/** The bytes of the values a job names: its source's, dequantized when they are ggml `blocks`. */
export function valueBytesOf(source: TensorByteSource, blocks?: string): TensorBytes {
  const stored = tensorBytesOf(source);
  return blocks ? dequantizedBytes(stored, blocks) : stored;
}

/** All bytes of a stored part (the codes, a scale, a zero point) in one array. */
async function wholeBytes(bytes: TensorBytes): Promise<Uint8Array> {
  const whole = new Uint8Array(bytes.byteLength);
  let filled = 0;
  await bytes.chunks(PART_CHUNK_BYTES, (chunk) => {
    whole.set(chunk, filled);
    filled += chunk.byteLength;
  });
  return whole;
}

/** The bytes a worker job names: a file range, bytes moved to the worker, or a packed file's range. */
import { dequantizedBytes } from '../analysis/ggmlValues';
import { fileTensorBytes, memoryTensorBytes, type TensorBytes } from '../analysis/stats';
import { packedTensorBytes } from '../lossless/packedBytes';
import type { TensorByteSource } from './statsJob';

export function tensorBytesOf(source: TensorByteSource): TensorBytes {
  switch (source.kind) {
    case 'file':
      return fileTensorBytes(source.path, source.offset, source.length);
    case 'memory':
      return memoryTensorBytes(source.bytes);
    case 'packed':
      return packedTensorBytes(source, source.length);
  }
}

/** The bytes of the values a job names: its source's, dequantized when they are ggml `blocks`. */
export function valueBytesOf(source: TensorByteSource, blocks?: string): TensorBytes {
  const stored = tensorBytesOf(source);
  return blocks ? dequantizedBytes(stored, blocks) : stored;
}

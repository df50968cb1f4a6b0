/** The bytes a worker job names: a file range, bytes moved to the worker, or a packed file's range. */
import { dequantizedBytes } from '../analysis/ggmlValues';
import { fileTensorBytes, memoryTensorBytes, type TensorBytes } from '../analysis/stats';
import { packedTensorBytes } from '../lossless/packedBytes';
import type { TensorByteSource } from './statsJob';

export function tensorBytesOf(source: TensorByteSource): TensorBytes {
  switch (source.kind) {
    case 'file': {
      const stored = fileTensorBytes(source.path, source.offset, source.length);
      return source.blocks ? dequantizedBytes(stored, source.blocks) : stored;
    }
    case 'memory':
      return memoryTensorBytes(source.bytes);
    case 'packed':
      return packedTensorBytes(source, source.length);
  }
}

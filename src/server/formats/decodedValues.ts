/**
 * Tensors whose values are decoded from other stored bytes (quantized weights, see
 * DecodedValues in types.ts): their TensorData, the bytes as stored, and the same tensor
 * read through other storage (a packed file's).
 */
import { dequantizeBytes } from '../analysis/dequantize';
import { loadTensorData } from './onnxTensors';
import type { DType } from '../../shared/dtypes';
import type { DecodedValues, TensorData, TensorEntry } from './types';

/** TensorData whose `length` bytes of float32 values `decoded` computes on demand. */
export function decodedTensorData(decoded: DecodedValues, length: number): TensorData {
  return {
    kind: 'memory',
    length,
    load: () => {
      const values = dequantizeBytes(
        decoded.plan,
        loadTensorData(decoded.codes),
        decoded.params.map((param) => loadTensorData(param)),
      );
      if (values.byteLength !== length) {
        throw new Error(`decoded ${values.byteLength} bytes of values instead of ${length}`);
      }
      return values;
    },
    decoded,
  };
}

/** The tensor's bytes as its file stores them (the codes of a decoded tensor). */
export function storedData(data: TensorData): TensorData {
  return data.kind === 'memory' && data.decoded ? data.decoded.codes : data;
}

/**
 * The tensor as its file stores it: the bytes and their element type (ggml blocks: bytes,
 * packed as they are rather than as the values they decode to).
 */
export function storedTensor(entry: TensorEntry): { data: TensorData; dtype: DType } {
  const { data, info } = entry;
  if (data.kind === 'memory' && data.decoded) {
    return { data: data.decoded.codes, dtype: data.decoded.codeDtype };
  }
  if (data.blocks) return { data, dtype: 'uint8' };
  return { data, dtype: info.dtype };
}

/** `data` with every stored part it reads passed through `map` (decoded tensors: each part). */
export function mapStoredData(
  data: TensorData,
  map: (stored: TensorData) => TensorData,
): TensorData {
  if (data.kind !== 'memory' || !data.decoded) return map(data);
  const { codes, params } = data.decoded;
  return decodedTensorData(
    { ...data.decoded, codes: map(codes), params: params.map(map) },
    data.length,
  );
}

/**
 * What the method modules need to write one safetensors tensor: the tensor as they get it
 * (bytes, decoded values, its matrix view), float encoding in any float dtype, and zeros
 * written into the original bits. safetensors has no graph, so every method stores
 * tensors the consumer reads as they are (see compress/safetensors.ts).
 */
import type { DType } from '../../shared/dtypes';
import { decodeValues, type NumericDType } from '../analysis/decode';
import { float32ToBfloat16Bits, float32ToFloat16Bits, type MatrixLayout } from './kernels';

export { INT8_SCALE_SUFFIX } from '../formats/safetensorsInt8';

/** The float dtypes methods apply to. */
export const FLOAT_DTYPES: ReadonlySet<DType> = new Set([
  'float32',
  'float16',
  'bfloat16',
  'float64',
]);

/** A tensor written in place of the original. */
export interface WrittenTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

export interface SafetensorsOutcome {
  /** Tensors written in place of the original (name, dtype, shape, bytes). */
  readonly tensors: readonly WrittenTensor[];
  /** The values the new file means, for the relative error. */
  readonly values: ArrayLike<number>;
  readonly detail: string;
}

/** One floating-point tensor of a safetensors file, as a method gets it. */
export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Its little-endian bytes. */
  readonly bytes: Uint8Array;
  /** Its values. */
  readonly original: Float32Array | Float64Array;
  /** The tensor as out × (product of the other axes), inputs along rows; absent for 1-D or empty. */
  readonly layout: MatrixLayout | undefined;
  /** Why a method needing a matrix keeps the tensor as it is. */
  readonly needMatrix: string;
  readonly isCancelled: () => boolean;
}

/** A tensor's shape seen as a matrix out × (product of the other axes), inputs along rows. */
export function matrixLayout(shape: readonly number[]): MatrixLayout | undefined {
  if (shape.length < 2) return undefined;
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((product, dimension) => product * dimension, 1);
  if (rows === 0 || cols === 0) return undefined;
  return { rows, cols, inputAxis: 1 };
}

export function asFloat32(values: Float32Array | Float64Array): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** float32 values → little-endian bytes of `dtype` (a float dtype). */
export function encodeFloats(values: Float32Array, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'float32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'float16':
      return new Uint8Array(float32ToFloat16Bits(values).buffer);
    case 'bfloat16':
      return new Uint8Array(float32ToBfloat16Bits(values).buffer);
    case 'float64':
      return new Uint8Array(Float64Array.from(values).buffer);
    default:
      throw new RangeError(`cannot store float values as ${dtype}`);
  }
}

/**
 * Zero the elements of `bytes` (one `width`-byte element each) where `pruned` is zero and
 * the original was not: kept elements keep their exact bits in any float dtype.
 */
export function zeroPruned(
  bytes: Uint8Array,
  original: ArrayLike<number>,
  pruned: Float32Array,
  width: number,
): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < pruned.length; i++) {
    if (pruned[i] === 0 && original[i] !== 0) out.fill(0, i * width, (i + 1) * width);
  }
  return out;
}

/** `data` (bytes of `as`) decoded to the values the file means. */
export function decodeStored(
  tensor: SafetensorsTensor,
  data: Uint8Array,
  as: DType,
): Float32Array | Float64Array {
  return decodeValues(as as NumericDType, data, tensor.original.length);
}

/** The tensor stored under its name and dtype with new bytes. */
export function sameTensor(
  tensor: SafetensorsTensor,
  data: Uint8Array,
  detail: string,
): SafetensorsOutcome {
  const { name, dtype, shape } = tensor;
  return {
    tensors: [{ name, dtype, shape, bytes: data }],
    values: decodeStored(tensor, data, dtype),
    detail,
  };
}

/** Bytes a JSON header entry `"name":{"dtype":"F32","shape":[…],"data_offsets":[a,b]},` takes. */
export function headerEntry(
  name: string,
  dtype: string,
  shape: readonly number[],
  end: number,
): number {
  return (
    JSON.stringify(name).length +
    JSON.stringify({ dtype, shape, data_offsets: [end, end] }).length +
    2
  );
}

export function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

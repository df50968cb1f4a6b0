/**
 * Element types LayerLens understands, named as PyTorch/NumPy users know them.
 * Both formats map their own codes onto these names (see server/formats).
 */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'float8_e4m3fn'
  | 'float8_e4m3fnuz'
  | 'float8_e5m2'
  | 'float8_e5m2fnuz'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'int4'
  | 'uint4'
  | 'bool'
  | 'complex64'
  | 'complex128'
  | 'string';

export interface DTypeInfo {
  /** Bits per element; 0 for variable-length types (string). */
  readonly bits: number;
  /** Whether LayerLens can decode the values to numbers for statistics. */
  readonly numeric: boolean;
  readonly isFloat: boolean;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { bits: 32, numeric: true, isFloat: true },
  float16: { bits: 16, numeric: true, isFloat: true },
  bfloat16: { bits: 16, numeric: true, isFloat: true },
  float64: { bits: 64, numeric: true, isFloat: true },
  float8_e4m3fn: { bits: 8, numeric: true, isFloat: true },
  float8_e4m3fnuz: { bits: 8, numeric: true, isFloat: true },
  float8_e5m2: { bits: 8, numeric: true, isFloat: true },
  float8_e5m2fnuz: { bits: 8, numeric: true, isFloat: true },
  int8: { bits: 8, numeric: true, isFloat: false },
  uint8: { bits: 8, numeric: true, isFloat: false },
  int16: { bits: 16, numeric: true, isFloat: false },
  uint16: { bits: 16, numeric: true, isFloat: false },
  int32: { bits: 32, numeric: true, isFloat: false },
  uint32: { bits: 32, numeric: true, isFloat: false },
  int64: { bits: 64, numeric: true, isFloat: false },
  uint64: { bits: 64, numeric: true, isFloat: false },
  int4: { bits: 4, numeric: true, isFloat: false },
  uint4: { bits: 4, numeric: true, isFloat: false },
  bool: { bits: 8, numeric: true, isFloat: false },
  complex64: { bits: 64, numeric: false, isFloat: true },
  complex128: { bits: 128, numeric: false, isFloat: true },
  string: { bits: 0, numeric: false, isFloat: false },
};

/** Bytes needed to store `count` elements of `dtype` densely (4-bit types pack two per byte). */
export function byteLengthOf(dtype: DType, count: number): number {
  return Math.ceil((count * DTYPES[dtype].bits) / 8);
}

/** ONNX `TensorProto.DataType` codes and their LayerLens dtypes. */
import type { DType } from '../../shared/dtypes';

/** Codes from onnx.proto (`TensorProto.DataType`). */
export const ONNX_DATA_TYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
} as const;

const DTYPE_BY_CODE: ReadonlyMap<number, DType> = new Map<number, DType>([
  [ONNX_DATA_TYPE.FLOAT, 'float32'],
  [ONNX_DATA_TYPE.UINT8, 'uint8'],
  [ONNX_DATA_TYPE.INT8, 'int8'],
  [ONNX_DATA_TYPE.UINT16, 'uint16'],
  [ONNX_DATA_TYPE.INT16, 'int16'],
  [ONNX_DATA_TYPE.INT32, 'int32'],
  [ONNX_DATA_TYPE.INT64, 'int64'],
  [ONNX_DATA_TYPE.STRING, 'string'],
  [ONNX_DATA_TYPE.BOOL, 'bool'],
  [ONNX_DATA_TYPE.FLOAT16, 'float16'],
  [ONNX_DATA_TYPE.DOUBLE, 'float64'],
  [ONNX_DATA_TYPE.UINT32, 'uint32'],
  [ONNX_DATA_TYPE.UINT64, 'uint64'],
  [ONNX_DATA_TYPE.COMPLEX64, 'complex64'],
  [ONNX_DATA_TYPE.COMPLEX128, 'complex128'],
  [ONNX_DATA_TYPE.BFLOAT16, 'bfloat16'],
  [ONNX_DATA_TYPE.FLOAT8E4M3FN, 'float8_e4m3fn'],
  [ONNX_DATA_TYPE.FLOAT8E4M3FNUZ, 'float8_e4m3fnuz'],
  [ONNX_DATA_TYPE.FLOAT8E5M2, 'float8_e5m2'],
  [ONNX_DATA_TYPE.FLOAT8E5M2FNUZ, 'float8_e5m2fnuz'],
  [ONNX_DATA_TYPE.UINT4, 'uint4'],
  [ONNX_DATA_TYPE.INT4, 'int4'],
]);

const CODE_BY_DTYPE: ReadonlyMap<DType, number> = new Map(
  [...DTYPE_BY_CODE].map(([code, dtype]) => [dtype, code]),
);

/** Codes defined by newer ONNX versions that LayerLens cannot represent, for error messages. */
const UNSUPPORTED_CODE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'UNDEFINED'],
  [23, 'FLOAT4E2M1'],
  [24, 'FLOAT8E8M0'],
  [25, 'UINT2'],
  [26, 'INT2'],
]);

export function dtypeFromOnnxCode(code: number): DType | undefined {
  return DTYPE_BY_CODE.get(code);
}

/** The ONNX code of a dtype (every DType has one). */
export function onnxCodeOf(dtype: DType): number {
  const code = CODE_BY_DTYPE.get(dtype);
  if (code === undefined) throw new Error(`no ONNX data type for ${dtype}`);
  return code;
}

/** Words for an unsupported or unknown code: `FLOAT4E2M1 (23)` or `unknown (99)`. */
export function describeUnsupportedCode(code: number): string {
  return `${UNSUPPORTED_CODE_NAMES.get(code) ?? 'unknown'} (${code})`;
}

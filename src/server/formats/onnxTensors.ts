/**
 * Reading one ONNX TensorProto / SparseTensorProto: shape and dtype validation, and
 * where its values are (a range of the model file, typed protobuf fields, an external
 * data file, or a sparse pair of values and indices).
 */
import { closeSync, openSync } from 'node:fs';
import type { onnx } from 'onnx-proto';
import { byteLengthOf, DTYPES, type DType } from '../../shared/dtypes';
import {
  MAX_DENSIFIED_SPARSE_BYTES,
  MAX_IN_MEMORY_TENSOR_BYTES,
  MAX_TENSOR_ELEMENTS,
  MAX_TENSOR_RANK,
} from '../../shared/limits';
import { describeUnsupportedCode, dtypeFromOnnxCode } from './onnxDataTypes';
import { readExactlySync } from './fileRange';
import { int64ToBigInt, int64ToSafeInteger, type ProtoInt64 } from '../onnx/int64';
import { ModelFileError } from './modelFileError';
import type { TensorData } from './types';

/** `TensorProto.DataLocation.EXTERNAL`. */
const DATA_LOCATION_EXTERNAL = 1;

/** Says which tensor a problem is about, and in which file. */
export interface TensorSite {
  /** Absolute path of the model file. */
  readonly modelPath: string;
  /** `tensor 'name'` or `tensor 'name' in graph 'If_0/then_branch'`. */
  readonly label: string;
}

function fail(site: TensorSite, problem: string): never {
  throw new ModelFileError(site.modelPath, `${site.label}: ${problem}`);
}

/** Validated dims: non-negative integers, bounded rank and element count. */
export function readShape(
  dims: readonly ProtoInt64[] | null | undefined,
  site: TensorSite,
): { shape: number[]; elementCount: number } {
  const list = dims ?? [];
  if (list.length > MAX_TENSOR_RANK) {
    fail(
      site,
      `rank ${list.length} is more than the ${MAX_TENSOR_RANK} dimensions LayerLens accepts`,
    );
  }
  const shape: number[] = [];
  let elementCount = 1;
  for (const raw of list) {
    const dim = int64ToSafeInteger(raw);
    if (dim === undefined || dim < 0) {
      fail(
        site,
        `dimension ${int64ToBigInt(raw)} is not a valid size (dims must be non-negative integers)`,
      );
    }
    shape.push(dim);
  }
  for (const dim of shape) {
    if (dim !== 0 && elementCount > MAX_TENSOR_ELEMENTS / dim) {
      if (shape.includes(0)) return { shape, elementCount: 0 };
      fail(site, `shape [${shape.join(', ')}] has more than ${MAX_TENSOR_ELEMENTS} elements`);
    }
    elementCount *= dim;
  }
  return { shape, elementCount };
}

export function readDType(code: number | null | undefined, site: TensorSite): DType {
  const dtype = dtypeFromOnnxCode(code ?? 0);
  if (dtype === undefined) {
    fail(site, `data type ${describeUnsupportedCode(code ?? 0)} is not supported`);
  }
  return dtype;
}

/** Where a tensor's values are, before external data files have been checked. */
export type StoredValues =
  /** A range of the model file itself (raw_data). */
  | { readonly kind: 'model-file'; readonly offset: number; readonly length: number }
  /** Values decoded into memory (typed fields, attribute lists): `load` builds dense bytes. */
  | { readonly kind: 'memory'; readonly length: number; readonly load: () => Uint8Array }
  /** A range of a file beside the model, named by `location`. */
  | {
      readonly kind: 'external';
      readonly location: string;
      readonly offset: number;
      readonly length: number;
    };

export interface DescribedTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** Bytes of the stored values (for strings: the UTF-8 bytes of all elements). */
  readonly byteLength: number;
  readonly stored: StoredValues;
}

type TypedFieldName =
  'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data' | 'stringData';

const TYPED_FIELD_PROTO_NAMES: Readonly<Record<TypedFieldName, string>> = {
  floatData: 'float_data',
  int32Data: 'int32_data',
  int64Data: 'int64_data',
  doubleData: 'double_data',
  uint64Data: 'uint64_data',
  stringData: 'string_data',
};

/**
 * How the ONNX spec stores each dtype in the typed fields: which field, how many field
 * values per tensor, and the inclusive range a value may take (for int32_data, which
 * carries narrower types; both the signed and the unsigned reading of a bit pattern are
 * accepted). 4-bit types are packed two per int32_data value, low nibble first.
 */
interface TypedLayout {
  readonly field: TypedFieldName;
  readonly fieldValueCount: (elementCount: number) => number;
  /** Bytes each field value becomes. */
  readonly bytesPerValue: 1 | 2 | 4 | 8;
  readonly range?: readonly [number, number];
}

const ONE_PER_ELEMENT = (n: number): number => n;
const TWO_PER_ELEMENT = (n: number): number => n * 2;
const PACKED_PAIRS = (n: number): number => Math.ceil(n / 2);
const BYTE_RANGE = [-128, 255] as const;
const HALF_RANGE = [-32768, 65535] as const;

function typedLayoutOf(dtype: DType): TypedLayout | undefined {
  switch (dtype) {
    case 'float32':
      return { field: 'floatData', fieldValueCount: ONE_PER_ELEMENT, bytesPerValue: 4 };
    case 'complex64':
      return { field: 'floatData', fieldValueCount: TWO_PER_ELEMENT, bytesPerValue: 4 };
    case 'float64':
      return { field: 'doubleData', fieldValueCount: ONE_PER_ELEMENT, bytesPerValue: 8 };
    case 'complex128':
      return { field: 'doubleData', fieldValueCount: TWO_PER_ELEMENT, bytesPerValue: 8 };
    case 'int32':
      return { field: 'int32Data', fieldValueCount: ONE_PER_ELEMENT, bytesPerValue: 4 };
    case 'int16':
    case 'uint16':
    case 'float16':
    case 'bfloat16':
      return {
        field: 'int32Data',
        fieldValueCount: ONE_PER_ELEMENT,
        bytesPerValue: 2,
        range: HALF_RANGE,
      };
    case 'int8':
    case 'uint8':
    case 'bool':
    case 'float8_e4m3fn':
    case 'float8_e4m3fnuz':
    case 'float8_e5m2':
    case 'float8_e5m2fnuz':
      return {
        field: 'int32Data',
        fieldValueCount: ONE_PER_ELEMENT,
        bytesPerValue: 1,
        range: BYTE_RANGE,
      };
    case 'int4':
    case 'uint4':
      return {
        field: 'int32Data',
        fieldValueCount: PACKED_PAIRS,
        bytesPerValue: 1,
        range: BYTE_RANGE,
      };
    case 'int64':
      return { field: 'int64Data', fieldValueCount: ONE_PER_ELEMENT, bytesPerValue: 8 };
    case 'uint32':
      return {
        field: 'uint64Data',
        fieldValueCount: ONE_PER_ELEMENT,
        bytesPerValue: 4,
        range: [0, 0xffffffff],
      };
    case 'uint64':
      return { field: 'uint64Data', fieldValueCount: ONE_PER_ELEMENT, bytesPerValue: 8 };
    case 'string':
      return undefined;
  }
}

/** Dense little-endian bytes of typed-field values; validates each value's range. */
function encodeTypedValues(
  values: readonly (number | ProtoInt64)[],
  layout: TypedLayout,
  isFloatField: boolean,
  site: TensorSite,
): Uint8Array {
  const bytes = new Uint8Array(values.length * layout.bytesPerValue);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    const offset = i * layout.bytesPerValue;
    if (layout.bytesPerValue === 8) {
      if (isFloatField) {
        view.setFloat64(offset, value as number, true);
      } else if (typeof value === 'number') {
        if (!Number.isSafeInteger(value))
          fail(site, `value ${value} at position ${i} is not an integer`);
        view.setBigInt64(offset, BigInt(value), true);
      } else {
        view.setUint32(offset, value.low >>> 0, true);
        view.setUint32(offset + 4, value.high >>> 0, true);
      }
      continue;
    }
    const number = typeof value === 'number' ? value : Number(int64ToBigInt(value));
    if (isFloatField) {
      view.setFloat32(offset, number, true);
      continue;
    }
    if (
      layout.range &&
      (number < layout.range[0] || number > layout.range[1] || !Number.isInteger(number))
    ) {
      fail(
        site,
        `value ${number} at position ${i} of ${TYPED_FIELD_PROTO_NAMES[layout.field]} is out of range for its data type`,
      );
    }
    if (layout.bytesPerValue === 1) view.setUint8(offset, number & 0xff);
    else if (layout.bytesPerValue === 2) view.setUint16(offset, number & 0xffff, true);
    else view.setUint32(offset, number >>> 0, true);
  }
  return bytes;
}

function nonEmptyTypedFields(proto: onnx.ITensorProto): TypedFieldName[] {
  return (Object.keys(TYPED_FIELD_PROTO_NAMES) as TypedFieldName[]).filter(
    (field) => (proto[field]?.length ?? 0) > 0,
  );
}

function memoryStorage(length: number, load: () => Uint8Array, site: TensorSite): StoredValues {
  return {
    kind: 'memory',
    length,
    load: () => {
      if (length > MAX_IN_MEMORY_TENSOR_BYTES) {
        fail(
          site,
          `its ${length} bytes are more than the ${MAX_IN_MEMORY_TENSOR_BYTES} LayerLens builds in memory`,
        );
      }
      return load();
    },
  };
}

function readExternalStorage(
  proto: onnx.ITensorProto,
  dtype: DType,
  expectedLength: number,
  site: TensorSite,
): StoredValues {
  if (dtype === 'string') fail(site, 'string tensors cannot be stored as external data');
  const entries = new Map<string, string>();
  for (const entry of proto.externalData ?? []) entries.set(entry.key ?? '', entry.value ?? '');
  const location = entries.get('location');
  if (!location) fail(site, 'it is marked as external data but names no location');
  const readNumber = (key: string): number | undefined => {
    const text = entries.get(key);
    if (text === undefined || text === '') return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value))
      fail(site, `external data ${key} '${text}' is not a valid byte count`);
    return value;
  };
  const offset = readNumber('offset') ?? 0;
  const length = readNumber('length') ?? expectedLength;
  if (length !== expectedLength) {
    fail(
      site,
      `external data length ${length} does not match its shape and data type (${expectedLength} bytes)`,
    );
  }
  return { kind: 'external', location, offset, length };
}

/**
 * Shape, dtype and storage of a TensorProto. `fileBuffer` is the buffer the model was
 * decoded from: protobufjs returns raw_data as a view into it, which gives the offset
 * of the values in the file. The returned storage keeps no reference to raw_data.
 */
export function describeTensorProto(
  proto: onnx.ITensorProto,
  fileBuffer: Buffer,
  site: TensorSite,
): DescribedTensor {
  const dtype = readDType(proto.dataType, site);
  const { shape, elementCount } = readShape(proto.dims, site);
  const expectedLength = byteLengthOf(dtype, elementCount);
  const describe = (stored: StoredValues, byteLength = stored.length): DescribedTensor => ({
    dtype,
    shape,
    elementCount,
    byteLength,
    stored,
  });

  if (proto.dataLocation === DATA_LOCATION_EXTERNAL) {
    return describe(readExternalStorage(proto, dtype, expectedLength, site));
  }

  const raw = proto.rawData;
  if (raw && raw.length > 0) {
    if (dtype === 'string') fail(site, 'string tensors cannot use raw_data');
    if (raw.length !== expectedLength) {
      fail(
        site,
        `raw_data holds ${raw.length} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expectedLength} bytes`,
      );
    }
    if (raw.buffer === fileBuffer.buffer) {
      return describe({
        kind: 'model-file',
        offset: raw.byteOffset - fileBuffer.byteOffset,
        length: raw.length,
      });
    }
    const copy = Uint8Array.from(raw);
    return describe(memoryStorage(copy.length, () => copy, site));
  }

  const fields = nonEmptyTypedFields(proto);
  if (fields.length > 1) {
    fail(
      site,
      `values are stored in several fields (${fields.map((f) => TYPED_FIELD_PROTO_NAMES[f]).join(', ')})`,
    );
  }

  if (dtype === 'string') {
    if (fields.length === 1 && fields[0] !== 'stringData') {
      fail(site, `string values cannot be stored in ${TYPED_FIELD_PROTO_NAMES[fields[0]!]}`);
    }
    const strings = (proto.stringData ?? []).map((s) => Uint8Array.from(s));
    if (strings.length !== elementCount) {
      fail(
        site,
        `string_data holds ${strings.length} values but shape [${shape.join(', ')}] needs ${elementCount}`,
      );
    }
    return stringTensor(shape, strings, site);
  }

  if (fields.length === 0) {
    if (elementCount > 0)
      fail(site, `it has no values (shape [${shape.join(', ')}] needs ${elementCount})`);
    return describe(memoryStorage(0, () => new Uint8Array(0), site));
  }

  const layout = typedLayoutOf(dtype)!;
  const field = fields[0]!;
  if (field !== layout.field) {
    fail(
      site,
      `${dtype} values cannot be stored in ${TYPED_FIELD_PROTO_NAMES[field]} (expected ${TYPED_FIELD_PROTO_NAMES[layout.field]})`,
    );
  }
  const values = proto[field] as readonly (number | ProtoInt64)[];
  const expectedCount = layout.fieldValueCount(elementCount);
  if (values.length !== expectedCount) {
    fail(
      site,
      `${TYPED_FIELD_PROTO_NAMES[field]} holds ${values.length} values but shape [${shape.join(', ')}] of ${dtype} needs ${expectedCount}`,
    );
  }
  const isFloatField = field === 'floatData' || field === 'doubleData';
  return describe(
    memoryStorage(
      expectedLength,
      () => encodeTypedValues(values, layout, isFloatField, site),
      site,
    ),
  );
}

/** A string tensor; `load` gives the UTF-8 bytes of all elements one after another. */
export function stringTensor(
  shape: readonly number[],
  strings: readonly Uint8Array[],
  site: TensorSite,
): DescribedTensor {
  const byteLength = strings.reduce((sum, s) => sum + s.length, 0);
  const load = (): Uint8Array => {
    const joined = new Uint8Array(byteLength);
    let offset = 0;
    for (const s of strings) {
      joined.set(s, offset);
      offset += s.length;
    }
    return joined;
  };
  return {
    dtype: 'string',
    shape,
    elementCount: strings.length,
    byteLength,
    stored: memoryStorage(byteLength, load, site),
  };
}

/** A tensor made from attribute values (Constant's value_float(s) / value_int(s)). */
export function attributeTensor(
  dtype: 'float32' | 'int64',
  shape: readonly number[],
  values: readonly (number | ProtoInt64)[],
  site: TensorSite,
): DescribedTensor {
  const layout = typedLayoutOf(dtype)!;
  const byteLength = byteLengthOf(dtype, values.length);
  return {
    dtype,
    shape,
    elementCount: values.length,
    byteLength,
    stored: memoryStorage(
      byteLength,
      () => encodeTypedValues(values, layout, dtype === 'float32', site),
      site,
    ),
  };
}

/** Reads a whole file range synchronously (sparse densification needs the bytes at once). */
export function readFileRange(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    return readExactlySync(fd, path, offset, length);
  } finally {
    closeSync(fd);
  }
}

export function loadTensorData(data: TensorData): Uint8Array {
  return data.kind === 'file' ? readFileRange(data.path, data.offset, data.length) : data.load();
}

/** A sparse tensor before its parts' storage is resolved. */
export interface DescribedSparseTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly elementCount: number;
  readonly nonZeroCount: number;
  /** Bytes of the values plus the indices. */
  readonly byteLength: number;
  readonly values: DescribedTensor;
  readonly indices: DescribedTensor;
  /** `coordinates`: indices of shape [NNZ, rank]; `linear`: [NNZ] row-major positions. */
  readonly indexLayout: 'coordinates' | 'linear';
}

export function describeSparseTensorProto(
  proto: onnx.ISparseTensorProto,
  fileBuffer: Buffer,
  site: TensorSite,
): DescribedSparseTensor {
  if (!proto.values) fail(site, 'the sparse tensor has no values');
  if (!proto.indices) fail(site, 'the sparse tensor has no indices');
  const { shape, elementCount } = readShape(proto.dims, site);
  const values = describeTensorProto(proto.values, fileBuffer, {
    ...site,
    label: `${site.label} (values)`,
  });
  const indices = describeTensorProto(proto.indices, fileBuffer, {
    ...site,
    label: `${site.label} (indices)`,
  });
  if (values.shape.length !== 1)
    fail(site, `sparse values must be one-dimensional, not [${values.shape.join(', ')}]`);
  if (!DTYPES[values.dtype].numeric || DTYPES[values.dtype].bits % 8 !== 0) {
    fail(site, `sparse tensors of ${values.dtype} are not supported`);
  }
  if (indices.dtype !== 'int64') fail(site, `sparse indices must be int64, not ${indices.dtype}`);
  const nonZeroCount = values.shape[0]!;
  if (nonZeroCount > elementCount) {
    fail(
      site,
      `it has ${nonZeroCount} values but its shape [${shape.join(', ')}] has only ${elementCount} elements`,
    );
  }
  let indexLayout: 'coordinates' | 'linear';
  if (indices.shape.length === 1 && indices.shape[0] === nonZeroCount) {
    indexLayout = 'linear';
  } else if (
    indices.shape.length === 2 &&
    indices.shape[0] === nonZeroCount &&
    indices.shape[1] === shape.length
  ) {
    indexLayout = 'coordinates';
  } else {
    fail(
      site,
      `sparse indices of shape [${indices.shape.join(', ')}] fit neither [${nonZeroCount}] nor [${nonZeroCount}, ${shape.length}]`,
    );
  }
  return {
    dtype: values.dtype,
    shape,
    elementCount,
    nonZeroCount,
    byteLength: values.byteLength + indices.byteLength,
    values,
    indices,
    indexLayout,
  };
}

/** Dense little-endian bytes of a sparse tensor; every index is checked against the shape. */
export function densifySparse(
  sparse: DescribedSparseTensor,
  values: TensorData,
  indices: TensorData,
  site: TensorSite,
): Uint8Array {
  const elementBytes = DTYPES[sparse.dtype].bits / 8;
  const denseLength = sparse.elementCount * elementBytes;
  if (denseLength > MAX_DENSIFIED_SPARSE_BYTES) {
    fail(
      site,
      `its dense form of ${denseLength} bytes is more than the ${MAX_DENSIFIED_SPARSE_BYTES} LayerLens builds from a sparse tensor`,
    );
  }
  const valueBytes = loadTensorData(values);
  const indexBytes = loadTensorData(indices);
  const indexView = new DataView(indexBytes.buffer, indexBytes.byteOffset, indexBytes.byteLength);
  const dense = new Uint8Array(denseLength);
  const rank = sparse.shape.length;
  const strides = new Array<number>(rank);
  let stride = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= sparse.shape[d]!;
  }
  const readIndex = (position: number, bound: number): number => {
    const low = indexView.getUint32(position * 8, true);
    const high = indexView.getInt32(position * 8 + 4, true);
    const index = high * 0x1_0000_0000 + low;
    if (high < 0 || index >= bound) {
      fail(site, `sparse index ${index} at position ${position} is outside the bound ${bound}`);
    }
    return index;
  };
  for (let k = 0; k < sparse.nonZeroCount; k++) {
    let linear: number;
    if (sparse.indexLayout === 'linear') {
      linear = readIndex(k, sparse.elementCount);
    } else {
      linear = 0;
      for (let d = 0; d < rank; d++)
        linear += readIndex(k * rank + d, sparse.shape[d]!) * strides[d]!;
    }
    dense.set(valueBytes.subarray(k * elementBytes, (k + 1) * elementBytes), linear * elementBytes);
  }
  return dense;
}

/**
 * Builds ONNX models for tests, on onnx-proto's encoder: tensors stored as raw_data or
 * typed fields, Constant nodes, If/Loop subgraphs, sparse initializers, and external
 * data files written next to the model.
 *
 *   const weight = tensor('fc.weight', 'float32', [2, 2], [1, 2, 3, 4]);
 *   const g = graph({
 *     initializers: [weight],
 *     inputs: [valueInfo('x', 'float32', ['batch', 2])],
 *     outputs: [valueInfo('y', 'float32', ['batch', 2])],
 *     nodes: [node('MatMul', ['x', 'fc.weight'], ['y'], { name: 'fc' })],
 *   });
 *   const path = await writeModel(dir, 'model.onnx', model(g));
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import type { DType } from '../../src/shared/dtypes';
import { onnxCodeOf } from '../../src/server/formats/onnxDataTypes';

/**
 * Element values as tests write them: numbers (or bigints for 64-bit integers; strings
 * for string tensors). float16, bfloat16 and float8 values are bit patterns (0x3c00 is
 * 1.0 in float16); complex values are interleaved real, imaginary.
 */
export type TensorValues = readonly (number | bigint)[] | readonly string[];

/** How a tensor's values are stored in its TensorProto. */
export type Storage = 'raw' | 'typed';

/** A 64-bit integer as protobufjs encodes it. */
interface Int64Halves {
  readonly low: number;
  readonly high: number;
  readonly unsigned: boolean;
}

function toInt64(value: number | bigint, unsigned = false): Int64Halves {
  const bits = BigInt.asUintN(64, BigInt(value));
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned };
}

function numbers(values: TensorValues): number[] {
  return values.map((v) => Number(v));
}

/** Dense little-endian bytes of `values` as `dtype` (the layout of raw_data and of external files). */
export function encodeValues(dtype: DType, values: TensorValues): Uint8Array {
  if (dtype === 'string') throw new Error('string tensors have no dense byte layout');
  if (dtype === 'int4' || dtype === 'uint4') {
    const packed = new Uint8Array(Math.ceil(values.length / 2));
    numbers(values).forEach((v, i) => {
      packed[i >> 1]! |= (v & 0x0f) << ((i & 1) * 4);
    });
    return packed;
  }
  const width: Record<Exclude<DType, 'string' | 'int4' | 'uint4'>, number> = {
    float32: 4,
    float16: 2,
    bfloat16: 2,
    float64: 8,
    float8_e4m3fn: 1,
    float8_e4m3fnuz: 1,
    float8_e5m2: 1,
    float8_e5m2fnuz: 1,
    int8: 1,
    uint8: 1,
    int16: 2,
    uint16: 2,
    int32: 4,
    uint32: 4,
    int64: 8,
    uint64: 8,
    bool: 1,
    complex64: 4,
    complex128: 8,
  };
  const size = width[dtype];
  const bytes = new Uint8Array(values.length * size);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => {
    const at = i * size;
    switch (dtype) {
      case 'float32':
      case 'complex64':
        return view.setFloat32(at, Number(value), true);
      case 'float64':
      case 'complex128':
        return view.setFloat64(at, Number(value), true);
      case 'int64':
        return view.setBigInt64(at, BigInt(value), true);
      case 'uint64':
        return view.setBigUint64(at, BigInt(value), true);
      case 'int32':
        return view.setInt32(at, Number(value), true);
      case 'uint32':
        return view.setUint32(at, Number(value), true);
      case 'int16':
        return view.setInt16(at, Number(value), true);
      case 'uint16':
      case 'float16':
      case 'bfloat16':
        return view.setUint16(at, Number(value), true);
      case 'int8':
        return view.setInt8(at, Number(value));
      default:
        return view.setUint8(at, Number(value));
    }
  });
  return bytes;
}

/** The typed field the ONNX spec uses for `dtype`, filled with `values`. */
function typedFields(dtype: DType, values: TensorValues): onnx.ITensorProto {
  switch (dtype) {
    case 'float32':
    case 'complex64':
      return { floatData: numbers(values) };
    case 'float64':
    case 'complex128':
      return { doubleData: numbers(values) };
    case 'int64':
      return { int64Data: values.map((v) => toInt64(v as number | bigint)) };
    case 'uint32':
    case 'uint64':
      return { uint64Data: values.map((v) => toInt64(v as number | bigint, true)) };
    case 'string':
      return { stringData: values.map((v) => new TextEncoder().encode(String(v))) };
    case 'int4':
    case 'uint4':
      return { int32Data: [...encodeValues(dtype, values)] };
    default:
      return { int32Data: numbers(values) };
  }
}

/** A tensor with its values inline, as raw_data (default) or in the typed field. */
export function tensor(
  name: string,
  dtype: DType,
  shape: readonly number[],
  values: TensorValues,
  storage: Storage = 'raw',
): onnx.ITensorProto {
  const header = { name, dataType: onnxCodeOf(dtype), dims: [...shape] };
  if (storage === 'typed' || dtype === 'string')
    return { ...header, ...typedFields(dtype, values) };
  return { ...header, rawData: encodeValues(dtype, values) };
}

/** A tensor whose raw_data is exactly `bytes` (for malformed cases too). */
export function rawTensor(
  name: string,
  dtype: DType | number,
  dims: readonly (number | bigint)[],
  bytes: Uint8Array,
): onnx.ITensorProto {
  return {
    name,
    dataType: typeof dtype === 'number' ? dtype : onnxCodeOf(dtype),
    dims: dims.map((d) => (typeof d === 'bigint' ? toInt64(d) : d)),
    rawData: bytes,
  };
}

/** A tensor whose values live in an external file, with the keys given as they are. */
export function externalTensor(
  name: string,
  dtype: DType,
  shape: readonly number[],
  entries: { readonly location: string; readonly offset?: number; readonly length?: number },
): onnx.ITensorProto {
  const externalData = [{ key: 'location', value: entries.location }];
  if (entries.offset !== undefined)
    externalData.push({ key: 'offset', value: String(entries.offset) });
  if (entries.length !== undefined)
    externalData.push({ key: 'length', value: String(entries.length) });
  return {
    name,
    dataType: onnxCodeOf(dtype),
    dims: [...shape],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData,
  };
}

/** Collects tensors for one external data file; `write` puts it beside the model. */
export class ExternalDataFile {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  /** `location` is the file name relative to the model's folder; tensors start on `alignment` bytes. */
  constructor(
    readonly location: string,
    private readonly alignment = 16,
  ) {}

  add(
    name: string,
    dtype: DType,
    shape: readonly number[],
    values: TensorValues,
  ): onnx.ITensorProto {
    const padding = (this.alignment - (this.size % this.alignment)) % this.alignment;
    if (padding > 0) this.append(new Uint8Array(padding));
    const offset = this.size;
    const bytes = encodeValues(dtype, values);
    this.append(bytes);
    return externalTensor(name, dtype, shape, {
      location: this.location,
      offset,
      length: bytes.length,
    });
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  async write(folder: string): Promise<string> {
    const path = join(folder, ...this.location.split('/'));
    await writeFile(path, this.bytes());
    return path;
  }

  private append(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }
}

/** A sparse tensor: `values` of shape [NNZ], `indices` [NNZ] (linear) or [NNZ, rank]. */
export function sparseTensor(
  values: onnx.ITensorProto,
  indices: onnx.ITensorProto,
  dims: readonly number[],
): onnx.ISparseTensorProto {
  return { values, indices, dims: [...dims] };
}

export const attribute = {
  float: (name: string, f: number): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.FLOAT,
    f,
  }),
  floats: (name: string, floats: readonly number[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.FLOATS,
    floats: [...floats],
  }),
  int: (name: string, i: number | bigint): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i: toInt64(i),
  }),
  ints: (name: string, ints: readonly (number | bigint)[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints: ints.map((i) => toInt64(i)),
  }),
  string: (name: string, s: string): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.STRING,
    s: new TextEncoder().encode(s),
  }),
  strings: (name: string, strings: readonly string[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.STRINGS,
    strings: strings.map((s) => new TextEncoder().encode(s)),
  }),
  tensor: (name: string, t: onnx.ITensorProto): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.TENSOR,
    t,
  }),
  sparseTensor: (name: string, sparse: onnx.ISparseTensorProto): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.SPARSE_TENSOR,
    sparseTensor: sparse,
  }),
  graph: (name: string, g: onnx.IGraphProto): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.GRAPH,
    g,
  }),
  graphs: (name: string, graphs: readonly onnx.IGraphProto[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.GRAPHS,
    graphs: [...graphs],
  }),
};

export interface NodeOptions {
  readonly name?: string;
  readonly domain?: string;
  readonly attributes?: readonly onnx.IAttributeProto[];
}

export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  options: NodeOptions = {},
): onnx.INodeProto {
  return {
    opType,
    input: [...inputs],
    output: [...outputs],
    name: options.name ?? '',
    domain: options.domain ?? '',
    attribute: [...(options.attributes ?? [])],
  };
}

/** A Constant node producing `output` from a tensor (its `value` attribute). */
export function constantNode(
  output: string,
  value: onnx.ITensorProto,
  name?: string,
): onnx.INodeProto {
  return constantNodeWith(output, attribute.tensor('value', value), name);
}

/** A Constant node with any value attribute: `attribute.floats('value_floats', [1, 2])`, `sparse_value`… */
export function constantNodeWith(
  output: string,
  valueAttribute: onnx.IAttributeProto,
  name?: string,
): onnx.INodeProto {
  return node('Constant', [], [output], { name, attributes: [valueAttribute] });
}

export function ifNode(
  condition: string,
  outputs: readonly string[],
  thenBranch: onnx.IGraphProto,
  elseBranch: onnx.IGraphProto,
  name?: string,
): onnx.INodeProto {
  return node('If', [condition], outputs, {
    name,
    attributes: [
      attribute.graph('then_branch', thenBranch),
      attribute.graph('else_branch', elseBranch),
    ],
  });
}

/** Loop(max_trip_count, cond, ...carried) with `body`. */
export function loopNode(
  inputs: readonly string[],
  outputs: readonly string[],
  body: onnx.IGraphProto,
  name?: string,
): onnx.INodeProto {
  return node('Loop', inputs, outputs, { name, attributes: [attribute.graph('body', body)] });
}

/** Shape dims: numbers, symbolic names, or null for unknown. */
export function valueInfo(
  name: string,
  dtype: DType,
  shape: readonly (number | string | null)[],
): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxCodeOf(dtype),
        shape: {
          dim: shape.map((d) =>
            typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
          ),
        },
      },
    },
  };
}

export interface GraphParts {
  readonly name?: string;
  readonly nodes?: readonly onnx.INodeProto[];
  readonly initializers?: readonly onnx.ITensorProto[];
  readonly sparseInitializers?: readonly onnx.ISparseTensorProto[];
  readonly inputs?: readonly onnx.IValueInfoProto[];
  readonly outputs?: readonly onnx.IValueInfoProto[];
}

export function graph(parts: GraphParts = {}): onnx.IGraphProto {
  return {
    name: parts.name ?? 'graph',
    node: [...(parts.nodes ?? [])],
    initializer: [...(parts.initializers ?? [])],
    sparseInitializer: [...(parts.sparseInitializers ?? [])],
    input: [...(parts.inputs ?? [])],
    output: [...(parts.outputs ?? [])],
  };
}

export interface ModelOptions {
  readonly irVersion?: number;
  /** Opset version per domain (`''` is the default ai.onnx domain). */
  readonly opsets?: Readonly<Record<string, number>>;
  readonly producerName?: string;
  readonly producerVersion?: string;
  readonly domain?: string;
  readonly modelVersion?: number;
  readonly docString?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export function model(mainGraph: onnx.IGraphProto, options: ModelOptions = {}): onnx.IModelProto {
  return {
    irVersion: options.irVersion ?? 8,
    opsetImport: Object.entries(options.opsets ?? { '': 17 }).map(([domain, version]) => ({
      domain,
      version,
    })),
    producerName: options.producerName ?? 'layerlens-tests',
    producerVersion: options.producerVersion ?? '1.0',
    domain: options.domain ?? '',
    modelVersion: options.modelVersion ?? 0,
    docString: options.docString ?? '',
    graph: mainGraph,
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
}

export function encodeModel(m: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

/** Writes the model (and its external data files) into `folder`; returns the model's path. */
export async function writeModel(
  folder: string,
  fileName: string,
  m: onnx.IModelProto,
  externalFiles: readonly ExternalDataFile[] = [],
): Promise<string> {
  for (const file of externalFiles) await file.write(folder);
  const path = join(folder, fileName);
  await writeFile(path, encodeModel(m));
  return path;
}

/** A fresh temporary folder and a function that removes it. */
export async function makeTempFolder(
  prefix = 'layerlens-onnx-',
): Promise<{ folder: string; remove: () => Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), prefix));
  return { folder, remove: () => rm(folder, { recursive: true, force: true }) };
}

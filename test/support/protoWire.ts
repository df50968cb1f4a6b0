/**
 * A minimal protobuf wire-format walker, independent of onnx-proto, used to check the
 * ONNX reader's tensor and parameter counts against a second reading of the same bytes.
 * Field numbers are those of onnx.proto.
 */

export type WireField =
  | { readonly number: number; readonly wireType: 0; readonly value: bigint }
  | { readonly number: number; readonly wireType: 1 | 5; readonly value: Uint8Array }
  | { readonly number: number; readonly wireType: 2; readonly value: Uint8Array };

function readVarint(bytes: Uint8Array, start: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let position = start; position < bytes.length && shift < 70n; position++) {
    const byte = bytes[position]!;
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) return { value, next: position + 1 };
  }
  throw new Error(`bad varint at byte ${start}`);
}

/** The fields of one message, in order. */
export function readFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let position = 0;
  while (position < bytes.length) {
    const tag = readVarint(bytes, position);
    const number = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    position = tag.next;
    switch (wireType) {
      case 0: {
        const varint = readVarint(bytes, position);
        fields.push({ number, wireType, value: varint.value });
        position = varint.next;
        break;
      }
      case 1:
      case 5: {
        const size = wireType === 1 ? 8 : 4;
        if (position + size > bytes.length) throw new Error(`field ${number} runs past the end`);
        fields.push({ number, wireType, value: bytes.subarray(position, position + size) });
        position += size;
        break;
      }
      case 2: {
        const length = readVarint(bytes, position);
        const end = length.next + Number(length.value);
        if (end > bytes.length) throw new Error(`field ${number} runs past the end`);
        fields.push({ number, wireType, value: bytes.subarray(length.next, end) });
        position = end;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wireType} at byte ${position}`);
    }
  }
  return fields;
}

function submessages(fields: readonly WireField[], number: number): Uint8Array[] {
  return fields
    .filter((f) => f.number === number && f.wireType === 2)
    .map((f) => f.value as Uint8Array);
}

function text(fields: readonly WireField[], number: number): string {
  const field = fields.find((f) => f.number === number && f.wireType === 2);
  return field ? new TextDecoder().decode(field.value as Uint8Array) : '';
}

/** A repeated int64 field, packed or not. */
function int64s(fields: readonly WireField[], number: number): bigint[] {
  const values: bigint[] = [];
  for (const field of fields) {
    if (field.number !== number) continue;
    if (field.wireType === 0) {
      values.push(BigInt.asIntN(64, field.value));
    } else if (field.wireType === 2) {
      let position = 0;
      while (position < field.value.length) {
        const varint = readVarint(field.value, position);
        values.push(BigInt.asIntN(64, varint.value));
        position = varint.next;
      }
    }
  }
  return values;
}

const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_TENSOR = 5;
const ATTRIBUTE_GRAPH = 6;
const ATTRIBUTE_GRAPHS = 11;
const TENSOR_DIMS = 1;

export interface WireTensorCount {
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly graphCount: number;
}

/**
 * Counts the TensorProtos of graph initializers and of Constant nodes' `value`
 * attributes, in the main graph and every subgraph, with the product of their dims.
 */
export function countStoredTensors(modelBytes: Uint8Array): WireTensorCount {
  let tensorCount = 0;
  let parameterCount = 0n;
  let graphCount = 0;
  const countTensor = (tensorBytes: Uint8Array): void => {
    tensorCount++;
    parameterCount += int64s(readFields(tensorBytes), TENSOR_DIMS).reduce(
      (product, dim) => product * dim,
      1n,
    );
  };
  const walkGraph = (graphBytes: Uint8Array): void => {
    graphCount++;
    const graph = readFields(graphBytes);
    for (const initializer of submessages(graph, GRAPH_INITIALIZER)) countTensor(initializer);
    for (const nodeBytes of submessages(graph, GRAPH_NODE)) {
      const node = readFields(nodeBytes);
      const isConstant = text(node, NODE_OP_TYPE) === 'Constant';
      for (const attributeBytes of submessages(node, NODE_ATTRIBUTE)) {
        const attribute = readFields(attributeBytes);
        if (isConstant && text(attribute, ATTRIBUTE_NAME) === 'value') {
          for (const tensor of submessages(attribute, ATTRIBUTE_TENSOR)) countTensor(tensor);
        }
        for (const subgraph of submessages(attribute, ATTRIBUTE_GRAPH)) walkGraph(subgraph);
        for (const subgraph of submessages(attribute, ATTRIBUTE_GRAPHS)) walkGraph(subgraph);
      }
    }
  };
  for (const graph of submessages(readFields(modelBytes), MODEL_GRAPH)) walkGraph(graph);
  return { tensorCount, parameterCount: Number(parameterCount), graphCount };
}

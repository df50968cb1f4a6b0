/**
 * Decodes a ModelProto in slices so that a model with very many tensors (up to
 * MAX_TENSORS initializers) does not hold the event loop for seconds: the main graph's
 * fields are decoded a run at a time, with yields in between. Decoding runs of whole fields
 * and appending their lists gives the message protobufjs's decode in one go gives (it
 * appends repeated fields as they come; a later scalar replaces an earlier). Byte fields keep viewing the file's buffer (each run is a
 * subarray of it). Bytes that do not split into well-formed fields are decoded in one go,
 * which reports the same errors as before.
 */
import { onnx } from 'onnx-proto';
import type { TimeSlicer } from '../jobs/eventLoop';

/** A run of graph fields decoded between two looks at the clock ends past this many bytes… */
const RUN_BYTES = 256 * 1024;
/** …or this many fields. */
const RUN_FIELDS = 1024;
/** ModelProto's graph field. */
const GRAPH_FIELD = 7;
const LENGTH_DELIMITED = 2;
/** Thrown by fieldsOf: the bytes are then decoded in one go, which reports what is wrong. */
const MALFORMED = new Error('malformed protobuf fields');

/** A base-128 varint at `start` (at most 10 bytes), or undefined when it runs past the end. */
export function readVarint(
  bytes: Uint8Array,
  start: number,
): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = start; i < bytes.length && i < start + 10; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

interface Field {
  readonly number: number;
  readonly start: number;
  /** Where the payload of a length-delimited field starts. */
  readonly payload: number;
  readonly end: number;
}

/** The fields of `bytes` in order; stops with MALFORMED when they are not well formed (groups included). */
function* fieldsOf(bytes: Uint8Array): Generator<Field> {
  let position = 0;
  while (position < bytes.length) {
    const tag = readVarint(bytes, position);
    if (!tag) throw MALFORMED;
    const wireType = tag.value % 8;
    let payload = tag.next;
    let end: number;
    if (wireType === 0) {
      const value = readVarint(bytes, tag.next);
      if (!value) throw MALFORMED;
      end = value.next;
    } else if (wireType === 1) end = tag.next + 8;
    else if (wireType === 5) end = tag.next + 4;
    else if (wireType === LENGTH_DELIMITED) {
      const length = readVarint(bytes, tag.next);
      if (!length) throw MALFORMED;
      payload = length.next;
      end = length.next + length.value;
    } else throw MALFORMED;
    if (end > bytes.length) throw MALFORMED;
    yield { number: Math.floor(tag.value / 8), start: position, payload, end };
    position = end;
  }
}

/** Protobuf's merge of a later part into a message: lists append, other fields are replaced. */
function mergeInto(target: object, part: object): void {
  const into = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(part)) {
    if (Array.isArray(value)) {
      const list = into[key] as unknown[];
      for (const item of value) list.push(item);
    } else into[key] = value;
  }
}

/** The graph in `bytes`, decoded a run of fields at a time. */
async function decodeGraph(bytes: Uint8Array, slicer: TimeSlicer): Promise<onnx.GraphProto> {
  const graph = new onnx.GraphProto();
  let runStart = 0;
  let runFields = 0;
  try {
    for (const field of fieldsOf(bytes)) {
      if (field.end - runStart < RUN_BYTES && ++runFields < RUN_FIELDS) continue;
      mergeInto(graph, onnx.GraphProto.decode(bytes.subarray(runStart, field.end)));
      runStart = field.end;
      runFields = 0;
      if (slicer.sliceUsed()) await slicer.pause();
    }
  } catch (error) {
    if (error === MALFORMED) return onnx.GraphProto.decode(bytes);
    throw error;
  }
  if (runStart < bytes.length) mergeInto(graph, onnx.GraphProto.decode(bytes.subarray(runStart)));
  return graph;
}

/** `bytes` decoded as a ModelProto, yielding between runs of the main graph's fields. */
export async function decodeModelSliced(
  bytes: Uint8Array,
  slicer: TimeSlicer,
): Promise<onnx.ModelProto> {
  let fields: Field[];
  try {
    fields = [...fieldsOf(bytes)];
  } catch (error) {
    if (error === MALFORMED) return onnx.ModelProto.decode(bytes);
    throw error;
  }
  const model = new onnx.ModelProto();
  let runStart = 0;
  const flush = (end: number): void => {
    if (end > runStart) mergeInto(model, onnx.ModelProto.decode(bytes.subarray(runStart, end)));
  };
  for (const field of fields) {
    if (field.number !== GRAPH_FIELD || bytes[field.start]! % 8 !== LENGTH_DELIMITED) continue;
    flush(field.start);
    const graph = await decodeGraph(bytes.subarray(field.payload, field.end), slicer);
    // As protobufjs does when the field comes twice: the last graph stands.
    model.graph = graph;
    runStart = field.end;
  }
  flush(bytes.length);
  return model;
}

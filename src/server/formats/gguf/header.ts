/**
 * The header of one GGUF file (v2 and v3, little-endian): the magic `GGUF`, the version,
 * the tensor and metadata counts, the metadata key/value pairs, the tensor infos, and the
 * aligned start of the tensor data. Every count, length, offset and depth read from the
 * file is checked against a named limit (src/shared/limits.ts) or the file's size before
 * it is used. Metadata values are kept as short readable text: arrays are summarised
 * (element type, length, the first few items), never held whole.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  MAX_GGUF_ALIGNMENT,
  MAX_GGUF_ARRAY_DEPTH,
  MAX_GGUF_ARRAY_LENGTH,
  MAX_GGUF_METADATA_ENTRIES,
  MAX_GGUF_STRING_BYTES,
  MAX_GGUF_TENSOR_DIMS,
  MAX_TENSOR_ELEMENTS,
  MAX_TENSORS,
} from '../../../shared/limits';
import { ModelFileError } from '../modelFileError';
import { ggmlByteLength, ggmlTypeById, type GgmlType } from './ggmlTypes';

/** `GGUF` read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
const SUPPORTED_VERSIONS = [2, 3];
const DEFAULT_ALIGNMENT = 32;
/** Items of an array shown in its summary. */
const SHOWN_ITEMS = 5;
/** Characters of a string value shown (chat templates run to thousands). */
const SHOWN_CHARACTERS = 160;
/** Bytes read from the file at a time while walking the header. */
const WINDOW_BYTES = 1024 * 1024;

/** GGUF metadata value types (gguf_type). */
const enum ValueType {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
}

const VALUE_TYPE_NAMES = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'array',
  'uint64',
  'int64',
  'float64',
];

/** Bytes of each fixed-size value type (0: string and array). */
const VALUE_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** A metadata value: a scalar kept as is, anything else as its summary text. */
export type GgufValue = number | bigint | boolean | string;

export interface GgufMetadataEntry {
  readonly key: string;
  /** Scalars and strings (strings whole); null for arrays. */
  readonly value: GgufValue | null;
  /** What the overview shows. */
  readonly text: string;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** GGUF's `ne`: the dimensions innermost first. */
  readonly ne: readonly number[];
  readonly elements: number;
  readonly type: GgmlType;
  /** Absolute offset of the tensor's bytes in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface GgufHeader {
  readonly path: string;
  readonly fileBytes: number;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  /** Absolute offset where the metadata ends and the tensor infos begin. */
  readonly metadataEnd: number;
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufTensorInfo[];
  readonly warnings: readonly string[];
}

/** A forward reader over the file through a window of bytes, checked against the file's end. */
class Cursor {
  private window = new Uint8Array(WINDOW_BYTES);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;
  private windowEnd = 0;
  position = 0;

  constructor(
    private readonly fd: number,
    readonly path: string,
    readonly size: number,
  ) {}

  fail(problem: string): never {
    throw new ModelFileError(this.path, problem);
  }

  get remaining(): number {
    return this.size - this.position;
  }

  /** Make bytes [position, position + length) available in the window. */
  private need(length: number, what: string): number {
    if (length > this.remaining) {
      this.fail(
        `${what} needs ${length} bytes at byte ${this.position}, past the end of the file (${this.size} bytes; truncated?)`,
      );
    }
    if (this.position < this.windowStart || this.position + length > this.windowEnd) {
      if (length > this.window.byteLength) {
        this.window = new Uint8Array(length);
        this.view = new DataView(this.window.buffer);
      }
      const wanted = Math.min(this.window.byteLength, this.size - this.position);
      let filled = 0;
      while (filled < wanted) {
        const read = readSync(
          this.fd,
          this.window,
          filled,
          wanted - filled,
          this.position + filled,
        );
        if (read === 0)
          this.fail(`the file ended at byte ${this.position + filled} while reading ${what}`);
        filled += read;
      }
      this.windowStart = this.position;
      this.windowEnd = this.position + filled;
    }
    const at = this.position - this.windowStart;
    this.position += length;
    return at;
  }

  u8(what: string): number {
    return this.window[this.need(1, what)]!;
  }

  u32(what: string): number {
    return this.view.getUint32(this.need(4, what), true);
  }

  /** A u64 that must fit a safe integer (counts, lengths, offsets, dimensions). */
  count(what: string): number {
    const value = this.view.getBigUint64(this.need(8, what), true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} ${value} is not a usable size`);
    return Number(value);
  }

  /** A fixed-size scalar of `type`. */
  scalar(type: ValueType, what: string): number | bigint | boolean {
    const at = this.need(VALUE_BYTES[type]!, what);
    const view = this.view;
    switch (type) {
      case ValueType.Uint8:
        return view.getUint8(at);
      case ValueType.Int8:
        return view.getInt8(at);
      case ValueType.Uint16:
        return view.getUint16(at, true);
      case ValueType.Int16:
        return view.getInt16(at, true);
      case ValueType.Uint32:
        return view.getUint32(at, true);
      case ValueType.Int32:
        return view.getInt32(at, true);
      case ValueType.Float32:
        return view.getFloat32(at, true);
      case ValueType.Bool:
        return view.getUint8(at) !== 0;
      case ValueType.Uint64:
        return view.getBigUint64(at, true);
      case ValueType.Int64:
        return view.getBigInt64(at, true);
      case ValueType.Float64:
        return view.getFloat64(at, true);
      default:
        return this.fail(`${what} has type ${type}, which is not a scalar`);
    }
  }

  /** A string: a u64 length, then that many UTF-8 bytes. */
  string(what: string): string {
    const length = this.count(`the length of ${what}`);
    if (length > MAX_GGUF_STRING_BYTES) {
      this.fail(
        `${what} claims ${length} bytes, more than the limit of ${MAX_GGUF_STRING_BYTES} for one string`,
      );
    }
    if (length > this.remaining) {
      this.fail(
        `${what} claims ${length} bytes at byte ${this.position}, past the end of the file (${this.size} bytes)`,
      );
    }
    const at = this.need(length, what);
    return new TextDecoder('utf-8').decode(this.window.subarray(at, at + length));
  }

  skip(length: number, what: string): void {
    if (length > this.remaining) {
      this.fail(
        `${what} needs ${length} bytes at byte ${this.position}, past the end of the file (${this.size} bytes)`,
      );
    }
    this.position += length;
  }
}

function valueType(cursor: Cursor, what: string): ValueType {
  const type = cursor.u32(`the value type of ${what}`);
  if (type >= VALUE_TYPE_NAMES.length) {
    cursor.fail(
      `${what} has unknown value type ${type} (GGUF defines 0…${VALUE_TYPE_NAMES.length - 1})`,
    );
  }
  return type as ValueType;
}

function shortText(text: string): string {
  const quoted = JSON.stringify(text);
  return quoted.length > SHOWN_CHARACTERS
    ? `${quoted.slice(0, SHOWN_CHARACTERS)}… (${text.length} characters)`
    : quoted;
}

function scalarText(value: number | bigint | boolean): string {
  return String(value);
}

/**
 * An array's summary: `[string × 32000] "<unk>", "<s>", "</s>", …`. Only the first few items
 * are kept; the rest are skipped (strings one by one, so each length is checked).
 */
function readArray(cursor: Cursor, what: string, depth: number): string {
  if (depth > MAX_GGUF_ARRAY_DEPTH) {
    cursor.fail(`${what} nests arrays deeper than the limit of ${MAX_GGUF_ARRAY_DEPTH}`);
  }
  const type = valueType(cursor, `the elements of ${what}`);
  const length = cursor.count(`the length of ${what}`);
  if (length > MAX_GGUF_ARRAY_LENGTH) {
    cursor.fail(
      `${what} claims ${length} elements, more than the limit of ${MAX_GGUF_ARRAY_LENGTH}`,
    );
  }
  const shown: string[] = [];
  const fixed = VALUE_BYTES[type]!;
  if (fixed > 0) {
    const kept = Math.min(length, SHOWN_ITEMS);
    if (length * fixed > cursor.remaining) {
      cursor.fail(
        `${what} claims ${length} ${VALUE_TYPE_NAMES[type]} elements (${length * fixed} bytes) at byte ${cursor.position}, past the end of the file (${cursor.size} bytes)`,
      );
    }
    for (let i = 0; i < kept; i++) shown.push(scalarText(cursor.scalar(type, what)));
    cursor.skip((length - kept) * fixed, what);
  } else {
    for (let i = 0; i < length; i++) {
      const item = `element ${i} of ${what}`;
      const text =
        type === ValueType.String
          ? shortText(cursor.string(item))
          : readArray(cursor, item, depth + 1);
      if (i < SHOWN_ITEMS) shown.push(text);
    }
  }
  const more = length > shown.length ? ', …' : '';
  return `[${VALUE_TYPE_NAMES[type]} × ${length}] ${shown.join(', ')}${more}`.trimEnd();
}

function readEntry(cursor: Cursor, index: number): GgufMetadataEntry {
  const key = cursor.string(`the key of metadata entry ${index}`);
  const what = `metadata "${key}"`;
  const type = valueType(cursor, what);
  if (type === ValueType.String) {
    const value = cursor.string(what);
    return { key, value, text: shortText(value) };
  }
  if (type === ValueType.Array) return { key, value: null, text: readArray(cursor, what, 1) };
  const value = cursor.scalar(type, what);
  return { key, value, text: scalarText(value) };
}

function readTensorInfo(
  cursor: Cursor,
  index: number,
): Omit<GgufTensorInfo, 'offset'> & { relative: number } {
  const name = cursor.string(`the name of tensor ${index}`);
  const what = `tensor "${name}"`;
  const dims = cursor.u32(`the dimension count of ${what}`);
  if (dims > MAX_GGUF_TENSOR_DIMS) {
    cursor.fail(
      `${what} has ${dims} dimensions, more than ggml's limit of ${MAX_GGUF_TENSOR_DIMS}`,
    );
  }
  const ne: number[] = [];
  let elements = 1;
  for (let d = 0; d < dims; d++) {
    const size = cursor.count(`dimension ${d} of ${what}`);
    ne.push(size);
    elements *= size;
    if (elements > MAX_TENSOR_ELEMENTS)
      cursor.fail(`${what} has too many elements (ne ${ne.join(' × ')}…)`);
  }
  const typeId = cursor.u32(`the type of ${what}`);
  const type = ggmlTypeById(typeId);
  if (!type) cursor.fail(`${what} has unknown ggml type id ${typeId}`);
  if ((ne[0] ?? 1) % type.blockElements !== 0) {
    cursor.fail(
      `${what}: its rows of ${ne[0]} weights are not a whole number of ${type.name} blocks of ${type.blockElements}`,
    );
  }
  const relative = cursor.count(`the data offset of ${what}`);
  return { name, ne, elements, type, byteLength: ggmlByteLength(type, elements), relative };
}

function alignmentOf(cursor: Cursor, metadata: readonly GgufMetadataEntry[]): number {
  const entry = metadata.find((candidate) => candidate.key === 'general.alignment');
  if (!entry) return DEFAULT_ALIGNMENT;
  const value = typeof entry.value === 'bigint' ? Number(entry.value) : entry.value;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value <= 0 ||
    value > MAX_GGUF_ALIGNMENT ||
    (value & (value - 1)) !== 0
  ) {
    cursor.fail(
      `general.alignment ${entry.text} is not a power of two up to ${MAX_GGUF_ALIGNMENT}`,
    );
  }
  return value;
}

function checkCount(
  cursor: Cursor,
  count: number,
  what: string,
  limit: number,
  minBytes: number,
): void {
  if (count > limit)
    cursor.fail(`the header claims ${count} ${what}, more than the limit of ${limit}`);
  if (count * minBytes > cursor.remaining) {
    cursor.fail(
      `the header claims ${count} ${what}, more than the file's ${cursor.size} bytes could hold (truncated or corrupt?)`,
    );
  }
}

/** Read and validate the header of the GGUF file at `path`. */
export function readGgufHeader(path: string): GgufHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new ModelFileError(path, `the file cannot be read (${code})`);
  }
  try {
    const cursor = new Cursor(fd, path, fstatSync(fd).size);
    if (cursor.size < 24)
      cursor.fail(`the file is ${cursor.size} bytes long, too short for a GGUF header`);
    if (cursor.u32('the magic number') !== GGUF_MAGIC)
      cursor.fail('the file does not start with the GGUF magic bytes');
    const version = cursor.u32('the version');
    if (!SUPPORTED_VERSIONS.includes(version)) {
      const swapped =
        (((version & 0xff) << 24) |
          ((version & 0xff00) << 8) |
          ((version >>> 8) & 0xff00) |
          (version >>> 24)) >>>
        0;
      cursor.fail(
        version === 1
          ? 'GGUF version 1 (32-bit counts, from 2023) is not read; convert it with a current llama.cpp'
          : SUPPORTED_VERSIONS.includes(swapped)
            ? 'the file is a big-endian GGUF, which LayerLens does not read'
            : `GGUF version ${version} is not read (LayerLens reads versions 2 and 3)`,
      );
    }
    const tensorCount = cursor.count('the tensor count');
    const entryCount = cursor.count('the metadata entry count');
    // A metadata entry takes at least 13 bytes (key length, value type, one byte); a tensor
    // info at least 24 (name length, dimension count, type, offset).
    checkCount(cursor, entryCount, 'metadata entries', MAX_GGUF_METADATA_ENTRIES, 13);
    const metadata: GgufMetadataEntry[] = [];
    for (let i = 0; i < entryCount; i++) metadata.push(readEntry(cursor, i));
    const metadataEnd = cursor.position;
    checkCount(cursor, tensorCount, 'tensors', MAX_TENSORS, 24);
    const infos = [];
    for (let i = 0; i < tensorCount; i++) infos.push(readTensorInfo(cursor, i));
    const alignment = alignmentOf(cursor, metadata);
    const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
    const dataBytes = Math.max(0, cursor.size - dataOffset);
    const warnings: string[] = [];
    const names = new Set<string>();
    const tensors = infos.map(({ relative, ...info }): GgufTensorInfo => {
      if (names.has(info.name)) cursor.fail(`tensor "${info.name}" is listed twice`);
      names.add(info.name);
      if (relative % alignment !== 0) {
        warnings.push(
          `tensor "${info.name}": its data offset ${relative} is not a multiple of the alignment ${alignment}`,
        );
      }
      if (relative + info.byteLength > dataBytes) {
        cursor.fail(
          `tensor "${info.name}": its ${info.byteLength} bytes at data offset ${relative} lie past the end of the file (the data section holds ${dataBytes} bytes)`,
        );
      }
      return { ...info, offset: dataOffset + relative };
    });
    return {
      path,
      fileBytes: cursor.size,
      version,
      alignment,
      dataOffset,
      metadataEnd,
      metadata,
      tensors,
      warnings,
    };
  } finally {
    closeSync(fd);
  }
}

/** Whether the head starts with the GGUF magic. */
export function looksLikeGguf(head: Uint8Array): boolean {
  return (
    head.byteLength >= 4 &&
    new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC
  );
}

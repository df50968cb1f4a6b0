/**
 * Structure-aware mutations of model files for the fuzz harness, driven by a seeded
 * random source (the same seed gives the same files). Each format has mutations that know
 * its layout (safetensors header JSON, index JSON, .llz index and trailer, ONNX protobuf
 * fields, GGUF header counts, lengths and types, PyTorch pickles and zip records), and every format also gets plain byte mutations. Independent of src/.
 */
import * as zlib from 'node:zlib';
import { readLlzIndex, withLlzIndexText } from '../support/llzIndex';
import type { FuzzFormat } from './seeds';

/** xorshift32 in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (random: Random, n: number): number => Math.floor(random() * n);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;

/** Sizes and counts that find off-by-one, overflow and allocation bugs. */
const INTERESTING = [
  0,
  1,
  2,
  7,
  8,
  63,
  64,
  255,
  256,
  4096,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 40,
  2 ** 53 - 1,
  2 ** 53,
  -1,
  -(2 ** 31),
  1e308,
];
const NASTY_NAMES = ['', '.', '..', '../x', '/etc/passwd', 'a\0b', 'x'.repeat(300), 'é/ü', 'CON'];
const deep = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

// ---- plain bytes -------------------------------------------------------------------------

function byteMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length === 0) return out;
  switch (int(random, 7)) {
    case 0: // flip a few bits
      for (let i = 0, n = 1 + int(random, 8); i < n; i++)
        out[int(random, out.length)]! ^= 1 << int(random, 8);
      return out;
    case 1: // an interesting byte
      out[int(random, out.length)] = pick(random, [0, 1, 0x7f, 0x80, 0xff]);
      return out;
    case 2: // an interesting little-endian u32/u64
      {
        const at = int(random, Math.max(1, out.length - 8));
        const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
        const value = pick(random, INTERESTING);
        if (random() < 0.5 && at + 4 <= out.length) view.setUint32(at, value >>> 0, true);
        else if (at + 8 <= out.length)
          view.setBigUint64(at, BigInt.asUintN(64, BigInt(Math.trunc(value))), true);
      }
      return out;
    case 3: // truncate
      return out.subarray(0, int(random, out.length));
    case 4: {
      // duplicate a slice
      const from = int(random, out.length);
      const length = int(random, Math.min(4096, out.length - from)) + 1;
      const at = int(random, out.length);
      return concat(out.subarray(0, at), out.subarray(from, from + length), out.subarray(at));
    }
    case 5: {
      // delete a slice
      const from = int(random, out.length);
      return concat(out.subarray(0, from), out.subarray(from + 1 + int(random, 256)));
    }
    default: {
      // insert random bytes
      const at = int(random, out.length);
      const noise = Uint8Array.from({ length: 1 + int(random, 64) }, () => int(random, 256));
      return concat(out.subarray(0, at), noise, out.subarray(at));
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// ---- JSON values (safetensors header, index, .llz index) -------------------------------

/** Paths to every value inside `value` (at most a few thousand). */
function jsonPaths(
  value: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (out.length > 4000) return out;
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((item, i) => jsonPaths(item, [...prefix, i], out));
  else if (value && typeof value === 'object')
    for (const key of Object.keys(value))
      jsonPaths((value as Record<string, unknown>)[key], [...prefix, key], out);
  return out;
}

/** A JSON text: `json` with one value replaced (or a key renamed, or a deep or huge value inserted). */
function jsonMutation(random: Random, json: unknown): string {
  const paths = jsonPaths(json).filter((path) => path.length > 0);
  if (paths.length === 0) return JSON.stringify(json);
  const path = pick(random, paths);
  const marker = '"@@fuzz-marker@@"';
  const replacement = (): string => {
    switch (int(random, 10)) {
      case 0:
        return String(pick(random, INTERESTING));
      case 1:
        return JSON.stringify(pick(random, NASTY_NAMES));
      case 2:
      case 8:
        return deep(pick(random, [65, 100_000]));
      case 3:
        return `[${Array.from({ length: 1 + int(random, 40) }, () => pick(random, INTERESTING)).join(',')}]`;
      case 4:
        return pick(random, ['null', 'true', '{}', '[]', '""', '-0', '1.5', '1e400']);
      case 5:
        return JSON.stringify('x'.repeat(pick(random, [1000, 1_000_000])));
      case 6:
        return `{${Array.from({ length: pick(random, [10, 10_000]) }, (_, i) => `"k${i}":${i}`).join(',')}}`;
      default:
        return String(int(random, 1 << 20));
    }
  };
  const clone = structuredClone(json) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = clone;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (typeof last === 'string' && random() < 0.2) {
    const renamed = pick(random, NASTY_NAMES);
    parent[renamed] = parent[last];
    delete parent[last];
    return JSON.stringify(clone);
  }
  if (random() < 0.1) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
    return JSON.stringify(clone);
  }
  parent[last] = JSON.parse(marker);
  return JSON.stringify(clone).replace(marker, replacement());
}

// ---- formats ------------------------------------------------------------------------------

function safetensorsMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)),
  ) as unknown;
  const data = bytes.subarray(8 + headerLength);
  const choice = random();
  if (choice < 0.15) {
    const out = bytes.slice();
    new DataView(out.buffer).setBigUint64(
      0,
      BigInt.asUintN(64, BigInt(Math.trunc(pick(random, INTERESTING)))),
      true,
    );
    return out;
  }
  const text = new TextEncoder().encode(jsonMutation(random, header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function indexMutation(random: Random, bytes: Uint8Array): Uint8Array {
  return new TextEncoder().encode(
    jsonMutation(random, JSON.parse(new TextDecoder().decode(bytes))),
  );
}

function llzMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const choice = random();
  if (choice < 0.5) {
    const { body, index } = readLlzIndex(bytes);
    return withLlzIndexText(bytes, body, jsonMutation(random, index));
  }
  if (choice < 0.7) {
    // Corrupt chunk payloads (between the 16-byte header and the index).
    const { body } = readLlzIndex(bytes);
    const out = bytes.slice();
    for (let i = 0, n = 1 + int(random, 4); i < n && body.length > 16; i++)
      out[16 + int(random, body.length - 16)]! ^= 1 + int(random, 255);
    return out;
  }
  if (choice < 0.8) {
    // The trailer's index offset or length.
    const out = bytes.slice();
    const view = new DataView(out.buffer);
    view.setBigUint64(
      out.length - 24 + (random() < 0.5 ? 0 : 8),
      BigInt.asUintN(64, BigInt(Math.trunc(pick(random, INTERESTING)))),
      true,
    );
    return out;
  }
  return byteMutation(random, bytes);
}

/** Positions of protobuf fields (varints and length prefixes), found by walking nested messages. */
interface WireSpot {
  readonly kind: 'varint' | 'length';
  readonly start: number;
  readonly end: number;
  /** Length-delimited fields: where the payload ends. */
  readonly payloadEnd?: number;
}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    value += (bytes[i]! & 0x7f) * scale;
    scale *= 128;
    if ((bytes[i]! & 0x80) === 0) return { value, next: i + 1 };
  }
  return null;
}

function wireSpots(
  bytes: Uint8Array,
  from: number,
  to: number,
  depth: number,
  out: WireSpot[],
): boolean {
  let at = from;
  const found: WireSpot[] = [];
  while (at < to) {
    const tag = readVarint(bytes, at);
    if (!tag || tag.value < 8) return false;
    const wireType = tag.value % 8;
    at = tag.next;
    if (wireType === 0) {
      const value = readVarint(bytes, at);
      if (!value) return false;
      found.push({ kind: 'varint', start: at, end: value.next });
      at = value.next;
    } else if (wireType === 2) {
      const length = readVarint(bytes, at);
      if (!length || length.next + length.value > to) return false;
      found.push({
        kind: 'length',
        start: at,
        end: length.next,
        payloadEnd: length.next + length.value,
      });
      if (depth < 12 && length.value > 1 && length.value < 4_000_000)
        wireSpots(bytes, length.next, length.next + length.value, depth + 1, out);
      at = length.next + length.value;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else return false;
    if (at > to) return false;
  }
  out.push(...found);
  return true;
}

function encodeVarint(value: bigint): Uint8Array {
  const out: number[] = [];
  let rest = BigInt.asUintN(64, value);
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    out.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return Uint8Array.from(out);
}

function onnxMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const spots: WireSpot[] = [];
  wireSpots(bytes, 0, bytes.length, 0, spots);
  if (spots.length === 0 || random() < 0.15) return byteMutation(random, bytes);
  const spot = pick(random, spots);
  const choice = random();
  if (spot.kind === 'varint' || choice < 0.4) {
    // A new value for a varint (a dimension, a data type, a count) or a length prefix.
    const value =
      spot.kind === 'length' && random() < 0.5
        ? BigInt(readVarint(bytes, spot.start)!.value + pick(random, [-1, 1, 8, 1 << 20]))
        : BigInt(Math.trunc(pick(random, INTERESTING)));
    return concat(bytes.subarray(0, spot.start), encodeVarint(value), bytes.subarray(spot.end));
  }
  if (choice < 0.7) {
    // Duplicate a whole field (repeated initializers, dims, nodes).
    let tagStart = spot.start - 1;
    while (tagStart > 0 && (bytes[tagStart - 1]! & 0x80) !== 0) tagStart--;
    const field = bytes.subarray(tagStart, spot.payloadEnd);
    const copies = pick(random, [1, 2, 100]);
    return concat(
      bytes.subarray(0, spot.payloadEnd),
      ...Array.from({ length: copies }, () => field),
      bytes.subarray(spot.payloadEnd),
    );
  }
  // Corrupt bytes inside one payload only.
  const out = bytes.slice();
  const length = spot.payloadEnd! - spot.end;
  if (length > 0) out[spot.end + int(random, length)]! ^= 1 << int(random, 8);
  return out;
}

// ---- GGUF (little-endian header: magic, version, counts, key/value pairs, tensor infos) ----

/** Bytes of a GGUF file's head that mutations aim at (its header; tensor data follows). */
const GGUF_HEAD_BYTES = 16 * 1024;

/** Runs of at least four printable ASCII bytes in the head: keys, string values, tensor names. */
function asciiRuns(bytes: Uint8Array): { start: number; end: number }[] {
  const runs: { start: number; end: number }[] = [];
  const limit = Math.min(bytes.length, GGUF_HEAD_BYTES);
  for (let i = 0; i < limit;) {
    let end = i;
    while (end < limit && bytes[end]! >= 0x20 && bytes[end]! < 0x7f) end++;
    if (end - i >= 4) runs.push({ start: i, end });
    i = end + 1;
  }
  return runs;
}

function setU64(view: DataView, at: number, value: number): void {
  if (at >= 0 && at + 8 <= view.byteLength)
    view.setBigUint64(at, BigInt.asUintN(64, BigInt(Math.trunc(value))), true);
}

function ggufMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const runs = asciiRuns(out);
  switch (int(random, 5)) {
    case 0: // the tensor count or the key/value count
      setU64(view, pick(random, [8, 16]), pick(random, INTERESTING));
      return out;
    case 1: // the version
      if (out.length >= 8) view.setUint32(4, pick(random, [0, 1, 2, 3, 4, 2 ** 32 - 1]), true);
      return out;
    case 2: {
      // the length before a string (a key, a value, a tensor name)
      if (runs.length === 0) return byteMutation(random, out);
      setU64(view, pick(random, runs).start - 8, pick(random, INTERESTING));
      return out;
    }
    case 3: {
      // the u32 after a string: a value's type, a tensor's dimension count, an array's type
      if (runs.length === 0) return byteMutation(random, out);
      const at = pick(random, runs).end;
      if (at + 4 <= out.length)
        view.setUint32(at, pick(random, [0, 5, 9, 12, 13, 99, 2 ** 32 - 1]), true);
      return out;
    }
    default: {
      // a u64 just after a string: an array length, a dimension, a tensor's offset
      if (runs.length === 0) return byteMutation(random, out);
      setU64(
        view,
        pick(random, runs).end + pick(random, [4, 8, 12, 16]),
        pick(random, INTERESTING),
      );
      return out;
    }
  }
}

// ---- PyTorch (zip of a pickle and storages, or the legacy pickle stream) -------------

/** Pickle opcodes that build, look up or reshape objects: what a reader must distrust. */
const PICKLE_OPCODES = [
  0x28, // MARK
  0x2e, // STOP
  0x51, // BINPERSID
  0x52, // REDUCE
  0x62, // BUILD
  0x63, // GLOBAL
  0x68, // BINGET
  0x6a, // LONG_BINGET
  0x71, // BINPUT
  0x74, // TUPLE
  0x75, // SETITEMS
  0x7d, // EMPTY_DICT
  0x5d, // EMPTY_LIST
  0x65, // APPENDS
  0x80, // PROTO
  0x85, // TUPLE1
  0x93, // STACK_GLOBAL
  0x94, // MEMOIZE
];
/** Opcodes followed by an integer argument of this many bytes (shapes, strides, offsets, lengths). */
const PICKLE_INT_ARGS = new Map([
  [0x4a, 4], // BININT
  [0x4b, 1], // BININT1
  [0x4d, 2], // BININT2
  [0x58, 4], // BINUNICODE's length
  [0x8c, 1], // SHORT_BINUNICODE's length
  [0x8a, 1], // LONG1's length
]);

/** Mutate a pickle in place (its length kept, so the zip around it stays readable). */
function pickleMutation(random: Random, pickle: Uint8Array): void {
  if (pickle.length === 0) return;
  const view = new DataView(pickle.buffer, pickle.byteOffset, pickle.byteLength);
  const args = [...pickle.keys()].filter((i) => PICKLE_INT_ARGS.has(pickle[i]!));
  switch (int(random, 4)) {
    case 0: {
      // an integer argument set to an interesting value
      if (args.length === 0) break;
      const at = pick(random, args);
      const width = PICKLE_INT_ARGS.get(pickle[at]!)!;
      const value = pick(random, INTERESTING);
      if (at + 1 + width > pickle.length) break;
      if (width === 4) view.setUint32(at + 1, value >>> 0, true);
      else if (width === 2) view.setUint16(at + 1, value & 0xffff, true);
      else pickle[at + 1] = value & 0xff;
      return;
    }
    case 1: // one byte replaced by an opcode
      pickle[int(random, pickle.length)] = pick(random, PICKLE_OPCODES);
      return;
    case 2: {
      // a run of MARKs or EMPTY_LISTs: deep nesting for the unpickler's stack
      const at = int(random, pickle.length);
      pickle.fill(pick(random, [0x28, 0x5d, 0x7d]), at, at + 1 + int(random, 4096));
      return;
    }
  }
  pickle[int(random, pickle.length)] ^= 1 << int(random, 8);
}

const ZIP_CENTRAL = 0x02014b50;
const ZIP_END = 0x06054b50;

interface ZipEntry {
  /** Offset of the entry's central directory record and of its local header. */
  central: number;
  local: number;
  name: string;
  stored: boolean;
  dataStart: number;
  size: number;
}

/** The entries of a zip, from its central directory (empty when it cannot be found). */
function zipEntries(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 65_557); i--) {
    if (view.getUint32(i, true) === ZIP_END) {
      end = i;
      break;
    }
  }
  if (end < 0) return [];
  const entries: ZipEntry[] = [];
  let at = view.getUint32(end + 16, true);
  for (let n = view.getUint16(end + 10, true); n > 0 && at + 46 <= end; n--) {
    if (view.getUint32(at, true) !== ZIP_CENTRAL) break;
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    if (local + 30 > bytes.length) break;
    entries.push({
      central: at,
      local,
      name: new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      stored: view.getUint16(at + 10, true) === 0,
      dataStart: local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true),
      size: view.getUint32(at + 20, true),
    });
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return entries;
}

function pytorchMutation(random: Random, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const entries = zipEntries(out);
  if (entries.length === 0) {
    // The legacy format: pickles one after another, then raw storages.
    pickleMutation(random, out.subarray(0, Math.min(out.length, 64 * 1024)));
    return out;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const pickles = entries.filter((entry) => entry.stored && entry.name.endsWith('.pkl'));
  if (pickles.length > 0 && random() < 0.6) {
    // The pickle edited and its CRC-32 mended, so the reader gets past the zip.
    const entry = pick(random, pickles);
    const data = out.subarray(entry.dataStart, entry.dataStart + entry.size);
    pickleMutation(random, data);
    const crc = zlib.crc32(data);
    view.setUint32(entry.local + 14, crc, true);
    view.setUint32(entry.central + 16, crc, true);
    return out;
  }
  // A size, offset or length of the zip's own records.
  const entry = pick(random, entries);
  const field = pick(random, [
    entry.central + 20, // compressed size
    entry.central + 24, // uncompressed size
    entry.central + 42, // local header offset
    entry.local + 18, // local compressed size
    entry.local + 26, // local name length (u16 with the extra length)
  ]);
  if (field + 4 <= out.length) view.setUint32(field, pick(random, INTERESTING) >>> 0, true);
  return out;
}

const BY_FORMAT: Record<FuzzFormat, (random: Random, bytes: Uint8Array) => Uint8Array> = {
  onnx: onnxMutation,
  safetensors: safetensorsMutation,
  index: indexMutation,
  llz: llzMutation,
  gguf: ggufMutation,
  pytorch: pytorchMutation,
};

/** How often a mutation is a plain byte mutation (JSON formats rarely survive one). */
const BYTE_SHARE: Record<FuzzFormat, number> = {
  onnx: 0.25,
  safetensors: 0.1,
  index: 0.05,
  llz: 0.2,
  gguf: 0.2,
  pytorch: 0.2,
};

/** A mutated copy of `bytes` (a seed of `format`): usually one mutation, sometimes two or three. */
export function mutate(format: FuzzFormat, bytes: Uint8Array, random: Random): Uint8Array {
  let out = bytes;
  const count = random() < 0.7 ? 1 : 2 + int(random, 2);
  for (let i = 0; i < count; i++) {
    try {
      out =
        random() < BYTE_SHARE[format] ? byteMutation(random, out) : BY_FORMAT[format](random, out);
    } catch {
      // An earlier mutation left the structure unreadable for this one: mutate bytes.
      out = byteMutation(random, out);
    }
  }
  return out;
}

/**
 * One chunk of a packed file: its bytes split into byte-group streams, each stream stored
 * raw, as a constant, rANS-coded or (for non-tensor bytes) deflated, whichever is
 * smallest. Chunks are independent, so they are coded in parallel and read one by one.
 *
 * Payload: u8 stream count, then per stream u8 codec and u32 coded length, then the coded
 * streams in order; or u8 0 and the bytes as they are (chunks too small to gain); or u8 255
 * and the bytes, not grouped, coded by brotli (floating-point chunks that repeat whole
 * values, such as a DFT basis or a lookup table: a match finder beats the byte groups on
 * them). Decoded lengths are not stored: they follow from the chunk's length and layout.
 */
import * as zlib from 'node:zlib';
import { type ByteLayout, joinStreams, splitStreams, streamLengths } from './byteGroups';
import { losslessKernels, type LosslessKernels } from './losslessWasm';
import {
  byteHistogram,
  entropyBits,
  rans8Decode,
  rans8Encode,
  rans8HeaderBytes,
  ransDecode,
} from './rans';

export const StreamCodec = { raw: 0, rans: 1, fill: 2, deflate: 3, rans8: 4 } as const;
export type StreamCodec = (typeof StreamCodec)[keyof typeof StreamCodec];

/** rANS is kept only when it saves at least this fraction (decoding raw bytes is free). */
const MIN_SAVING = 0.01;

/** Stream count 0: the chunk's bytes follow unchanged. */
const STORED = 0;
/** Stream count 255: the chunk's bytes follow, whole, brotli-coded (written since version 3). */
const WHOLE_BROTLI = 255;

/** Layouts whose chunks are sampled for repeated values (those of floating-point tensors). */
const REPEAT_LAYOUTS: ReadonlySet<ByteLayout> = new Set(['bf16', 'f16', 'f32', 'f64']);
/** 32-bit words sampled per chunk; fewer than this many in a chunk, it is not sampled. */
const REPEAT_SAMPLE_WORDS = 1024;
/** The sample's hash table: 4096 slots, four per sampled word. */
const REPEAT_TABLE_BITS = 12;
/**
 * Share of the sampled words that must repeat an earlier sampled word for brotli to be
 * tried. Trained weights repeat almost never (a word holds one f32 or two bf16 values);
 * zero words are left out, so that sparsity alone (which rANS codes well) does not count.
 */
const REPEAT_SHARE = 1 / 8;
/** Brotli's quality for such chunks: fast (~110 MB/s), and near quality 5 on few distinct values. */
const FAST_QUALITY = 2;
/** Quality 5 finds long repeated runs (a DFT basis: 0.26 of the bytes, against 0.46 at 2) at ~25 MB/s. */
const DEEP_QUALITY = 5;
/**
 * Quality 5 is tried only where quality 2 already takes less than this share of the byte
 * groups' payload: long runs repeat there. Few distinct values without long runs (weights
 * quantized to int8 and stored as floats) gain little from it: 0.36 against 0.37.
 */
const DEEP_TRIAL_SHARE = 0.6;

export class ChunkFormatError extends Error {}

export interface EncodedChunk {
  readonly payload: Uint8Array;
  /**
   * Coded bytes of each stream (without the per-stream framing) and of the whole payload,
   * as the byte groups code them, even where the payload is the chunk brotli-coded whole.
   */
  readonly streamBytes: readonly number[];
  readonly groupedBytes: number;
  /** Histogram of the first stream (the exponent of floating-point layouts). */
  readonly firstStreamCounts: Uint32Array;
}

function encodeStream(
  stream: Uint8Array,
  counts: Uint32Array,
  generic: boolean,
  kernels: LosslessKernels | null,
): { codec: StreamCodec; body: Uint8Array } {
  if (stream.length === 0) return { codec: StreamCodec.raw, body: stream };
  let distinct = 0;
  for (let s = 0; s < 256 && distinct < 2; s++) if (counts[s]! > 0) distinct++;
  if (distinct === 1) return { codec: StreamCodec.fill, body: stream.subarray(0, 1) };
  if (generic) {
    const deflated = zlib.deflateRawSync(stream);
    return deflated.length < stream.length * (1 - MIN_SAVING)
      ? { codec: StreamCodec.deflate, body: deflated }
      : { codec: StreamCodec.raw, body: stream };
  }
  const estimate = (entropyBits(counts) * stream.length) / 8 + rans8HeaderBytes(counts);
  if (estimate < stream.length * (1 - MIN_SAVING)) {
    const coded = kernels ? kernels.rans8Encode(stream, counts) : rans8Encode(stream, counts);
    if (coded.length < stream.length) return { codec: StreamCodec.rans8, body: coded };
  }
  return { codec: StreamCodec.raw, body: stream };
}

/** Bytes sampled to decide that a stream is not worth coding. */
const SAMPLE_BYTES = 8192;
/** Above this sampled entropy (bits per byte) a stream cannot save MIN_SAVING. */
const INCOMPRESSIBLE_BITS = 8 * (1 - MIN_SAVING) - 0.05;

/** Whether an evenly spread sample of the stream is too close to random to code. */
function looksIncompressible(stream: Uint8Array): boolean {
  if (stream.length < 4 * SAMPLE_BYTES) return false;
  const counts = new Uint32Array(256);
  const step = Math.floor(stream.length / SAMPLE_BYTES);
  for (let i = 0; i < SAMPLE_BYTES; i++) counts[stream[i * step]!]!++;
  // The entropy of a sample underestimates that of the stream: a high one is conclusive.
  return entropyBits(counts) > INCOMPRESSIBLE_BITS;
}

/** repeatsValues's hash table, reused from chunk to chunk. */
const repeatTable = new Uint32Array(1 << REPEAT_TABLE_BITS);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Whether an evenly spread sample of the chunk's 32-bit words repeats itself often: the
 * sign of a table of a few distinct values, which brotli codes far below the byte groups.
 */
export function repeatsValues(layout: ByteLayout, raw: Uint8Array): boolean {
  const words = raw.length >>> 2;
  if (!REPEAT_LAYOUTS.has(layout) || words < REPEAT_SAMPLE_WORDS) return false;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // Aligned (as chunks of a run are): the words read directly, in this machine's order.
  const aligned =
    raw.byteOffset % 4 === 0 && LITTLE_ENDIAN
      ? new Uint32Array(raw.buffer, raw.byteOffset, words)
      : null;
  const step = Math.floor(words / REPEAT_SAMPLE_WORDS);
  // Open addressing over four times the sample; 0 marks an empty slot (zero words are skipped).
  const table = repeatTable.fill(0);
  const mask = table.length - 1;
  let repeats = 0;
  for (let i = 0; i < REPEAT_SAMPLE_WORDS; i++) {
    const word = aligned ? aligned[i * step]! : view.getUint32(4 * i * step, true);
    if (word === 0) continue;
    let slot = Math.imul(word, 0x9e3779b1) >>> (32 - REPEAT_TABLE_BITS);
    while (table[slot] !== 0 && table[slot] !== word) slot = (slot + 1) & mask;
    if (table[slot] === word) repeats++;
    else table[slot] = word;
  }
  return repeats >= REPEAT_SAMPLE_WORDS * REPEAT_SHARE;
}

function brotli(raw: Uint8Array, quality: number): Uint8Array {
  return zlib.brotliCompressSync(raw, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
      // A window that covers the whole chunk.
      [zlib.constants.BROTLI_PARAM_LGWIN]: Math.min(
        24,
        Math.max(10, Math.ceil(Math.log2(raw.length))),
      ),
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
}

/** The chunk whole through brotli, or null when that does not beat `limit` bytes of payload. */
function brotliWhole(raw: Uint8Array, limit: number): Uint8Array | null {
  const fast = brotli(raw, FAST_QUALITY);
  if (fast.length + 1 >= limit) return null;
  if (fast.length >= DEEP_TRIAL_SHARE * limit) return fast;
  const deep = brotli(raw, DEEP_QUALITY);
  return deep.length < fast.length ? deep : fast;
}

/** The kernels that code chunks of `layout` (null: TypeScript codes them, e.g. plain bytes). */
export function kernelsFor(layout: ByteLayout, generic: boolean): LosslessKernels | null {
  return layout === 'bytes' || generic ? null : losslessKernels();
}

/**
 * Encode one chunk. `generic` chunks (headers, protobuf structure) use deflate instead of
 * the byte-group entropy coder. `kernels` null codes in TypeScript (the same bytes). With
 * `into` (room for raw.length + 1 bytes), the payload is written at its start and returned
 * as a view on it.
 */
export function encodeChunk(
  layout: ByteLayout,
  raw: Uint8Array,
  generic = false,
  kernels = kernelsFor(layout, generic),
  into?: Uint8Array,
): EncodedChunk {
  const exponentCounts = layout === 'bf16' && !kernels ? new Uint32Array(256) : undefined;
  const streams = kernels ? kernels.split(layout, raw) : splitStreams(layout, raw, exponentCounts);
  const coded = streams.map((stream, index) => {
    // Mantissa streams are near-random: a sample tells so without counting every byte.
    // The first stream (the exponent) is always counted whole: compressibility reports it.
    if (index > 0 && !generic && looksIncompressible(stream)) {
      return { codec: StreamCodec.raw, body: stream, counts: new Uint32Array(256), index };
    }
    const counts =
      index === 0 && exponentCounts
        ? exponentCounts
        : kernels
          ? kernels.histogram(stream)
          : byteHistogram(stream);
    return { ...encodeStream(stream, counts, generic, kernels), counts, index };
  });
  const framing = 1 + 5 * coded.length;
  const length = framing + coded.reduce((sum, c) => sum + c.body.length, 0);
  const streamBytes = coded.map((c) => c.body.length);
  const allocate = (bytes: number) => (into ? into.subarray(0, bytes) : new Uint8Array(bytes));
  const whole =
    !generic && repeatsValues(layout, raw)
      ? brotliWhole(raw, Math.min(length, raw.length + 1))
      : null;
  if (whole) {
    const payload = allocate(whole.length + 1);
    payload[0] = WHOLE_BROTLI;
    payload.set(whole, 1);
    return { payload, streamBytes, groupedBytes: length, firstStreamCounts: coded[0]!.counts };
  }
  if (length > raw.length + 1) {
    // Framing outweighs any gain (tiny chunks): store the bytes as they are.
    const stored = allocate(raw.length + 1);
    stored[0] = STORED;
    stored.set(raw, 1);
    return {
      payload: stored,
      streamBytes: [raw.length],
      groupedBytes: raw.length + 1,
      firstStreamCounts: coded[0]!.counts,
    };
  }
  const payload = allocate(length);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  payload[0] = coded.length;
  let position = framing;
  for (const { codec, body, index } of coded) {
    payload[1 + 5 * index] = codec;
    view.setUint32(2 + 5 * index, body.length, true);
    payload.set(body, position);
    position += body.length;
  }
  return { payload, streamBytes, groupedBytes: length, firstStreamCounts: coded[0]!.counts };
}

/**
 * Decode one stream (into `target` when given: the kernels' view for it; a raw stream is
 * returned as it lies in the payload either way).
 */
function decodeStream(
  codec: number,
  body: Uint8Array,
  length: number,
  kernels: LosslessKernels | null,
  target?: Uint8Array,
): Uint8Array {
  switch (codec) {
    case StreamCodec.raw:
      if (body.length !== length)
        throw new ChunkFormatError(`a raw stream holds ${body.length} bytes, not ${length}`);
      return body;
    case StreamCodec.fill:
      if (body.length !== 1) throw new ChunkFormatError('a constant stream is not one byte');
      return (target ?? new Uint8Array(length)).fill(body[0]!);
    case StreamCodec.rans:
    case StreamCodec.rans8:
      if (length === 0) throw new ChunkFormatError('an empty stream is rANS-coded');
      try {
        if (codec === StreamCodec.rans8) {
          return kernels && target
            ? kernels.rans8Decode(body, length, target)
            : rans8Decode(body, length);
        }
        return kernels && target
          ? kernels.ransDecode(body, length, target)
          : ransDecode(body, length);
      } catch (error) {
        throw new ChunkFormatError(`a coded stream is corrupt (${(error as Error).message})`);
      }
    case StreamCodec.deflate: {
      let inflated: Buffer;
      try {
        inflated = zlib.inflateRawSync(body, { maxOutputLength: Math.max(1, length) });
      } catch (error) {
        throw new ChunkFormatError(`a deflated stream is corrupt (${(error as Error).message})`);
      }
      if (inflated.length !== length)
        throw new ChunkFormatError(
          `a deflated stream holds ${inflated.length} bytes, not ${length}`,
        );
      if (target) target.set(inflated);
      return inflated;
    }
    default:
      throw new ChunkFormatError(`unknown stream codec ${codec}`);
  }
}

/**
 * Decode a chunk of `rawLength` bytes into `out`; throws ChunkFormatError when the payload
 * is corrupt. `kernels` null decodes in TypeScript (the same bytes).
 */
export function decodeChunk(
  layout: ByteLayout,
  payload: Uint8Array,
  rawLength: number,
  out = new Uint8Array(rawLength),
  kernels = kernelsFor(layout, false),
): Uint8Array {
  return decodeChunkTo(layout, payload, rawLength, out, kernels);
}

/**
 * decodeChunk without the copy into a buffer of the caller's: the decoded bytes where they
 * lie, a view on the kernels' memory (valid until their next use) or on `payload` (a stored
 * chunk), so that they can be hashed and written from there.
 */
export function decodeChunkView(
  layout: ByteLayout,
  payload: Uint8Array,
  rawLength: number,
): Uint8Array {
  return decodeChunkTo(layout, payload, rawLength, null, kernelsFor(layout, false));
}

function decodeChunkTo(
  layout: ByteLayout,
  payload: Uint8Array,
  rawLength: number,
  out: Uint8Array | null,
  kernels: LosslessKernels | null,
): Uint8Array {
  if (payload[0] === STORED) {
    if (payload.length !== rawLength + 1)
      throw new ChunkFormatError('a stored chunk has the wrong length');
    if (!out) return payload.subarray(1);
    out.set(payload.subarray(1));
    return out;
  }
  if (payload[0] === WHOLE_BROTLI) {
    let decoded: Buffer;
    try {
      decoded = zlib.brotliDecompressSync(payload.subarray(1), {
        maxOutputLength: Math.max(1, rawLength),
      });
    } catch (error) {
      throw new ChunkFormatError(`a brotli chunk is corrupt (${(error as Error).message})`);
    }
    if (decoded.length !== rawLength)
      throw new ChunkFormatError(`a brotli chunk holds ${decoded.length} bytes, not ${rawLength}`);
    if (!out) return decoded;
    out.set(decoded);
    return out;
  }
  const lengths = streamLengths(layout, rawLength);
  if (payload.length < 1 || payload[0] !== lengths.length) {
    throw new ChunkFormatError(`the chunk does not hold ${lengths.length} streams`);
  }
  const framing = 1 + 5 * lengths.length;
  if (payload.length < framing) throw new ChunkFormatError('the chunk framing is truncated');
  let targets: Uint8Array[] | undefined;
  if (kernels) ({ payload, targets } = kernels.decodeTargets(layout, payload, rawLength));
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let position = framing;
  const streams = lengths.map((length, index) => {
    const codec = payload[1 + 5 * index]!;
    const bodyLength = view.getUint32(2 + 5 * index, true);
    if (position + bodyLength > payload.length) {
      throw new ChunkFormatError('a stream runs past the end of the chunk');
    }
    const body = payload.subarray(position, position + bodyLength);
    position += bodyLength;
    return decodeStream(codec, body, length, kernels, targets?.[index]);
  });
  if (position !== payload.length) throw new ChunkFormatError('the chunk has trailing bytes');
  return kernels
    ? kernels.join(layout, streams, rawLength, out)
    : joinStreams(layout, streams, out ?? new Uint8Array(rawLength));
}

/** `target[i] ^= other[i]` over the shorter of the two. */
export function xorInto(target: Uint8Array, other: Uint8Array): Uint8Array {
  const length = Math.min(target.length, other.length);
  let i = 0;
  if (target.byteOffset % 4 === 0 && other.byteOffset % 4 === 0) {
    const words = length >> 2;
    const a = new Uint32Array(target.buffer, target.byteOffset, words);
    const b = new Uint32Array(other.buffer, other.byteOffset, words);
    for (; i < words; i++) a[i]! ^= b[i]!;
    i = words * 4;
  }
  for (; i < length; i++) target[i]! ^= other[i]!;
  return target;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (the zlib/PNG polynomial); zlib's native one where this Node has it. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(bytes) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The chunk coder's hot loops on WebAssembly (src/server/wasm/lossless.ts, built into
 * dist/wasm/lossless.wasm): byte grouping and its inverse, histograms, eight-lane rANS
 * encoding and decoding, and decoding of version-1 (two-state) rANS streams. Output is byte
 * for byte that of the TypeScript in byteGroups.ts and rans.ts, which remains the path
 * where WebAssembly cannot load.
 *
 * One instance is kept per thread and its memory reused from chunk to chunk:
 *
 *   [fixed tables | chunk bytes | streams | coded body or payload]
 *
 * Views handed out (`split`, `decodeTargets`) are valid until the next call that lays out
 * a chunk (`split`, `decodeTargets`): only those grow the memory, or replace an instance
 * that an earlier large chunk grew past KEPT_MEMORY_BYTES.
 */
import { compileWasm, type WasmMemory } from '../analysis/wasmLoader';
import { elementBytesOf, type ByteLayout } from './byteGroups';
import {
  byteHistogram,
  normalise,
  ransParseHeader,
  RansError,
  rans8Assemble,
  rans8Encode,
  rans8ParseHeader,
  RANS8_LANES,
} from './rans';

interface LosslessExports {
  readonly memory: WasmMemory;
  splitBf16(src: number, n: number, exponent: number, signMantissa: number): void;
  joinBf16(exponent: number, signMantissa: number, n: number, dst: number): void;
  splitF32(src: number, n: number, streams: number): void;
  joinF32(s0: number, s1: number, s2: number, s3: number, n: number, dst: number): void;
  splitPlanes(src: number, n: number, size: number, streams: number, rotate: number): void;
  joinPlanes(streams: number, n: number, size: number, dst: number, rotate: number): void;
  histogram(src: number, n: number, counts: number, scratch: number): void;
  ransDecode(
    src: number,
    end: number,
    slots: number,
    states: number,
    out: number,
    count: number,
  ): number;
  rans8Encode(symbols: number, n: number, table: number, end: number, states: number): number;
  rans8Decode(src: number, end: number, states: number, out: number, count: number): number;
  xxh64(src: number, n: number, dst: number): void;
}

interface WasmApi {
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

const PAGE_BYTES = 65536;
/** Memory beyond this after a chunk is given back (a new instance next time). */
const KEPT_MEMORY_BYTES = 64 * 1024 * 1024;
/** WebAssembly memory (32-bit addresses) holds at most 4 GiB. */
const MAX_WASM_BYTES = 4 * 1024 * 1024 * 1024 - PAGE_BYTES;

// The fixed tables at the start of the memory.
const COUNTS_AT = 0; // 256 u32
const SCRATCH_AT = 1024; // 3 × 256 u32 for the histogram
const STATES_AT = 9216; // 8 u32
const HASH_AT = 9248; // 8 bytes: an XXH64
const SLOTS_AT = 12288; // 4096 u32 for the version-1 decoder
const TABLE8_AT = 28672; // 256 × 8 u32 for the eight-lane encoder
// The eight-lane decoder's tables, at the fixed addresses the kernels use.
const FREQ_OFFSET8_AT = 36864; // 4096 u32: frequency | offset << 16
const SYMBOL8_AT = 53248; // 4096 u8
const DATA_AT = 57344;

const align = (offset: number) => Math.ceil(offset / 16) * 16;

/**
 * Per frequency f: m' = ⌈2^(32+k) / f⌉ − 2^32 and k = ⌈log2 f⌉, so that for any 32-bit
 * state x, x / f = (((x · m') >> 32) + x) >> k exactly (computed in 64 bits).
 */
const RECIPROCALS8 = (() => {
  const table = new Uint32Array(4097 * 2);
  for (let freq = 1; freq <= 4096; freq++) {
    let shift = 0;
    while (freq > 1 << shift) shift++;
    const m = ((1n << BigInt(32 + shift)) + BigInt(freq - 1)) / BigInt(freq);
    table[2 * freq] = Number(m - (1n << 32n));
    table[2 * freq + 1] = shift;
  }
  return table;
})();

export class LosslessKernels {
  private exports: LosslessExports;
  /** Where the current chunk's streams and coded bytes lie. */
  private streamsAt = DATA_AT;
  private codedAt = DATA_AT;

  constructor(private readonly module: object) {
    this.exports = this.instantiate();
  }

  private instantiate(): LosslessExports {
    return new wasmApi!.Instance(this.module, {}).exports as LosslessExports;
  }

  /** The memory grown to hold `bytes` (a fresh instance when the last chunk grew it a lot). */
  private reserve(bytes: number): Uint8Array {
    if (bytes > MAX_WASM_BYTES) throw new RangeError('the chunk is too large for WebAssembly');
    if (this.exports.memory.buffer.byteLength > KEPT_MEMORY_BYTES && bytes <= KEPT_MEMORY_BYTES) {
      this.exports = this.instantiate();
    }
    const memory = this.exports.memory;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    const current = memory.buffer.byteLength / PAGE_BYTES;
    if (pages > current) memory.grow(pages - current);
    return new Uint8Array(memory.buffer);
  }

  private get memory(): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer);
  }

  /**
   * XXH64 of `bytes` (seed 0), 8 bytes most significant first: hashed where they lie when
   * they are a view on the kernels' memory, copied in otherwise.
   */
  xxh64(bytes: Uint8Array): Uint8Array {
    const k = this.exports;
    let at = bytes.byteOffset;
    if (bytes.buffer !== k.memory.buffer) {
      this.reserve(DATA_AT + bytes.length).set(bytes, DATA_AT);
      at = DATA_AT;
    }
    k.xxh64(at, bytes.length, HASH_AT);
    return new Uint8Array(k.memory.buffer, HASH_AT, 8).slice();
  }

  /**
   * Where `split` lays out a chunk of `length` bytes: its copy of the chunk at DATA_AT, then
   * the streams, then room for a coded body (at most 2 bytes per symbol); and the bytes needed.
   */
  private splitLayout(layout: ByteLayout, length: number) {
    const n = Math.floor(length / elementBytesOf(layout));
    const streamsAt = align(DATA_AT + length);
    const codedAt = align(streamsAt + n * elementBytesOf(layout));
    return { n, streamsAt, codedAt, bytes: codedAt + 2 * n + 16 };
  }

  /**
   * A view of `length` bytes where `split` copies a chunk of `layout`: a chunk read (or
   * written) there is hashed (xxh64) and split where it lies, without a copy. Valid until
   * the next call that lays out a chunk.
   */
  chunkRoom(layout: ByteLayout, length: number): Uint8Array {
    return this.reserve(this.splitLayout(layout, length).bytes).subarray(DATA_AT, DATA_AT + length);
  }

  /** The stream views of splitStreams(layout, raw) (the tail is a view on `raw`). */
  split(layout: ByteLayout, raw: Uint8Array): Uint8Array[] {
    const size = elementBytesOf(layout);
    const rawAt = DATA_AT;
    const { n, streamsAt, codedAt, bytes } = this.splitLayout(layout, raw.length);
    this.streamsAt = streamsAt;
    this.codedAt = codedAt;
    const memory = this.reserve(bytes);
    // A chunk already in its place (chunkRoom) is not copied onto itself.
    if (raw.buffer !== memory.buffer || raw.byteOffset !== rawAt) {
      memory.set(raw.subarray(0, n * size), rawAt);
    }
    const k = this.exports;
    const at = this.streamsAt;
    if (layout === 'bf16') k.splitBf16(rawAt, n, at, at + n);
    else if (layout === 'f32') k.splitF32(rawAt, n, at);
    else k.splitPlanes(rawAt, n, size, at, layout === 'f16' || layout === 'f64' ? 1 : 0);
    const streams = Array.from({ length: size }, (_, p) =>
      memory.subarray(at + p * n, at + (p + 1) * n),
    );
    return [...streams, raw.subarray(n * size)];
  }

  /** byteHistogram of a view handed out by `split` (other bytes, such as tails, counted in TypeScript). */
  histogram(stream: Uint8Array): Uint32Array {
    const k = this.exports;
    if (stream.buffer !== k.memory.buffer) return byteHistogram(stream);
    const counts = new Uint32Array(k.memory.buffer, COUNTS_AT, 256);
    counts.fill(0);
    k.histogram(stream.byteOffset, stream.length, COUNTS_AT, SCRATCH_AT);
    return counts.slice();
  }

  /** rans8Encode of a stream view handed out by `split` (other bytes coded in TypeScript). */
  rans8Encode(symbols: Uint8Array, counts: Uint32Array): Uint8Array {
    const n = symbols.length;
    const k = this.exports;
    if (n === 0 || symbols.buffer !== k.memory.buffer) return rans8Encode(symbols, counts);
    const freqs = normalise(counts, n);
    if (freqs.includes(4096)) throw new RansError('a constant stream is not rANS-coded');
    const table = new Uint32Array(k.memory.buffer, TABLE8_AT, 256 * 8);
    let start = 0;
    for (let s = 0; s < 256; s++) {
      const freq = freqs[s]!;
      if (freq > 0) {
        table[8 * s] = RECIPROCALS8[2 * freq]!;
        table[8 * s + 1] = freq * (1 << 20);
        table[8 * s + 2] = start;
        table[8 * s + 3] = 4096 - freq;
        table[8 * s + 4] = RECIPROCALS8[2 * freq + 1]!;
      }
      start += freq;
    }
    // Room for one word per symbol, and the word stored below the first one kept.
    const end = this.codedAt + 2 * n + 16;
    const position = k.rans8Encode(symbols.byteOffset, n, TABLE8_AT, end, STATES_AT);
    const states = new Uint32Array(k.memory.buffer, STATES_AT, RANS8_LANES);
    return rans8Assemble(freqs, states, this.memory.subarray(position, end));
  }

  /**
   * Lay out the decoding of a chunk of `rawLength` bytes: the payload copied in (its view
   * returned) and one target view per stream, where decoded streams go before `join`.
   */
  decodeTargets(
    layout: ByteLayout,
    payload: Uint8Array,
    rawLength: number,
  ): { payload: Uint8Array; targets: Uint8Array[] } {
    const size = elementBytesOf(layout);
    const n = Math.floor(rawLength / size);
    this.streamsAt = DATA_AT;
    this.codedAt = this.payloadAt(rawLength);
    const memory = this.reserve(this.codedAt + payload.length);
    // A payload already in its place (payloadRoom) is not copied onto itself.
    if (payload.buffer !== memory.buffer || payload.byteOffset !== this.codedAt) {
      memory.set(payload, this.codedAt);
    }
    const at = this.streamsAt;
    const targets = Array.from({ length: size }, (_, p) =>
      memory.subarray(at + p * n, at + (p + 1) * n),
    );
    targets.push(memory.subarray(at + n * size, at + rawLength));
    return { payload: memory.subarray(this.codedAt, this.codedAt + payload.length), targets };
  }

  /** Where decodeTargets copies the payload of a chunk of `rawLength` bytes (after the streams and the joined bytes). */
  private payloadAt(rawLength: number): number {
    return align(align(DATA_AT + rawLength) + rawLength);
  }

  /**
   * A view of `payloadLength` bytes where decodeTargets copies the payload of a chunk of
   * `rawLength` bytes: a payload read there is decoded without a copy. Valid until the next
   * call that lays out a chunk.
   */
  payloadRoom(payloadLength: number, rawLength: number): Uint8Array {
    const at = this.payloadAt(rawLength);
    return this.reserve(at + payloadLength).subarray(at, at + payloadLength);
  }

  /** ransDecode of a body inside the payload view into a target view (both from decodeTargets). */
  ransDecode(encoded: Uint8Array, count: number, target: Uint8Array): Uint8Array {
    const k = this.exports;
    const header = ransParseHeader(encoded, new Uint32Array(k.memory.buffer, SLOTS_AT, 4096));
    if (header.present === 1) return target.fill(encoded[2]!, 0, count);
    const states = new Uint32Array(k.memory.buffer, STATES_AT, 2);
    states[0] = header.even;
    states[1] = header.odd;
    const start = encoded.byteOffset + header.headerBytes;
    const end = encoded.byteOffset + encoded.length;
    const result = k.ransDecode(start, end, SLOTS_AT, STATES_AT, target.byteOffset, count);
    if (result === -1) throw new RansError('the coded stream ended early');
    if (result !== end) throw new RansError('the coded stream does not end where its symbols do');
    return target;
  }

  /** rans8Decode of a body inside the payload view into a target view (both from decodeTargets). */
  rans8Decode(encoded: Uint8Array, count: number, target: Uint8Array): Uint8Array {
    const k = this.exports;
    const buffer = k.memory.buffer;
    const header = rans8ParseHeader(
      encoded,
      new Uint32Array(buffer, FREQ_OFFSET8_AT, 4096),
      new Uint8Array(buffer, SYMBOL8_AT, 4096),
    );
    new Uint32Array(buffer, STATES_AT, RANS8_LANES).set(header.states);
    const start = encoded.byteOffset + header.headerBytes;
    const end = encoded.byteOffset + encoded.length;
    const result = k.rans8Decode(start, end, STATES_AT, target.byteOffset, count);
    if (result === -1) throw new RansError('the coded stream ended early');
    if (result !== end) throw new RansError('the coded stream does not end where its symbols do');
    return target;
  }

  /**
   * joinStreams into `out` of decoded streams: views on the kernels' memory, each the
   * target decodeTargets gave for it or (raw streams) its body inside the payload view.
   * Without `out`, the joined bytes are returned where they lie, on the kernels' memory.
   */
  join(
    layout: ByteLayout,
    streams: readonly Uint8Array[],
    rawLength: number,
    out: Uint8Array | null,
  ): Uint8Array {
    const size = elementBytesOf(layout);
    const n = Math.floor(rawLength / size);
    const k = this.exports;
    const memory = this.memory;
    const at = this.streamsAt;
    const outAt = align(at + rawLength);
    const offsets = streams.map((stream) => {
      if (stream.buffer !== k.memory.buffer) throw new RangeError('not a view on the kernels');
      return stream.byteOffset;
    });
    if (layout === 'bf16') k.joinBf16(offsets[0]!, offsets[1]!, n, outAt);
    else if (layout === 'f32')
      k.joinF32(offsets[0]!, offsets[1]!, offsets[2]!, offsets[3]!, n, outAt);
    else {
      // The planes kernel reads them one after the other: move raw ones into place.
      for (let p = 0; p < size; p++) {
        if (offsets[p] !== at + p * n) memory.copyWithin(at + p * n, offsets[p]!, offsets[p]! + n);
      }
      k.joinPlanes(at, n, size, outAt, layout === 'f16' || layout === 'f64' ? 1 : 0);
    }
    // The tail (bytes past the last whole element) after the joined elements.
    memory.set(streams[size]!, outAt + n * size);
    const joined = memory.subarray(outAt, outAt + rawLength);
    if (!out) return joined;
    out.set(joined);
    return out;
  }
}

let compiled: object | null | undefined;
let kept: LosslessKernels | null | undefined;

/** This thread's kernels, or null where WebAssembly cannot load them. */
export function losslessKernels(): LosslessKernels | null {
  if (kept === undefined) {
    compiled ??= wasmApi ? compileWasm('lossless') : null;
    try {
      kept = compiled ? new LosslessKernels(compiled) : null;
    } catch {
      kept = null;
    }
  }
  return kept;
}

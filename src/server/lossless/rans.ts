/**
 * Static range-asymmetric-numeral-system (rANS) coders for byte streams: one frequency
 * table per stream, 12-bit probabilities. Two variants: the version-1 coder (stream codec
 * 1, still read; written only by tests now), two interleaved 31-bit states renormalised a
 * byte at a time; and the eight-lane coder of version 2 (codec 4, further below).
 *
 * Chosen over Huffman (deflate's `Z_HUFFMAN_ONLY`) because it codes within a few
 * thousandths of a bit of the empirical entropy, where Huffman loses a few hundredths on
 * the skewed exponent streams of neural-network weights (see docs/llz-format.md).
 *
 * Version-1 encoded layout: u16 n (present symbols, 1…256), n × (u8 symbol, u16 frequency),
 * two u32 final states (even and odd symbols), then the renormalisation bytes in decoding
 * order. All little-endian.
 */

const PROB_BITS = 12;
const PROB_SCALE = 1 << PROB_BITS;
const PROB_MASK = PROB_SCALE - 1;
/** Lower bound of the normalised state interval [L, 256·L). */
const STATE_LOW = 1 << 23;

export class RansError extends Error {}

/** Counts of each byte value in `bytes`. */
export function byteHistogram(bytes: Uint8Array, counts = new Uint32Array(256)): Uint32Array {
  // Two tables halve the stalls on runs of one value (exponent streams are full of them).
  const second = new Uint32Array(256);
  const pairs = bytes.length >> 1;
  for (let i = 0; i < pairs; i++) {
    counts[bytes[2 * i]!]!++;
    second[bytes[2 * i + 1]!]!++;
  }
  if (bytes.length & 1) counts[bytes[bytes.length - 1]!]!++;
  for (let s = 0; s < 256; s++) counts[s]! += second[s]!;
  return counts;
}

/** Empirical entropy of a histogram, in bits per symbol (0 for an empty one). */
export function entropyBits(counts: ArrayLike<number>): number {
  let total = 0;
  for (let s = 0; s < counts.length; s++) total += counts[s]!;
  if (total === 0) return 0;
  let bits = 0;
  for (let s = 0; s < counts.length; s++) {
    const count = counts[s]!;
    if (count > 0) bits -= count * Math.log2(count / total);
  }
  return bits / total;
}

function largestSymbol(freqs: Uint16Array): number {
  let largest = 0;
  for (let s = 1; s < 256; s++) if (freqs[s]! > freqs[largest]!) largest = s;
  return largest;
}

/** Frequencies summing to PROB_SCALE, every present symbol at least 1. */
export function normalise(counts: Uint32Array, total: number): Uint16Array {
  const freqs = new Uint16Array(256);
  let sum = 0;
  for (let s = 0; s < 256; s++) {
    const count = counts[s]!;
    if (count === 0) continue;
    const freq = Math.max(1, Math.round((count * PROB_SCALE) / total));
    freqs[s] = freq;
    sum += freq;
  }
  // Rounding leaves the sum off by a little: take from (or give to) the largest symbols,
  // where a unit changes the code length least.
  while (sum > PROB_SCALE) {
    const largest = largestSymbol(freqs);
    const amount = Math.min(
      sum - PROB_SCALE,
      freqs[largest]! - 1,
      Math.max(1, freqs[largest]! >> 4),
    );
    freqs[largest] = freqs[largest]! - amount;
    sum -= amount;
  }
  if (sum < PROB_SCALE) {
    const largest = largestSymbol(freqs);
    freqs[largest] = freqs[largest]! + PROB_SCALE - sum;
  }
  return freqs;
}

/** Encoded size, in bytes, of the frequency table of a histogram. */
export function ransHeaderBytes(counts: Uint32Array): number {
  let present = 0;
  for (let s = 0; s < 256; s++) if (counts[s]! > 0) present++;
  return 2 + 3 * present + 8;
}

/** The frequency table as it is encoded: u16 n, then n × (u8 symbol, u16 frequency). */
export function ransTableBytes(freqs: Uint16Array): number[] {
  const header: number[] = [];
  for (let s = 0; s < 256; s++) {
    if (freqs[s]! > 0) header.push(s, freqs[s]! & 0xff, freqs[s]! >> 8);
  }
  return [(header.length / 3) & 0xff, (header.length / 3) >> 8, ...header];
}

/** The encoded stream: frequency table, the two final states, then `body`. */
export function ransAssemble(
  freqs: Uint16Array,
  even: number,
  odd: number,
  body: Uint8Array,
): Uint8Array {
  const table = ransTableBytes(freqs);
  const out = new Uint8Array(table.length + 8 + body.length);
  out.set(table);
  const view = new DataView(out.buffer);
  view.setUint32(table.length, even, true);
  view.setUint32(table.length + 4, odd, true);
  out.set(body, table.length + 8);
  return out;
}

/** The parsed frequency table and states of an encoded stream. */
export interface RansHeader {
  /** Bytes before the renormalisation bytes. */
  readonly headerBytes: number;
  /** Symbols present (1 for a constant stream). */
  readonly present: number;
  readonly even: number;
  readonly odd: number;
}

/**
 * Parse and check an encoded stream's table and states, filling `slots` (4096 entries:
 * symbol | frequency << 8 | offset in its symbol's range << 20).
 */
export function ransParseHeader(encoded: Uint8Array, slots: Int32Array | Uint32Array): RansHeader {
  if (encoded.length < 2) throw new RansError('the coded stream is too short');
  const present = encoded[0]! | (encoded[1]! << 8);
  if (present < 1 || present > 256) throw new RansError(`bad symbol count ${present}`);
  const headerBytes = 2 + 3 * present + 8;
  if (encoded.length < headerBytes) throw new RansError('the frequency table is truncated');
  let cumulative = 0;
  let previous = -1;
  for (let i = 0; i < present; i++) {
    const symbol = encoded[2 + 3 * i]!;
    const freq = encoded[3 + 3 * i]! | (encoded[4 + 3 * i]! << 8);
    if (symbol <= previous || freq === 0 || cumulative + freq > PROB_SCALE) {
      throw new RansError('the frequency table is invalid');
    }
    previous = symbol;
    // 4096 never occurs with two or more symbols; masked, it reads 0 for a constant stream.
    const packed = symbol | ((freq & PROB_MASK) << 8);
    for (let slot = cumulative; slot < cumulative + freq; slot++) {
      slots[slot] = packed | ((slot - cumulative) << 20);
    }
    cumulative += freq;
  }
  if (cumulative !== PROB_SCALE) throw new RansError('the frequencies do not add up');
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const even = view.getUint32(2 + 3 * present, true);
  const odd = view.getUint32(6 + 3 * present, true);
  const high = STATE_LOW * 256;
  if (even < STATE_LOW || even >= high || odd < STATE_LOW || odd >= high) {
    throw new RansError('the state is invalid');
  }
  if (
    present === 1 &&
    (even !== STATE_LOW || odd !== STATE_LOW || encoded.length !== headerBytes)
  ) {
    // One symbol of probability 1: the encoder emitted nothing but its states.
    throw new RansError('a constant stream has data');
  }
  return { headerBytes, present, even, odd };
}

/** rANS-encode `symbols` (non-empty) whose histogram is `counts`. */
export function ransEncode(symbols: Uint8Array, counts: Uint32Array): Uint8Array {
  const n = symbols.length;
  if (n === 0) throw new RansError('nothing to encode');
  const freqs = normalise(counts, n);
  const starts = new Uint16Array(256);
  const limits = new Float64Array(256);
  let cumulative = 0;
  for (let s = 0; s < 256; s++) {
    starts[s] = cumulative;
    cumulative += freqs[s]!;
    limits[s] = ((STATE_LOW >>> PROB_BITS) << 8) * freqs[s]!;
  }
  // Each symbol emits at most 2 bytes at 12-bit precision (a frequency of 1 costs 12 bits).
  const body = new Uint8Array(n * 2 + 16);
  let position = body.length;
  // Two interleaved states (even symbols on the first, odd on the second) halve the
  // dependency chain; symbols are coded last to first so that decoding runs forward.
  let even = STATE_LOW;
  let odd = STATE_LOW;
  let i = n - 1;
  if ((n & 1) === 1) {
    const symbol = symbols[i]!;
    const freq = freqs[symbol]!;
    while (even >= limits[symbol]!) {
      body[--position] = even & 0xff;
      even >>>= 8;
    }
    even = (((even / freq) | 0) << PROB_BITS) + (even % freq) + starts[symbol]!;
    i--;
  }
  for (; i > 0; i -= 2) {
    const symbolOdd = symbols[i]!;
    const symbolEven = symbols[i - 1]!;
    const freqOdd = freqs[symbolOdd]!;
    const freqEven = freqs[symbolEven]!;
    while (odd >= limits[symbolOdd]!) {
      body[--position] = odd & 0xff;
      odd >>>= 8;
    }
    odd = (((odd / freqOdd) | 0) << PROB_BITS) + (odd % freqOdd) + starts[symbolOdd]!;
    while (even >= limits[symbolEven]!) {
      body[--position] = even & 0xff;
      even >>>= 8;
    }
    even = (((even / freqEven) | 0) << PROB_BITS) + (even % freqEven) + starts[symbolEven]!;
  }
  return ransAssemble(freqs, even, odd, body.subarray(position));
}

/** Decode exactly `count` symbols; throws RansError when the bytes are not a valid encoding. */
export function ransDecode(encoded: Uint8Array, count: number, out = new Uint8Array(count)) {
  // Int32 rather than Uint32: V8 keeps signed 32-bit elements as small integers, while
  // unsigned ones above 2^31 become doubles in the hot loop.
  const slots = new Int32Array(PROB_SCALE);
  const header = ransParseHeader(encoded, slots);
  if (header.present === 1) return out.fill(encoded[2]!, 0, count);
  let { even, odd } = header;
  let position = header.headerBytes;
  const end = encoded.length;
  const pairs = count >> 1;
  for (let k = 0, i = 0; k < pairs; k++, i += 2) {
    const entryEven = slots[even & PROB_MASK]!;
    out[i] = entryEven & 0xff;
    even = ((entryEven >>> 8) & PROB_MASK) * (even >>> PROB_BITS) + (entryEven >>> 20);
    while (even < STATE_LOW) {
      if (position >= end) throw new RansError('the coded stream ended early');
      even = (even << 8) | encoded[position++]!;
    }
    const entryOdd = slots[odd & PROB_MASK]!;
    out[i + 1] = entryOdd & 0xff;
    odd = ((entryOdd >>> 8) & PROB_MASK) * (odd >>> PROB_BITS) + (entryOdd >>> 20);
    while (odd < STATE_LOW) {
      if (position >= end) throw new RansError('the coded stream ended early');
      odd = (odd << 8) | encoded[position++]!;
    }
  }
  if ((count & 1) === 1) {
    const entry = slots[even & PROB_MASK]!;
    out[count - 1] = entry & 0xff;
    even = ((entry >>> 8) & PROB_MASK) * (even >>> PROB_BITS) + (entry >>> 20);
    while (even < STATE_LOW) {
      if (position >= end) throw new RansError('the coded stream ended early');
      even = (even << 8) | encoded[position++]!;
    }
  }
  if (even !== STATE_LOW || odd !== STATE_LOW || position !== end) {
    throw new RansError('the coded stream does not end where its symbols do');
  }
  return out;
}

/*
 * Eight-lane rANS (stream codec 4, container version 2): symbol i is coded on state i mod 8,
 * each state a 32-bit integer kept in [2^16, 2^32) and renormalised 16 bits at a time. A
 * state then reads or writes at most one word per symbol, so the WebAssembly loops run
 * without branches, and eight independent states keep the processor busy where two left
 * it waiting on each other.
 *
 * Encoded layout: u16 n, n × (u8 symbol, u16 frequency) (n ≥ 2), eight u32 final states,
 * then u16 renormalisation words in decoding order. All little-endian.
 */

export const RANS8_LANES = 8;
/** Lower bound of the normalised state interval [L, 2^16·L) of the eight-lane coder. */
export const RANS8_LOW = 1 << 16;
const WORD = 65536;

/** The first and last byte values present in a histogram or frequency table (−1 when empty). */
function presentRange(counts: ArrayLike<number>): [first: number, last: number] {
  let first = -1;
  let last = -1;
  for (let s = 0; s < 256; s++) {
    if (counts[s]! > 0) {
      if (first < 0) first = s;
      last = s;
    }
  }
  return [first, last];
}

/** Bytes of an eight-lane table covering symbols first…last: two bytes, then 12 bits a symbol. */
const rans8TableBytes = (first: number, last: number) => 2 + 3 * Math.ceil((last - first + 1) / 2);

/** Encoded size, in bytes, of the eight-lane coder's table and states for a histogram. */
export function rans8HeaderBytes(counts: Uint32Array): number {
  const [first, last] = presentRange(counts);
  return rans8TableBytes(first, last) + 4 * RANS8_LANES;
}

/**
 * The eight-lane encoded stream: frequency table (u8 first symbol, u8 last symbol, then the
 * frequency of every symbol from first to last, 12 bits each, two to three bytes, little-
 * endian, 0 for absent ones), the eight final states, then `body`.
 */
export function rans8Assemble(
  freqs: Uint16Array,
  states: ArrayLike<number>,
  body: Uint8Array,
): Uint8Array {
  const [first, last] = presentRange(freqs);
  const tableBytes = rans8TableBytes(first, last);
  const out = new Uint8Array(tableBytes + 4 * RANS8_LANES + body.length);
  out[0] = first;
  out[1] = last;
  for (let s = first; s <= last; s += 2) {
    const pair = freqs[s]! | ((s + 1 <= last ? freqs[s + 1]! : 0) << 12);
    const at = 2 + 3 * ((s - first) >> 1);
    out[at] = pair & 0xff;
    out[at + 1] = (pair >>> 8) & 0xff;
    out[at + 2] = pair >>> 16;
  }
  const view = new DataView(out.buffer);
  for (let lane = 0; lane < RANS8_LANES; lane++) {
    view.setUint32(tableBytes + 4 * lane, states[lane]!, true);
  }
  out.set(body, tableBytes + 4 * RANS8_LANES);
  return out;
}

/** The parsed table and states of an eight-lane stream. */
export interface Rans8Header {
  readonly headerBytes: number;
  readonly states: Uint32Array;
}

/**
 * Parse and check an eight-lane stream's table and states, filling the decoding tables:
 * per slot of the 4096, `freqOffsets` its symbol's frequency | its offset in the symbol's
 * range << 16, and `symbols` its symbol. A constant stream is never coded this way (codec
 * `fill` is): the first and last symbols differ and both are present.
 */
export function rans8ParseHeader(
  encoded: Uint8Array,
  freqOffsets: Uint32Array,
  symbols: Uint8Array,
): Rans8Header {
  if (encoded.length < 2) throw new RansError('the coded stream is too short');
  const first = encoded[0]!;
  const last = encoded[1]!;
  if (first >= last) throw new RansError(`bad symbol range ${first}…${last}`);
  const tableBytes = rans8TableBytes(first, last);
  const headerBytes = tableBytes + 4 * RANS8_LANES;
  if (encoded.length < headerBytes) throw new RansError('the frequency table is truncated');
  let cumulative = 0;
  for (let s = first; s <= last + 1; s++) {
    const at = 2 + 3 * ((s - first) >> 1);
    if (at >= tableBytes) break;
    const pair = encoded[at]! | (encoded[at + 1]! << 8) | (encoded[at + 2]! << 16);
    const freq = (s - first) & 1 ? pair >>> 12 : pair & 0xfff;
    if (s > last) {
      if (freq !== 0) throw new RansError('the frequency table is invalid');
      break;
    }
    if (((s === first || s === last) && freq === 0) || cumulative + freq > PROB_SCALE) {
      throw new RansError('the frequency table is invalid');
    }
    symbols.fill(s, cumulative, cumulative + freq);
    for (let offset = 0; offset < freq; offset++) {
      freqOffsets[cumulative + offset] = freq | (offset << 16);
    }
    cumulative += freq;
  }
  if (cumulative !== PROB_SCALE) throw new RansError('the frequencies do not add up');
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const states = new Uint32Array(RANS8_LANES);
  for (let lane = 0; lane < RANS8_LANES; lane++) {
    states[lane] = view.getUint32(tableBytes + 4 * lane, true);
    if (states[lane]! < RANS8_LOW) throw new RansError('the state is invalid');
  }
  return { headerBytes, states };
}

/** Eight-lane rANS encoding of `symbols` (at least two distinct values) whose histogram is `counts`. */
export function rans8Encode(symbols: Uint8Array, counts: Uint32Array): Uint8Array {
  const n = symbols.length;
  if (n === 0) throw new RansError('nothing to encode');
  const freqs = normalise(counts, n);
  if (freqs.includes(PROB_SCALE)) throw new RansError('a constant stream is not rANS-coded');
  const starts = new Uint16Array(256);
  for (let s = 0, cumulative = 0; s < 256; s++) {
    starts[s] = cumulative;
    cumulative += freqs[s]!;
  }
  // Each symbol writes at most one 16-bit word.
  const body = new Uint8Array(2 * n);
  let position = body.length;
  const states = new Array<number>(RANS8_LANES).fill(RANS8_LOW);
  for (let i = n - 1; i >= 0; i--) {
    const symbol = symbols[i]!;
    const freq = freqs[symbol]!;
    const lane = i & (RANS8_LANES - 1);
    let x = states[lane]!;
    // x stays below 2^16 · L / 4096 · freq after this, so that coding lands it below 2^32.
    if (x >= freq * (RANS8_LOW / PROB_SCALE) * WORD) {
      body[--position] = x >>> 8;
      body[--position] = x & 0xff;
      x = x >>> 16;
    }
    const quotient = Math.floor(x / freq);
    states[lane] = quotient * PROB_SCALE + (x - quotient * freq) + starts[symbol]!;
  }
  return rans8Assemble(freqs, states, body.subarray(position));
}

/** Decode exactly `count` symbols of an eight-lane stream; throws RansError when it is not a valid encoding. */
export function rans8Decode(encoded: Uint8Array, count: number, out = new Uint8Array(count)) {
  const freqOffsets = new Uint32Array(PROB_SCALE);
  const symbols = new Uint8Array(PROB_SCALE);
  const { headerBytes, states } = rans8ParseHeader(encoded, freqOffsets, symbols);
  let position = headerBytes;
  const end = encoded.length;
  for (let i = 0; i < count; i++) {
    const lane = i & (RANS8_LANES - 1);
    let x = states[lane]!;
    const slot = x & PROB_MASK;
    const entry = freqOffsets[slot]!;
    out[i] = symbols[slot]!;
    x = (entry & 0xffff) * (x >>> PROB_BITS) + (entry >>> 16);
    if (x < RANS8_LOW) {
      if (position + 2 > end) throw new RansError('the coded stream ended early');
      x = x * WORD + (encoded[position]! | (encoded[position + 1]! << 8));
      position += 2;
    }
    states[lane] = x;
  }
  if (position !== end || states.some((x) => x !== RANS8_LOW)) {
    throw new RansError('the coded stream does not end where its symbols do');
  }
  return out;
}

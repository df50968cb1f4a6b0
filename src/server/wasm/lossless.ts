// AssemblyScript source of the lossless-packing kernels (built by scripts/build-wasm.mjs into
// dist/wasm/lossless.wasm): byte grouping and its inverse, byte histograms, and the rANS
// coder's inner loops. Pointers are byte offsets into the module's memory, which the caller
// lays out and grows; nothing is allocated here. Every function produces the same bytes as
// the TypeScript in src/server/lossless/ (byteGroups.ts, rans.ts).

const PROB_BITS: u32 = 12;
const PROB_MASK: u32 = (1 << PROB_BITS) - 1;
const STATE_LOW: u32 = 1 << 23;

/** bfloat16 elements → exponent stream and sign+7-mantissa-bits stream. */
export function splitBf16(src: usize, n: i32, exponent: usize, signMantissa: usize): void {
  const low7 = i16x8.splat(0x7f);
  const high = i16x8.splat(0x80);
  const byte = i16x8.splat(0xff);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const a = v128.load(src + ((<usize>i) << 1));
    const b = v128.load(src + ((<usize>i) << 1), 16);
    const ea = v128.and(i16x8.shr_u(a, 7), byte);
    const eb = v128.and(i16x8.shr_u(b, 7), byte);
    const sa = v128.or(v128.and(i16x8.shr_u(a, 8), high), v128.and(a, low7));
    const sb = v128.or(v128.and(i16x8.shr_u(b, 8), high), v128.and(b, low7));
    v128.store(exponent + <usize>i, i8x16.narrow_i16x8_u(ea, eb));
    v128.store(signMantissa + <usize>i, i8x16.narrow_i16x8_u(sa, sb));
  }
  for (; i < n; i++) {
    const word = <u32>load<u16>(src + ((<usize>i) << 1));
    store<u8>(exponent + <usize>i, <u8>(word >> 7));
    store<u8>(signMantissa + <usize>i, <u8>(((word >> 8) & 0x80) | (word & 0x7f)));
  }
}

/** Inverse of splitBf16. */
export function joinBf16(exponent: usize, signMantissa: usize, n: i32, dst: usize): void {
  const low7 = i16x8.splat(0x7f);
  const high = i16x8.splat(0x80);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const e = v128.load(exponent + <usize>i);
    const s = v128.load(signMantissa + <usize>i);
    const el = i16x8.extend_low_i8x16_u(e);
    const eh = i16x8.extend_high_i8x16_u(e);
    const sl = i16x8.extend_low_i8x16_u(s);
    const sh = i16x8.extend_high_i8x16_u(s);
    const wl = v128.or(
      v128.or(i16x8.shl(v128.and(sl, high), 8), i16x8.shl(el, 7)),
      v128.and(sl, low7),
    );
    const wh = v128.or(
      v128.or(i16x8.shl(v128.and(sh, high), 8), i16x8.shl(eh, 7)),
      v128.and(sh, low7),
    );
    v128.store(dst + ((<usize>i) << 1), wl);
    v128.store(dst + ((<usize>i) << 1), wh, 16);
  }
  for (; i < n; i++) {
    const e = <u32>load<u8>(exponent + <usize>i);
    const s = <u32>load<u8>(signMantissa + <usize>i);
    store<u16>(dst + ((<usize>i) << 1), <u16>(((s & 0x80) << 8) | (e << 7) | (s & 0x7f)));
  }
}

/** Four i32x4 vectors of values 0…255 → one u8x16 vector. */
function narrow4(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(a, b), i16x8.narrow_i32x4_u(c, d));
}

/** float32 elements → exponent, sign+7 mantissa bits, mantissa byte 1, mantissa byte 0. */
export function splitF32(src: usize, n: i32, streams: usize): void {
  const s0 = streams;
  const s1 = streams + <usize>n;
  const s2 = streams + <usize>n * 2;
  const s3 = streams + <usize>n * 3;
  const byte = i32x4.splat(0xff);
  const low7 = i32x4.splat(0x7f);
  const high = i32x4.splat(0x80);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const at = src + ((<usize>i) << 2);
    const a = v128.load(at);
    const b = v128.load(at, 16);
    const c = v128.load(at, 32);
    const d = v128.load(at, 48);
    v128.store(
      s0 + <usize>i,
      narrow4(
        v128.and(i32x4.shr_u(a, 23), byte),
        v128.and(i32x4.shr_u(b, 23), byte),
        v128.and(i32x4.shr_u(c, 23), byte),
        v128.and(i32x4.shr_u(d, 23), byte),
      ),
    );
    v128.store(
      s1 + <usize>i,
      narrow4(
        v128.or(v128.and(i32x4.shr_u(a, 24), high), v128.and(i32x4.shr_u(a, 16), low7)),
        v128.or(v128.and(i32x4.shr_u(b, 24), high), v128.and(i32x4.shr_u(b, 16), low7)),
        v128.or(v128.and(i32x4.shr_u(c, 24), high), v128.and(i32x4.shr_u(c, 16), low7)),
        v128.or(v128.and(i32x4.shr_u(d, 24), high), v128.and(i32x4.shr_u(d, 16), low7)),
      ),
    );
    v128.store(
      s2 + <usize>i,
      narrow4(
        v128.and(i32x4.shr_u(a, 8), byte),
        v128.and(i32x4.shr_u(b, 8), byte),
        v128.and(i32x4.shr_u(c, 8), byte),
        v128.and(i32x4.shr_u(d, 8), byte),
      ),
    );
    v128.store(
      s3 + <usize>i,
      narrow4(v128.and(a, byte), v128.and(b, byte), v128.and(c, byte), v128.and(d, byte)),
    );
  }
  for (; i < n; i++) {
    const word = load<u32>(src + ((<usize>i) << 2));
    store<u8>(s0 + <usize>i, <u8>(word >> 23));
    store<u8>(s1 + <usize>i, <u8>(((word >> 24) & 0x80) | ((word >> 16) & 0x7f)));
    store<u8>(s2 + <usize>i, <u8>(word >> 8));
    store<u8>(s3 + <usize>i, <u8>word);
  }
}

/** Four u8x16 lanes widened to i32x4, quarter `q` (0…3) of the vector. */
function widen(v: v128, q: i32): v128 {
  const half = q < 2 ? i16x8.extend_low_i8x16_u(v) : i16x8.extend_high_i8x16_u(v);
  return q & 1 ? i32x4.extend_high_i16x8_u(half) : i32x4.extend_low_i16x8_u(half);
}

/** Inverse of splitF32 (the four streams need not be contiguous). */
export function joinF32(s0: usize, s1: usize, s2: usize, s3: usize, n: i32, dst: usize): void {
  const low7 = i32x4.splat(0x7f);
  const high = i32x4.splat(0x80);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const e = v128.load(s0 + <usize>i);
    const s = v128.load(s1 + <usize>i);
    const m1 = v128.load(s2 + <usize>i);
    const m0 = v128.load(s3 + <usize>i);
    const at = dst + ((<usize>i) << 2);
    for (let q = 0; q < 4; q++) {
      const sq = widen(s, q);
      const word = v128.or(
        v128.or(widen(m0, q), i32x4.shl(widen(m1, q), 8)),
        v128.or(
          v128.or(i32x4.shl(v128.and(sq, low7), 16), i32x4.shl(widen(e, q), 23)),
          i32x4.shl(v128.and(sq, high), 24),
        ),
      );
      v128.store(at + ((<usize>q) << 4), word);
    }
  }
  for (; i < n; i++) {
    const e = <u32>load<u8>(s0 + <usize>i);
    const s = <u32>load<u8>(s1 + <usize>i);
    const word =
      (<u32>load<u8>(s3 + <usize>i)) |
      ((<u32>load<u8>(s2 + <usize>i)) << 8) |
      ((s & 0x7f) << 16) |
      (e << 23) |
      ((s & 0x80) << 24);
    store<u32>(dst + ((<usize>i) << 2), word);
  }
}

/**
 * Elements of `size` bytes → `size` planes of n bytes each at `streams`, most significant
 * byte first; with `rotate`, the first plane's bytes are rotated left by one.
 */
export function splitPlanes(src: usize, n: i32, size: i32, streams: usize, rotate: bool): void {
  for (let plane = 0; plane < size; plane++) {
    const out = streams + <usize>(plane * n);
    let at = src + <usize>(size - 1 - plane);
    if (rotate && plane === 0) {
      for (let i = 0; i < n; i++, at += <usize>size) {
        const b = <u32>load<u8>(at);
        store<u8>(out + <usize>i, <u8>((b << 1) | (b >> 7)));
      }
    } else {
      for (let i = 0; i < n; i++, at += <usize>size) store<u8>(out + <usize>i, load<u8>(at));
    }
  }
}

/** Inverse of splitPlanes. */
export function joinPlanes(streams: usize, n: i32, size: i32, dst: usize, rotate: bool): void {
  for (let plane = 0; plane < size; plane++) {
    const from = streams + <usize>(plane * n);
    let at = dst + <usize>(size - 1 - plane);
    if (rotate && plane === 0) {
      for (let i = 0; i < n; i++, at += <usize>size) {
        const b = <u32>load<u8>(from + <usize>i);
        store<u8>(at, <u8>((b >> 1) | (b << 7)));
      }
    } else {
      for (let i = 0; i < n; i++, at += <usize>size) store<u8>(at, load<u8>(from + <usize>i));
    }
  }
}

/**
 * Adds the byte counts of src[0…n) to the 256 u32 at `counts`. `scratch` holds 3 × 1 KB:
 * four tables in all, so that runs of one value (common in exponent streams) do not stall
 * on a store to the counter just stored.
 */
export function histogram(src: usize, n: i32, counts: usize, scratch: usize): void {
  memory.fill(scratch, 0, 3 * 1024);
  const t1 = scratch;
  const t2 = scratch + 1024;
  const t3 = scratch + 2048;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const w = load<u64>(src + <usize>i);
    const a = <u32>w;
    const b = <u32>(w >> 32);
    let at = counts + (((<usize>a) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t1 + (((<usize>(a >> 8)) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t2 + (((<usize>(a >> 16)) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t3 + ((<usize>(a >> 24)) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = counts + (((<usize>b) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t1 + (((<usize>(b >> 8)) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t2 + (((<usize>(b >> 16)) & 0xff) << 2);
    store<u32>(at, load<u32>(at) + 1);
    at = t3 + ((<usize>(b >> 24)) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  for (; i < n; i++) {
    const at = counts + ((<usize>load<u8>(src + <usize>i)) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  for (let s = 0; s < 256; s += 4) {
    const off = (<usize>s) << 2;
    v128.store(
      counts + off,
      i32x4.add(
        i32x4.add(v128.load(counts + off), v128.load(t1 + off)),
        i32x4.add(v128.load(t2 + off), v128.load(t3 + off)),
      ),
    );
  }
}

/**
 * Decode `count` symbols into `out` from the renormalisation bytes [position, end), with the
 * states at `states` (even, odd) and `slots` 4096 u32 (symbol | frequency << 8 | offset << 20).
 * Returns the position after the last byte read, -1 when the bytes ran out, or -2 when the
 * states do not end at their initial value.
 */
export function ransDecode(
  src: usize,
  end: usize,
  slots: usize,
  states: usize,
  out: usize,
  count: i32,
): isize {
  let position = src;
  let even = load<u32>(states);
  let odd = load<u32>(states, 4);
  const pairs = count >> 1;
  let k = 0;
  // Fast loop: a pair reads at most 4 bytes, so no bounds checks while 4 remain.
  for (; k < pairs && position + 4 <= end; k++) {
    const entryEven = load<u32>(slots + ((<usize>(even & PROB_MASK)) << 2));
    const entryOdd = load<u32>(slots + ((<usize>(odd & PROB_MASK)) << 2));
    store<u8>(out + ((<usize>k) << 1), <u8>entryEven);
    store<u8>(out + ((<usize>k) << 1), <u8>entryOdd, 1);
    even = ((entryEven >> 8) & PROB_MASK) * (even >> PROB_BITS) + (entryEven >> 20);
    odd = ((entryOdd >> 8) & PROB_MASK) * (odd >> PROB_BITS) + (entryOdd >> 20);
    if (even < STATE_LOW) {
      even = (even << 8) | (<u32>load<u8>(position));
      position++;
      if (even < STATE_LOW) {
        even = (even << 8) | (<u32>load<u8>(position));
        position++;
      }
    }
    if (odd < STATE_LOW) {
      odd = (odd << 8) | (<u32>load<u8>(position));
      position++;
      if (odd < STATE_LOW) {
        odd = (odd << 8) | (<u32>load<u8>(position));
        position++;
      }
    }
  }
  for (; k < pairs; k++) {
    const entryEven = load<u32>(slots + ((<usize>(even & PROB_MASK)) << 2));
    store<u8>(out + ((<usize>k) << 1), <u8>entryEven);
    even = ((entryEven >> 8) & PROB_MASK) * (even >> PROB_BITS) + (entryEven >> 20);
    while (even < STATE_LOW) {
      if (position >= end) return -1;
      even = (even << 8) | (<u32>load<u8>(position));
      position++;
    }
    const entryOdd = load<u32>(slots + ((<usize>(odd & PROB_MASK)) << 2));
    store<u8>(out + ((<usize>k) << 1), <u8>entryOdd, 1);
    odd = ((entryOdd >> 8) & PROB_MASK) * (odd >> PROB_BITS) + (entryOdd >> 20);
    while (odd < STATE_LOW) {
      if (position >= end) return -1;
      odd = (odd << 8) | (<u32>load<u8>(position));
      position++;
    }
  }
  if (count & 1) {
    const entry = load<u32>(slots + ((<usize>(even & PROB_MASK)) << 2));
    store<u8>(out + <usize>(count - 1), <u8>entry);
    even = ((entry >> 8) & PROB_MASK) * (even >> PROB_BITS) + (entry >> 20);
    while (even < STATE_LOW) {
      if (position >= end) return -1;
      even = (even << 8) | (<u32>load<u8>(position));
      position++;
    }
  }
  if (even !== STATE_LOW || odd !== STATE_LOW) return -2;
  return <isize>position;
}

// Eight-lane rANS (stream codec 4): symbol i on state i & 7, states in [2^16, 2^32),
// renormalised one 16-bit word at a time, so that every step is free of branches.

const LOW8: u32 = 1 << 16;

/**
 * One eight-lane encoding step of the symbol at `at` on state `x`, renormalised first: the
 * word is stored below `position` unconditionally and kept only when the state needed it
 * (the caller moves `position` down by what `rans8Emits` says). `table` holds per symbol
 * 8 u32: the reciprocal m' (⌈2^(32+k)/f⌉ − 2^32), the bound 2^20·f, the start, 4096 − f, k.
 */
function rans8Renorm(x: u32, entry: usize): u32 {
  return select<u32>(x >> 16, x, x >= load<u32>(entry, 4));
}

function rans8Code(x: u32, entry: usize): u32 {
  const t = (<u64>x * <u64>load<u32>(entry)) >> 32;
  const q = <u32>((t + <u64>x) >> (<u64>load<u32>(entry, 16)));
  return x + load<u32>(entry, 8) + q * load<u32>(entry, 12);
}

/**
 * Eight-lane rANS encoding of symbols[0…n) backwards into the bytes ending at `end` (at
 * least 2n + 2 bytes of room below it); returns where the written bytes start. The eight
 * final states are stored at `states`.
 */
export function rans8Encode(
  symbols: usize,
  n: i32,
  table: usize,
  end: usize,
  states: usize,
): usize {
  let position = end;
  for (let lane = 0; lane < 8; lane++) store<u32>(states + ((<usize>lane) << 2), LOW8);
  // The symbols past the last whole group of eight, one at a time on their lane's state.
  let i = n - 1;
  for (; i >= 0 && (i & 7) !== 7; i--) {
    const at = states + ((<usize>(i & 7)) << 2);
    const entry = table + ((<usize>load<u8>(symbols + <usize>i)) << 5);
    const x = load<u32>(at);
    store<u16>(position - 2, <u16>x);
    position -= (<usize>(x >= load<u32>(entry, 4))) << 1;
    store<u32>(at, rans8Code(rans8Renorm(x, entry), entry));
  }
  let x0 = load<u32>(states);
  let x1 = load<u32>(states, 4);
  let x2 = load<u32>(states, 8);
  let x3 = load<u32>(states, 12);
  let x4 = load<u32>(states, 16);
  let x5 = load<u32>(states, 20);
  let x6 = load<u32>(states, 24);
  let x7 = load<u32>(states, 28);
  for (; i > 0; i -= 8) {
    const group = symbols + <usize>(i - 7);
    const e7 = table + ((<usize>load<u8>(group, 7)) << 5);
    const e6 = table + ((<usize>load<u8>(group, 6)) << 5);
    const e5 = table + ((<usize>load<u8>(group, 5)) << 5);
    const e4 = table + ((<usize>load<u8>(group, 4)) << 5);
    const e3 = table + ((<usize>load<u8>(group, 3)) << 5);
    const e2 = table + ((<usize>load<u8>(group, 2)) << 5);
    const e1 = table + ((<usize>load<u8>(group, 1)) << 5);
    const e0 = table + ((<usize>load<u8>(group)) << 5);
    store<u16>(position - 2, <u16>x7);
    position -= (<usize>(x7 >= load<u32>(e7, 4))) << 1;
    store<u16>(position - 2, <u16>x6);
    position -= (<usize>(x6 >= load<u32>(e6, 4))) << 1;
    store<u16>(position - 2, <u16>x5);
    position -= (<usize>(x5 >= load<u32>(e5, 4))) << 1;
    store<u16>(position - 2, <u16>x4);
    position -= (<usize>(x4 >= load<u32>(e4, 4))) << 1;
    store<u16>(position - 2, <u16>x3);
    position -= (<usize>(x3 >= load<u32>(e3, 4))) << 1;
    store<u16>(position - 2, <u16>x2);
    position -= (<usize>(x2 >= load<u32>(e2, 4))) << 1;
    store<u16>(position - 2, <u16>x1);
    position -= (<usize>(x1 >= load<u32>(e1, 4))) << 1;
    store<u16>(position - 2, <u16>x0);
    position -= (<usize>(x0 >= load<u32>(e0, 4))) << 1;
    x7 = rans8Code(rans8Renorm(x7, e7), e7);
    x6 = rans8Code(rans8Renorm(x6, e6), e6);
    x5 = rans8Code(rans8Renorm(x5, e5), e5);
    x4 = rans8Code(rans8Renorm(x4, e4), e4);
    x3 = rans8Code(rans8Renorm(x3, e3), e3);
    x2 = rans8Code(rans8Renorm(x2, e2), e2);
    x1 = rans8Code(rans8Renorm(x1, e1), e1);
    x0 = rans8Code(rans8Renorm(x0, e0), e0);
  }
  store<u32>(states, x0);
  store<u32>(states, x1, 4);
  store<u32>(states, x2, 8);
  store<u32>(states, x3, 12);
  store<u32>(states, x4, 16);
  store<u32>(states, x5, 20);
  store<u32>(states, x6, 24);
  store<u32>(states, x7, 28);
  return position;
}

// The eight-lane decoder's tables, at fixed addresses so that lookups need no base
// register (losslessWasm.ts lays out its memory around them): per slot of the 4096, a u16
// frequency and a u16 offset within the symbol's range, then the slot's symbol (u8).
const FREQ_OFFSET8_AT: usize = 36864;
const SYMBOL8_AT: usize = 53248;

/** One eight-lane decoding step: the symbol stored at `out`, the state before renormalisation returned. */
function rans8Step(x: u32, out: usize): u32 {
  const slot = <usize>(x & PROB_MASK);
  store<u8>(out, load<u8>(slot, SYMBOL8_AT));
  const entry = slot << 2;
  return (
    <u32>load<u16>(entry, FREQ_OFFSET8_AT) * (x >> PROB_BITS) +
    <u32>load<u16>(entry, FREQ_OFFSET8_AT + 2)
  );
}

/**
 * Decode `count` symbols of an eight-lane stream into `out` from the words [position, end),
 * with the eight states at `states` and the tables at FREQ_OFFSET8_AT and SYMBOL8_AT.
 * Returns the position after the last word read, -1 when the words ran out, or -2 when the
 * states do not end at 2^16.
 */
export function rans8Decode(src: usize, end: usize, states: usize, out: usize, count: i32): isize {
  let position = src;
  let x0 = load<u32>(states);
  let x1 = load<u32>(states, 4);
  let x2 = load<u32>(states, 8);
  let x3 = load<u32>(states, 12);
  let x4 = load<u32>(states, 16);
  let x5 = load<u32>(states, 20);
  let x6 = load<u32>(states, 24);
  let x7 = load<u32>(states, 28);
  let i = 0;
  // Whole groups while 16 bytes remain: a group reads at most one word per lane.
  const groups = count - 8;
  const last = end - 16;
  for (; i <= groups && position <= last; i += 8) {
    const o = out + <usize>i;
    // Each lane decoded and renormalised in turn: short live ranges keep V8 from spilling
    // (decoding all eight first and renormalising after measured 20% slower).
    let c: bool;
    x0 = rans8Step(x0, o);
    c = x0 < LOW8;
    x0 = select<u32>((x0 << 16) | (<u32>load<u16>(position)), x0, c);
    position += (<usize>c) << 1;
    x1 = rans8Step(x1, o + 1);
    c = x1 < LOW8;
    x1 = select<u32>((x1 << 16) | (<u32>load<u16>(position)), x1, c);
    position += (<usize>c) << 1;
    x2 = rans8Step(x2, o + 2);
    c = x2 < LOW8;
    x2 = select<u32>((x2 << 16) | (<u32>load<u16>(position)), x2, c);
    position += (<usize>c) << 1;
    x3 = rans8Step(x3, o + 3);
    c = x3 < LOW8;
    x3 = select<u32>((x3 << 16) | (<u32>load<u16>(position)), x3, c);
    position += (<usize>c) << 1;
    x4 = rans8Step(x4, o + 4);
    c = x4 < LOW8;
    x4 = select<u32>((x4 << 16) | (<u32>load<u16>(position)), x4, c);
    position += (<usize>c) << 1;
    x5 = rans8Step(x5, o + 5);
    c = x5 < LOW8;
    x5 = select<u32>((x5 << 16) | (<u32>load<u16>(position)), x5, c);
    position += (<usize>c) << 1;
    x6 = rans8Step(x6, o + 6);
    c = x6 < LOW8;
    x6 = select<u32>((x6 << 16) | (<u32>load<u16>(position)), x6, c);
    position += (<usize>c) << 1;
    x7 = rans8Step(x7, o + 7);
    c = x7 < LOW8;
    x7 = select<u32>((x7 << 16) | (<u32>load<u16>(position)), x7, c);
    position += (<usize>c) << 1;
  }
  store<u32>(states, x0);
  store<u32>(states, x1, 4);
  store<u32>(states, x2, 8);
  store<u32>(states, x3, 12);
  store<u32>(states, x4, 16);
  store<u32>(states, x5, 20);
  store<u32>(states, x6, 24);
  store<u32>(states, x7, 28);
  // The rest one symbol at a time, checking every read.
  for (; i < count; i++) {
    const at = states + ((<usize>(i & 7)) << 2);
    let x = rans8Step(load<u32>(at), out + <usize>i);
    if (x < LOW8) {
      if (position + 2 > end) return -1;
      x = (x << 16) | (<u32>load<u16>(position));
      position += 2;
    }
    store<u32>(at, x);
  }
  for (let lane = 0; lane < 8; lane++) {
    if (load<u32>(states + ((<usize>lane) << 2)) !== LOW8) return -2;
  }
  return <isize>position;
}

// XXH64 (Yann Collet's xxHash, 64-bit, seed 0): the chunk check of container version 5.
// Its primes as two 32-bit halves (a 64-bit literal would lose precision as a JavaScript number).
const XXH_P1: u64 = ((<u64>0x9e3779b1) << 32) | 0x85ebca87;
const XXH_P2: u64 = ((<u64>0xc2b2ae3d) << 32) | 0x27d4eb4f;
const XXH_P3: u64 = ((<u64>0x165667b1) << 32) | 0x9e3779f9;
const XXH_P4: u64 = ((<u64>0x85ebca77) << 32) | 0xc2b2ae63;
const XXH_P5: u64 = ((<u64>0x27d4eb2f) << 32) | 0x165667c5;

function xxhRound(acc: u64, input: u64): u64 {
  return rotl<u64>(acc + input * XXH_P2, 31) * XXH_P1;
}

function xxhMerge(acc: u64, value: u64): u64 {
  return (acc ^ xxhRound(0, value)) * XXH_P1 + XXH_P4;
}

/** XXH64 of the `n` bytes at `src`, stored at `dst` as 8 bytes, most significant first. */
export function xxh64(src: usize, n: i32, dst: usize): void {
  const end = src + <usize>n;
  let p = src;
  let h: u64;
  if (n >= 32) {
    let v1: u64 = XXH_P1 + XXH_P2;
    let v2: u64 = XXH_P2;
    let v3: u64 = 0;
    let v4: u64 = 0 - XXH_P1;
    const limit = end - 32;
    for (; p <= limit; p += 32) {
      v1 = xxhRound(v1, load<u64>(p));
      v2 = xxhRound(v2, load<u64>(p, 8));
      v3 = xxhRound(v3, load<u64>(p, 16));
      v4 = xxhRound(v4, load<u64>(p, 24));
    }
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = xxhMerge(h, v1);
    h = xxhMerge(h, v2);
    h = xxhMerge(h, v3);
    h = xxhMerge(h, v4);
  } else h = XXH_P5;
  h += <u64>n;
  for (; p + 8 <= end; p += 8) {
    h = rotl<u64>(h ^ xxhRound(0, load<u64>(p)), 27) * XXH_P1 + XXH_P4;
  }
  if (p + 4 <= end) {
    h = rotl<u64>(h ^ (<u64>load<u32>(p) * XXH_P1), 23) * XXH_P2 + XXH_P3;
    p += 4;
  }
  for (; p < end; p++) h = rotl<u64>(h ^ (<u64>load<u8>(p) * XXH_P5), 11) * XXH_P1;
  h ^= h >> 33;
  h *= XXH_P2;
  h ^= h >> 29;
  h *= XXH_P3;
  h ^= h >> 32;
  store<u64>(dst, bswap<u64>(h));
}

// AssemblyScript source of the ggml block dequantization kernels (built by
// scripts/build-wasm.mjs into dist/wasm/ggml.wasm). Pointers are byte offsets into the
// module's memory, which the host (src/server/analysis/ggmlKernel.ts) lays out and grows;
// nothing is allocated here. Every type follows the block layout and formula of the
// TypeScript reference, src/server/analysis/ggmlDequant.ts, in float32 arithmetic; the
// results are the same bit for bit (each product is exact or rounded once in both).

/** The 16 levels of IQ4_NL / IQ4_XS. */
const IQ4_LEVELS: usize = memory.data<i8>([
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
]);
/** MXFP4's E2M1 values, doubled. */
const MXFP4_LEVELS: usize = memory.data<i8>([
  0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
]);

/** First byte the host may use (after this module's static data), 16-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

function half(at: usize): f32 {
  const h = <u32>load<u16>(at);
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) {
    const value = <f32>mantissa * 5.9604645e-8; // mantissa · 2^-24, exact
    return sign ? -value : value;
  }
  if (exponent === 31) return reinterpret<f32>(sign | 0x7f800000 | (mantissa << 13));
  return reinterpret<f32>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

function byte(at: usize): i32 {
  return <i32>load<u8>(at);
}

function put(out: usize, index: i32, value: f32): void {
  store<f32>(out + ((<usize>index) << 2), value);
}

function q4_0(x: usize, y: usize, levels: bool): void {
  const d = half(x);
  for (let j = 0; j < 16; j++) {
    const b = byte(x + 2 + j);
    const low = levels ? <f32>load<i8>(IQ4_LEVELS + (b & 15)) : <f32>((b & 15) - 8);
    const high = levels ? <f32>load<i8>(IQ4_LEVELS + (b >> 4)) : <f32>((b >> 4) - 8);
    put(y, j, d * low);
    put(y, j + 16, d * high);
  }
}

function q4_1(x: usize, y: usize): void {
  const d = half(x);
  const m = half(x + 2);
  for (let j = 0; j < 16; j++) {
    const b = byte(x + 4 + j);
    put(y, j, <f32>(b & 15) * d + m);
    put(y, j + 16, <f32>(b >> 4) * d + m);
  }
}

function q5(x: usize, y: usize, withMin: bool): void {
  const d = half(x);
  const m: f32 = withMin ? half(x + 2) : 0;
  const highAt = x + (withMin ? 4 : 2);
  const high = load<u32>(highAt);
  for (let j = 0; j < 16; j++) {
    const b = byte(highAt + 4 + j);
    const low = (b & 15) | ((<i32>((high >> j) & 1)) << 4);
    const up = (b >> 4) | ((<i32>((high >> (j + 16)) & 1)) << 4);
    if (withMin) {
      put(y, j, <f32>low * d + m);
      put(y, j + 16, <f32>up * d + m);
    } else {
      put(y, j, <f32>(low - 16) * d);
      put(y, j + 16, <f32>(up - 16) * d);
    }
  }
}

function q8_0(x: usize, y: usize): void {
  const d = half(x);
  for (let j = 0; j < 32; j++) put(y, j, <f32>load<i8>(x + 2 + j) * d);
}

function mxfp4(x: usize, y: usize): void {
  const e = byte(x);
  // 2^(e - 128): the float32 bit pattern, or a subnormal for e < 2.
  const d =
    e < 2 ? reinterpret<f32>((<u32>0x00200000) << e) : reinterpret<f32>((<u32>(e - 1)) << 23);
  for (let j = 0; j < 16; j++) {
    const b = byte(x + 1 + j);
    put(y, j, <f32>load<i8>(MXFP4_LEVELS + (b & 15)) * d);
    put(y, j + 16, <f32>load<i8>(MXFP4_LEVELS + (b >> 4)) * d);
  }
}

function q2_k(x: usize, y: usize): void {
  const d = half(x + 80);
  const dmin = half(x + 82);
  let scale = 0;
  let out = 0;
  for (let h = 0; h < 2; h++) {
    const q = x + 16 + h * 32;
    for (let shift = 0; shift < 8; shift += 2) {
      for (let part = 0; part < 2; part++) {
        const sc = byte(x + scale++);
        const dl = d * <f32>(sc & 15);
        const ml = dmin * <f32>(sc >> 4);
        for (let l = 0; l < 16; l++)
          put(y, out++, dl * <f32>((byte(q + part * 16 + l) >> shift) & 3) - ml);
      }
    }
  }
}

function q3_k(x: usize, y: usize): void {
  const d = half(x + 108);
  const packed = x + 96;
  let scale = 0;
  let out = 0;
  let mask = 1;
  for (let h = 0; h < 2; h++) {
    const q = x + 32 + h * 32;
    for (let shift = 0; shift < 8; shift += 2) {
      for (let part = 0; part < 2; part++) {
        const i = scale++;
        const low = i < 8 ? byte(packed + i) & 15 : byte(packed + i - 8) >> 4;
        const up = (byte(packed + 8 + (i & 3)) >> (2 * (i >> 2))) & 3;
        const dl = d * <f32>((low | (up << 4)) - 32);
        for (let l = 0; l < 16; l++) {
          const index = part * 16 + l;
          const value = (byte(q + index) >> shift) & 3;
          const drop = byte(x + index) & mask ? 0 : 4;
          put(y, out++, dl * <f32>(value - drop));
        }
      }
      mask <<= 1;
    }
  }
}

function scaleK4(x: usize, j: i32): i32 {
  return j < 4 ? byte(x + j) & 63 : (byte(x + j + 4) & 15) | ((byte(x + j - 4) >> 6) << 4);
}

function minK4(x: usize, j: i32): i32 {
  return j < 4 ? byte(x + j + 4) & 63 : (byte(x + j + 4) >> 4) | ((byte(x + j) >> 6) << 4);
}

function qk(x: usize, y: usize, five: bool): void {
  const d = half(x);
  const dmin = half(x + 2);
  const qh = x + 16;
  const qs = x + (five ? 48 : 16);
  let out = 0;
  for (let chunk = 0; chunk < 4; chunk++) {
    const q = qs + chunk * 32;
    const d1 = d * <f32>scaleK4(x + 4, 2 * chunk);
    const m1 = dmin * <f32>minK4(x + 4, 2 * chunk);
    const d2 = d * <f32>scaleK4(x + 4, 2 * chunk + 1);
    const m2 = dmin * <f32>minK4(x + 4, 2 * chunk + 1);
    const bit1 = 1 << (2 * chunk);
    const bit2 = bit1 << 1;
    for (let l = 0; l < 32; l++) {
      const value = (byte(q + l) & 15) + (five && byte(qh + l) & bit1 ? 16 : 0);
      put(y, out++, d1 * <f32>value - m1);
    }
    for (let l = 0; l < 32; l++) {
      const value = (byte(q + l) >> 4) + (five && byte(qh + l) & bit2 ? 16 : 0);
      put(y, out++, d2 * <f32>value - m2);
    }
  }
}

function q6_k(x: usize, y: usize): void {
  const d = half(x + 208);
  for (let h = 0; h < 2; h++) {
    const ql = x + h * 64;
    const qh = x + 128 + h * 32;
    const sc = x + 192 + h * 8;
    const base = h * 128;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const high = byte(qh + l);
      const q1 = ((byte(ql + l) & 15) | ((high & 3) << 4)) - 32;
      const q2 = ((byte(ql + l + 32) & 15) | (((high >> 2) & 3) << 4)) - 32;
      const q3 = ((byte(ql + l) >> 4) | (((high >> 4) & 3) << 4)) - 32;
      const q4 = ((byte(ql + l + 32) >> 4) | (((high >> 6) & 3) << 4)) - 32;
      put(y, base + l, d * <f32>load<i8>(sc + is) * <f32>q1);
      put(y, base + l + 32, d * <f32>load<i8>(sc + is + 2) * <f32>q2);
      put(y, base + l + 64, d * <f32>load<i8>(sc + is + 4) * <f32>q3);
      put(y, base + l + 96, d * <f32>load<i8>(sc + is + 6) * <f32>q4);
    }
  }
}

function iq4_xs(x: usize, y: usize): void {
  const d = half(x);
  const scalesHigh = <i32>load<u16>(x + 2);
  for (let sub = 0; sub < 8; sub++) {
    const low = (byte(x + 4 + (sub >> 1)) >> (4 * (sub & 1))) & 15;
    const dl = d * <f32>((low | (((scalesHigh >> (2 * sub)) & 3) << 4)) - 32);
    const q = x + 8 + sub * 16;
    for (let j = 0; j < 16; j++) {
      const b = byte(q + j);
      put(y, sub * 32 + j, dl * <f32>load<i8>(IQ4_LEVELS + (b & 15)));
      put(y, sub * 32 + j + 16, dl * <f32>load<i8>(IQ4_LEVELS + (b >> 4)));
    }
  }
}

/**
 * Dequantizes `blocks` blocks of ggml type `typeId` at `src` into float32 at `dst`.
 * Returns false for a type these kernels do not decode (nothing is written).
 */
export function dequantize(typeId: i32, src: usize, blocks: i32, dst: usize): bool {
  let blockBytes = 0;
  let blockValues = 32;
  switch (typeId) {
    case 2:
      blockBytes = 18;
      break; // Q4_0
    case 3:
      blockBytes = 20;
      break; // Q4_1
    case 6:
      blockBytes = 22;
      break; // Q5_0
    case 7:
      blockBytes = 24;
      break; // Q5_1
    case 8:
      blockBytes = 34;
      break; // Q8_0
    case 10:
      blockBytes = 84;
      blockValues = 256;
      break; // Q2_K
    case 11:
      blockBytes = 110;
      blockValues = 256;
      break; // Q3_K
    case 12:
      blockBytes = 144;
      blockValues = 256;
      break; // Q4_K
    case 13:
      blockBytes = 176;
      blockValues = 256;
      break; // Q5_K
    case 14:
      blockBytes = 210;
      blockValues = 256;
      break; // Q6_K
    case 20:
      blockBytes = 18;
      break; // IQ4_NL
    case 23:
      blockBytes = 136;
      blockValues = 256;
      break; // IQ4_XS
    case 39:
      blockBytes = 17;
      break; // MXFP4
    default:
      return false;
  }
  for (let b = 0; b < blocks; b++) {
    const x = src + <usize>b * blockBytes;
    const y = dst + ((<usize>b * blockValues) << 2);
    switch (typeId) {
      case 2:
        q4_0(x, y, false);
        break;
      case 3:
        q4_1(x, y);
        break;
      case 6:
        q5(x, y, false);
        break;
      case 7:
        q5(x, y, true);
        break;
      case 8:
        q8_0(x, y);
        break;
      case 10:
        q2_k(x, y);
        break;
      case 11:
        q3_k(x, y);
        break;
      case 12:
        qk(x, y, false);
        break;
      case 13:
        qk(x, y, true);
        break;
      case 14:
        q6_k(x, y);
        break;
      case 20:
        q4_0(x, y, true);
        break;
      case 23:
        iq4_xs(x, y);
        break;
      case 39:
        mxfp4(x, y);
        break;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Quantization: ports of ggml's reference quantizers as LayerLens implements them in
// TypeScript (src/server/compress/ggml/, the reference). The steps are the reference's in
// the same order and in float64, as JavaScript computes them; float32 only where the
// reference stores into a Float32Array (weights) and f16 where it stores a scale, so the
// bytes written are the same. The host passes finite weights only.

/** Levels of one super-block (u8), one candidate scale's levels (u8), Q3_K's signed levels. */
const LEVELS: usize = memory.data(256, 16);
const CANDIDATE: usize = memory.data(32, 16);
const SIGNED: usize = memory.data(16, 16);
/** Weights of one group and of one super-block (f32). */
const GROUP_WEIGHTS: usize = memory.data(32 * 4, 16);
const BLOCK_WEIGHTS: usize = memory.data(256 * 4, 16);
/** Group scales and minimums (f64), and their stored integers (i32). */
const SCALES: usize = memory.data(16 * 8, 16);
const MINS: usize = memory.data(16 * 8, 16);
const STORED: usize = memory.data(16 * 4, 16);
const STORED_MINS: usize = memory.data(16 * 4, 16);

const GROUP_MAX_EPS: f64 = 1e-15;

function value(x: usize, i: i32): f64 {
  return <f64>load<f32>(x + ((<usize>i) << 2));
}

function f64At(p: usize, i: i32): f64 {
  return load<f64>(p + ((<usize>i) << 3));
}

function setF64(p: usize, i: i32, v: f64): void {
  store<f64>(p + ((<usize>i) << 3), v);
}

function i32At(p: usize, i: i32): i32 {
  return load<i32>(p + ((<usize>i) << 2));
}

function setI32(p: usize, i: i32, v: i32): void {
  store<i32>(p + ((<usize>i) << 2), v);
}

function level(i: i32): i32 {
  return <i32>load<u8>(LEVELS + <usize>i);
}

function setLevel(i: i32, v: i32): void {
  store<u8>(LEVELS + <usize>i, <u8>v);
}

/** Whether a float64 is non-zero and not NaN (JavaScript's truthiness). */
function truthy(v: f64): bool {
  return v !== 0 && v === v;
}

function clampF(v: f64, low: f64, high: f64): f64 {
  return v < low ? low : v > high ? high : v;
}

/** nearestInt then clamp, as an integer. */
function nearestIn(v: f64, low: f64, high: f64): i32 {
  return <i32>clampF(nearest<f64>(v), low, high);
}

/** JavaScript's Math.round (ties towards +∞). */
function jsRound(v: f64): f64 {
  const f = floor<f64>(v);
  return v - f >= 0.5 ? f + 1 : f;
}

/** float64 → float32 → f16 bits (round to nearest even), as kernels.ts's float16Bits. */
function halfBits(v: f64): u32 {
  const f = reinterpret<u32>(<f32>v);
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  if (exponent >= 143) return sign | 0x7c00;
  if (exponent >= 113) {
    let h = ((exponent - 112) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  if (exponent < 102) return sign;
  const significand = mantissa | 0x800000;
  const shift = 126 - exponent;
  let h = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const halfway: u32 = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (h & 1) !== 0)) h++;
  return sign | h;
}

/** Store `v` as an f16 at `at`; the value the block then holds. */
function putHalf(at: usize, v: f64): f64 {
  store<u16>(at, <u16>halfBits(v));
  return <f64>half(at);
}

/** Signed extreme (first of largest magnitude) of `n` float32 values; its magnitude in AMAX. */
let amax: f64 = 0;
function signedMax(x: usize, n: i32): f64 {
  amax = 0;
  let max: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = value(x, i);
    const m = abs<f64>(v);
    if (m > amax) {
      amax = m;
      max = v;
    }
  }
  return max;
}

/** The same over `n` float64 values. */
function signedMax64(p: usize, n: i32): f64 {
  amax = 0;
  let max: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = f64At(p, i);
    const m = abs<f64>(v);
    if (m > amax) {
      amax = m;
      max = v;
    }
  }
  return max;
}

/** importance · √(σ² + x²) of `n` values into `out` (f32). */
function importanceWeights(x: usize, n: i32, importance: usize, out: usize): void {
  let sumX2: f64 = 0;
  for (let i = 0; i < n; i++) sumX2 += value(x, i) * value(x, i);
  const sigma2 = (2 * sumX2) / <f64>n;
  for (let i = 0; i < n; i++) {
    const v = value(x, i);
    store<f32>(out + ((<usize>i) << 2), <f32>(value(importance, i) * sqrt<f64>(sigma2 + v * v)));
  }
}

function q8_0Quantize(x: usize, out: usize): void {
  signedMax(x, 32);
  const d = amax / 127;
  const inverse = truthy(d) ? 1 / d : 0;
  putHalf(out, d);
  for (let j = 0; j < 32; j++) {
    const v = value(x, j) * inverse;
    const q = v < 0 ? -jsRound(-v) : jsRound(v);
    store<u8>(out + 2 + <usize>j, <u8>((<i32>q) & 0xff));
  }
}

function offsetQuantize(x: usize, out: usize, bits: i32): void {
  const halfLevels = 1 << (bits - 1);
  const top = (1 << bits) - 1;
  const max = signedMax(x, 32);
  const d = max / <f64>-halfLevels;
  const inverse = truthy(d) ? 1 / d : 0;
  putHalf(out, d);
  const qs = out + (bits === 5 ? 6 : 2);
  let high = 0;
  for (let j = 0; j < 16; j++) {
    const low = min<i32>(top, <i32>trunc<f64>(value(x, j) * inverse + <f64>halfLevels + 0.5));
    const up = min<i32>(top, <i32>trunc<f64>(value(x, j + 16) * inverse + <f64>halfLevels + 0.5));
    store<u8>(qs + <usize>j, <u8>((low & 0x0f) | ((up & 0x0f) << 4)));
    high |= ((low >> 4) << j) | ((up >> 4) << (j + 16));
  }
  if (bits === 5) store<u32>(out + 2, <u32>high);
}

function iq4Level(i: i32): f64 {
  return <f64>load<i8>(IQ4_LEVELS + <usize>i);
}

/** Index of the IQ4_NL level nearest to `v` (ties: the lower). */
function nearestIq4(v: f64): i32 {
  if (v <= iq4Level(0)) return 0;
  if (v >= iq4Level(15)) return 15;
  let low = 0;
  let high = 15;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (v < iq4Level(middle)) high = middle;
    else low = middle;
  }
  return v - iq4Level(high - 1) < iq4Level(high) - v ? high - 1 : high;
}

let fitQx: f64 = 0;
let fitQ2: f64 = 0;
function iq4Fit(x: usize, weights: usize, inverse: f64): void {
  let sumQx: f64 = 0;
  let sumQ2: f64 = 0;
  for (let j = 0; j < 32; j++) {
    const v = value(x, j);
    const q = iq4Level(nearestIq4(inverse * v));
    const w = weights ? value(weights, j) : v * v;
    sumQx += w * q * v;
    sumQ2 += w * q * q;
  }
  fitQx = sumQx;
  fitQ2 = sumQ2;
}

function iq4NlQuantize(x: usize, out: usize, importance: usize): void {
  const max = signedMax(x, 32);
  const weights: usize = importance ? GROUP_WEIGHTS : 0;
  if (importance) importanceWeights(x, 32, importance, GROUP_WEIGHTS);
  memory.fill(out, 0, 18);
  let d: f64 = 0;
  if (amax >= GROUP_MAX_EPS) {
    const first = iq4Level(0);
    iq4Fit(x, weights, 1 / (-max / first));
    d = fitQx / fitQ2;
    let best = d * fitQx;
    for (let step = -7; step <= 7; step++) {
      iq4Fit(x, weights, (<f64>step + first) / max);
      if (fitQ2 > 0 && fitQx * fitQx > best * fitQ2) {
        d = fitQx / fitQ2;
        best = d * fitQx;
      }
    }
  }
  putHalf(out, d);
  const inverse = truthy(d) ? 1 / d : 0;
  for (let j = 0; j < 16; j++) {
    const low = nearestIq4(inverse * value(x, j));
    const up = nearestIq4(inverse * value(x, j + 16));
    store<u8>(out + 2 + <usize>j, <u8>(low | (up << 4)));
  }
}

/** The signed extreme of a group; 0, with its levels zeroed, when it is all but zero. */
function groupExtreme(x: usize, n: i32, at: i32): f64 {
  const max = signedMax(x, n);
  if (amax >= GROUP_MAX_EPS) return max;
  memory.fill(LEVELS + <usize>at, 0, <usize>n);
  return 0;
}

/** scaleSearch.ts's symmetricScale; `weights` 0 for x². */
function symmetricScale(x: usize, n: i32, nmax: i32, at: i32, weights: usize): f64 {
  const max = groupExtreme(x, n, at);
  if (max === 0) return 0;
  const top = <f64>(nmax - 1);
  const bottom = <f64>-nmax;
  let best: f64 = -1;
  let scale: f64 = 0;
  for (let step = 0; step <= 18; step++) {
    const offset = step === 0 ? 0 : step <= 9 ? step - 10 : step - 9;
    const inverse = -(<f64>nmax + 0.1 * <f64>offset) / max;
    let sumLx: f64 = 0;
    let sumL2: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = value(x, i);
      const l = clampF(nearest<f64>(inverse * v), bottom, top);
      const w = weights ? value(weights, i) : v * v;
      sumLx += w * v * l;
      sumL2 += w * l * l;
    }
    const better = step === 0 || (sumL2 > 0 && sumLx * sumLx > best * sumL2);
    if (!better) continue;
    for (let i = 0; i < n; i++) {
      setLevel(at + i, nmax + nearestIn(inverse * value(x, i), bottom, top));
    }
    scale = truthy(sumL2) ? sumLx / sumL2 : 0;
    best = scale * sumLx;
  }
  return scale;
}

/** scaleSearch.ts's refinedSymmetricScale (Q3_K). */
function refinedSymmetricScale(x: usize, n: i32, nmax: i32, at: i32): f64 {
  const max = groupExtreme(x, n, at);
  if (max === 0) return 0;
  const top = <f64>(nmax - 1);
  const bottom = <f64>-nmax;
  const inverse = -(<f64>nmax) / max;
  let sumLx: f64 = 0;
  let sumL2: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = value(x, i);
    const l = clampF(nearest<f64>(inverse * v), bottom, top);
    store<i8>(SIGNED + <usize>i, <i8>l);
    const w = v * v;
    sumLx += w * v * l;
    sumL2 += w * l * l;
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = value(x, i);
      const w = v * v;
      const current = <f64>load<i8>(SIGNED + <usize>i);
      let lx = sumLx - w * v * current;
      if (lx <= 0) continue;
      let l2 = sumL2 - w * current * current;
      const next = clampF(nearest<f64>((v * l2) / lx), bottom, top);
      if (next === current) continue;
      lx += w * v * next;
      l2 += w * next * next;
      if (l2 > 0 && lx * lx * sumL2 > sumLx * sumLx * l2) {
        store<i8>(SIGNED + <usize>i, <i8>next);
        sumLx = lx;
        sumL2 = l2;
        changed++;
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) setLevel(at + i, <i32>load<i8>(SIGNED + <usize>i) + nmax);
  return sumLx / sumL2;
}

function minSearchError(
  x: usize,
  n: i32,
  weights: usize,
  scale: f64,
  offset: f64,
  candidate: usize,
  absolute: bool,
): f64 {
  let total: f64 = 0;
  for (let i = 0; i < n; i++) {
    const diff = scale * <f64>load<u8>(candidate + <usize>i) + offset - value(x, i);
    total += value(weights, i) * (absolute ? abs<f64>(diff) : diff * diff);
  }
  return total;
}

/** scaleSearch.ts's scaleWithMinimum: the scale returned, the minimum in MIN_FOUND. */
let minFound: f64 = 0;
function scaleWithMinimum(
  x: usize,
  n: i32,
  weights: usize,
  nmax: i32,
  rmin: f64,
  rdelta: f64,
  steps: i32,
  absolute: bool,
  at: i32,
): f64 {
  const top = <f64>nmax;
  let lowest = value(x, 0);
  let highest = value(x, 0);
  let sumW: f64 = 0;
  let sumX: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = value(x, i);
    if (v < lowest) lowest = v;
    if (v > highest) highest = v;
    sumW += value(weights, i);
    sumX += value(weights, i) * v;
  }
  if (lowest > 0) lowest = 0;
  if (highest === lowest) {
    memory.fill(LEVELS + <usize>at, 0, <usize>n);
    minFound = -lowest;
    return 0;
  }
  let inverse = top / (highest - lowest);
  let scale = 1 / inverse;
  for (let i = 0; i < n; i++) {
    setLevel(at + i, nearestIn(inverse * (value(x, i) - lowest), 0, top));
  }
  let bestError = minSearchError(x, n, weights, scale, lowest, LEVELS + <usize>at, absolute);
  for (let step = 0; step <= steps; step++) {
    inverse = (rmin + rdelta * <f64>step + top) / (highest - lowest);
    let sumL: f64 = 0;
    let sumL2: f64 = 0;
    let sumXl: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = value(x, i);
      const l = clampF(nearest<f64>(inverse * (v - lowest)), 0, top);
      store<u8>(CANDIDATE + <usize>i, <u8>l);
      const w = value(weights, i);
      sumL += w * l;
      sumL2 += w * l * l;
      sumXl += w * l * v;
    }
    const det = sumW * sumL2 - sumL * sumL;
    if (det <= 0) continue;
    let thisScale = (sumW * sumXl - sumX * sumL) / det;
    let thisMin = (sumL2 * sumX - sumL * sumXl) / det;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXl / sumL2;
    }
    const thisError = minSearchError(x, n, weights, thisScale, thisMin, CANDIDATE, absolute);
    if (thisError < bestError) {
      memory.copy(LEVELS + <usize>at, CANDIDATE, <usize>n);
      bestError = thisError;
      scale = thisScale;
      lowest = thisMin;
    }
  }
  minFound = -lowest;
  return scale;
}

/** Q4_K / Q5_K. */
function scaleMinQuantize(x: usize, out: usize, importance: usize, bits: i32): void {
  const nmax = (1 << bits) - 1;
  let maxScale: f64 = 0;
  let maxMin: f64 = 0;
  if (importance) importanceWeights(x, 256, importance, BLOCK_WEIGHTS);
  for (let j = 0; j < 8; j++) {
    const start = x + ((<usize>(32 * j)) << 2);
    if (importance) {
      memory.copy(GROUP_WEIGHTS, BLOCK_WEIGHTS + ((<usize>(32 * j)) << 2), 32 * 4);
    } else {
      let sumX2: f64 = 0;
      for (let l = 0; l < 32; l++) sumX2 += value(start, l) * value(start, l);
      const rms = sqrt<f64>(sumX2 / 32);
      for (let l = 0; l < 32; l++) {
        store<f32>(GROUP_WEIGHTS + ((<usize>l) << 2), <f32>(rms + abs<f64>(value(start, l))));
      }
    }
    const scale =
      bits === 4
        ? scaleWithMinimum(start, 32, GROUP_WEIGHTS, nmax, -1, 0.1, 20, false, 32 * j)
        : scaleWithMinimum(start, 32, GROUP_WEIGHTS, nmax, -0.5, 0.1, 15, false, 32 * j);
    setF64(SCALES, j, scale);
    setF64(MINS, j, minFound);
    if (scale > maxScale) maxScale = scale;
    if (minFound > maxMin) maxMin = minFound;
  }
  const inverseScale: f64 = maxScale > 0 ? 63 / maxScale : 0;
  const inverseMin: f64 = maxMin > 0 ? 63 / maxMin : 0;
  for (let j = 0; j < 8; j++) {
    setI32(STORED, j, <i32>min<f64>(63, nearest<f64>(inverseScale * f64At(SCALES, j))));
    setI32(STORED_MINS, j, <i32>min<f64>(63, nearest<f64>(inverseMin * f64At(MINS, j))));
  }
  // The 12 bytes of eight 6-bit scales and minimums.
  const packed = out + 4;
  memory.fill(packed, 0, 12);
  for (let j = 0; j < 8; j++) {
    const ls = i32At(STORED, j);
    const lm = i32At(STORED_MINS, j);
    if (j < 4) {
      store<u8>(packed + <usize>j, <u8>ls);
      store<u8>(packed + <usize>(j + 4), <u8>lm);
    } else {
      store<u8>(packed + <usize>(j + 4), <u8>((ls & 0x0f) | ((lm & 0x0f) << 4)));
      const a = packed + <usize>(j - 4);
      store<u8>(a, <u8>((<i32>load<u8>(a)) | ((ls >> 4) << 6)));
      const b = packed + <usize>j;
      store<u8>(b, <u8>((<i32>load<u8>(b)) | ((lm >> 4) << 6)));
    }
  }
  const d = putHalf(out, maxScale / 63);
  const dmin = putHalf(out + 2, maxMin / 63);
  const top = <f64>nmax;
  for (let j = 0; j < 8; j++) {
    const dl = d * <f64>i32At(STORED, j);
    if (!truthy(dl)) continue;
    const ml = dmin * <f64>i32At(STORED_MINS, j);
    for (let l = 0; l < 32; l++) {
      setLevel(32 * j + l, nearestIn((value(x, 32 * j + l) + ml) / dl, 0, top));
    }
  }
  if (bits === 4) {
    for (let chunk = 0; chunk < 4; chunk++) {
      for (let l = 0; l < 32; l++) {
        store<u8>(
          out + <usize>(16 + 32 * chunk + l),
          <u8>(level(64 * chunk + l) | (level(64 * chunk + 32 + l) << 4)),
        );
      }
    }
    return;
  }
  const qh = out + 16;
  memory.fill(qh, 0, 32);
  for (let chunk = 0; chunk < 4; chunk++) {
    for (let l = 0; l < 32; l++) {
      const low = level(64 * chunk + l);
      const up = level(64 * chunk + 32 + l);
      const h = qh + <usize>l;
      store<u8>(
        h,
        <u8>((<i32>load<u8>(h)) | ((low >> 4) << (2 * chunk)) | ((up >> 4) << (2 * chunk + 1))),
      );
      store<u8>(out + <usize>(48 + 32 * chunk + l), <u8>((low & 0x0f) | ((up & 0x0f) << 4)));
    }
  }
}

function q6_kQuantize(x: usize, out: usize, importance: usize): void {
  if (importance) importanceWeights(x, 256, importance, BLOCK_WEIGHTS);
  for (let group = 0; group < 16; group++) {
    const weights: usize = importance ? BLOCK_WEIGHTS + ((<usize>(16 * group)) << 2) : 0;
    const at = x + ((<usize>(16 * group)) << 2);
    setF64(SCALES, group, symmetricScale(at, 16, 32, 16 * group, weights));
  }
  const maxScale = signedMax64(SCALES, 16);
  memory.fill(out, 0, 210);
  if (amax < GROUP_MAX_EPS) return;
  const inverse = -128 / maxScale;
  const d = putHalf(out + 208, 1 / inverse);
  for (let group = 0; group < 16; group++) {
    const stored = <i32>min<f64>(127, nearest<f64>(inverse * f64At(SCALES, group)));
    store<u8>(out + 192 + <usize>group, <u8>(stored & 0xff));
    const dl = d * <f64>stored;
    if (!truthy(dl)) continue;
    for (let i = 0; i < 16; i++) {
      setLevel(16 * group + i, nearestIn(value(x, 16 * group + i) / dl, -32, 31) + 32);
    }
  }
  for (let h = 0; h < 2; h++) {
    const ql = out + <usize>(64 * h);
    const qh = out + <usize>(128 + 32 * h);
    const base = 128 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = level(base + l);
      const q2 = level(base + l + 32);
      const q3 = level(base + l + 64);
      const q4 = level(base + l + 96);
      store<u8>(ql + <usize>l, <u8>((q1 & 0x0f) | ((q3 & 0x0f) << 4)));
      store<u8>(ql + <usize>(l + 32), <u8>((q2 & 0x0f) | ((q4 & 0x0f) << 4)));
      store<u8>(
        qh + <usize>l,
        <u8>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)),
      );
    }
  }
}

/** Byte l of each 32-byte run holds levels l, l+32, l+64, l+96 of 128. */
function pack2Bit(out: usize): void {
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const base = 128 * h + l;
      store<u8>(
        out + <usize>(32 * h + l),
        <u8>(
          (level(base) |
            (level(base + 32) << 2) |
            (level(base + 64) << 4) |
            (level(base + 96) << 6))
        ),
      );
    }
  }
}

function q3_kQuantize(x: usize, out: usize): void {
  for (let group = 0; group < 16; group++) {
    setF64(
      SCALES,
      group,
      refinedSymmetricScale(x + ((<usize>(16 * group)) << 2), 16, 4, 16 * group),
    );
  }
  const maxScale = signedMax64(SCALES, 16);
  memory.fill(out, 0, 110);
  let d: f64 = 0;
  if (truthy(maxScale)) {
    const inverse = -32 / maxScale;
    for (let group = 0; group < 16; group++) {
      setI32(STORED, group, nearestIn(inverse * f64At(SCALES, group), -32, 31) + 32);
    }
    const packed = out + 96;
    for (let j = 0; j < 16; j++) {
      const l = i32At(STORED, j);
      if (j < 8) store<u8>(packed + <usize>j, <u8>(l & 0x0f));
      else {
        const a = packed + <usize>(j - 8);
        store<u8>(a, <u8>((<i32>load<u8>(a)) | ((l & 0x0f) << 4)));
      }
      const b = packed + <usize>(8 + (j % 4));
      store<u8>(b, <u8>((<i32>load<u8>(b)) | ((l >> 4) << (2 * (j / 4)))));
    }
    d = putHalf(out + 108, 1 / inverse);
  } else {
    for (let group = 0; group < 16; group++) setI32(STORED, group, 32);
  }
  for (let group = 0; group < 16; group++) {
    const dl = d * <f64>(i32At(STORED, group) - 32);
    if (!truthy(dl)) continue;
    for (let i = 0; i < 16; i++) {
      setLevel(16 * group + i, nearestIn(value(x, 16 * group + i) / dl, -4, 3) + 4);
    }
  }
  for (let j = 0; j < 256; j++) {
    if (level(j) > 3) {
      const a = out + <usize>(j % 32);
      store<u8>(a, <u8>((<i32>load<u8>(a)) | (1 << (j / 32))));
      setLevel(j, level(j) - 4);
    }
  }
  pack2Bit(out + 32);
}

function q2_kQuantize(x: usize, out: usize, importance: usize): void {
  let maxScale: f64 = 0;
  let maxMin: f64 = 0;
  if (importance) importanceWeights(x, 256, importance, BLOCK_WEIGHTS);
  for (let group = 0; group < 16; group++) {
    const start = x + ((<usize>(16 * group)) << 2);
    if (importance) {
      memory.copy(GROUP_WEIGHTS, BLOCK_WEIGHTS + ((<usize>(16 * group)) << 2), 16 * 4);
    } else {
      for (let l = 0; l < 16; l++) {
        store<f32>(GROUP_WEIGHTS + ((<usize>l) << 2), <f32>abs<f64>(value(start, l)));
      }
    }
    const scale = scaleWithMinimum(start, 16, GROUP_WEIGHTS, 3, -0.5, 0.1, 15, true, 16 * group);
    setF64(SCALES, group, scale);
    setF64(MINS, group, minFound);
    if (scale > maxScale) maxScale = scale;
    if (minFound > maxMin) maxMin = minFound;
  }
  memory.fill(out, 0, 84);
  for (let group = 0; group < 16; group++) {
    const ls = maxScale > 0 ? <i32>nearest<f64>((15 / maxScale) * f64At(SCALES, group)) : 0;
    const lm = maxMin > 0 ? <i32>nearest<f64>((15 / maxMin) * f64At(MINS, group)) : 0;
    setI32(STORED, group, ls);
    setI32(STORED_MINS, group, lm);
    store<u8>(out + <usize>group, <u8>(ls | (lm << 4)));
  }
  const d = putHalf(out + 80, maxScale > 0 ? maxScale / 15 : 0);
  const dmin = putHalf(out + 82, maxMin > 0 ? maxMin / 15 : 0);
  for (let group = 0; group < 16; group++) {
    const dl = d * <f64>i32At(STORED, group);
    if (!truthy(dl)) continue;
    const ml = dmin * <f64>i32At(STORED_MINS, group);
    for (let i = 0; i < 16; i++) {
      setLevel(16 * group + i, nearestIn((value(x, 16 * group + i) + ml) / dl, 0, 3));
    }
  }
  pack2Bit(out + 16);
}

/**
 * Quantize `blocks` blocks of ggml type `typeId` from the float32 weights at `src` into
 * `dst`. `importance`, where non-zero, points at one float32 per column of rows of
 * `rowLength` weights (a whole number of blocks); Q3_K, Q8_0, Q4_0 and Q5_0 ignore it, as
 * the reference does. False for a type not quantized here.
 */
export function quantize(
  typeId: i32,
  src: usize,
  blocks: i32,
  dst: usize,
  importance: usize,
  rowLength: i32,
): bool {
  const elements =
    typeId === 10 || typeId === 11 || typeId === 12 || typeId === 13 || typeId === 14 ? 256 : 32;
  let bytes = 0;
  switch (typeId) {
    case 2:
      bytes = 18;
      break;
    case 6:
      bytes = 22;
      break;
    case 8:
      bytes = 34;
      break;
    case 10:
      bytes = 84;
      break;
    case 11:
      bytes = 110;
      break;
    case 12:
      bytes = 144;
      break;
    case 13:
      bytes = 176;
      break;
    case 14:
      bytes = 210;
      break;
    case 20:
      bytes = 18;
      break;
    default:
      return false;
  }
  for (let block = 0; block < blocks; block++) {
    const from = block * elements;
    const x = src + ((<usize>from) << 2);
    const out = dst + <usize>(block * bytes);
    const weights: usize = importance ? importance + ((<usize>(from % rowLength)) << 2) : 0;
    switch (typeId) {
      case 2:
        offsetQuantize(x, out, 4);
        break;
      case 6:
        offsetQuantize(x, out, 5);
        break;
      case 8:
        q8_0Quantize(x, out);
        break;
      case 10:
        q2_kQuantize(x, out, weights);
        break;
      case 11:
        q3_kQuantize(x, out);
        break;
      case 12:
        scaleMinQuantize(x, out, weights, 4);
        break;
      case 13:
        scaleMinQuantize(x, out, weights, 5);
        break;
      case 14:
        q6_kQuantize(x, out, weights);
        break;
      case 20:
        iq4NlQuantize(x, out, weights);
        break;
    }
  }
  return true;
}

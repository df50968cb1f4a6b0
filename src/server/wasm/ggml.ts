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

/**
 * ggml block types → float32 values, block by block, following the block layouts and
 * dequantization formulas of the ggml/GGUF specification (ggml-common.h's block_* structs).
 * This TypeScript version is the reference the tests check; the workers use the same
 * formulas compiled to WebAssembly (src/server/wasm/ggml.ts, through ggmlKernel.ts) when
 * the module loads.
 */
import { ggmlType, type GgmlType } from '../formats/gguf/ggmlTypes';
import { decodeScalar } from './decode';

/** The 16 non-uniform levels of IQ4_NL and IQ4_XS. */
export const IQ4_LEVELS: readonly number[] = [
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/** The FP4 (E2M1) values of MXFP4, doubled so that they are integers (the scale is halved). */
export const MXFP4_LEVELS: readonly number[] = [
  0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
];

type BlockDecoder = (bytes: Uint8Array, at: number, out: Float32Array, to: number) => void;

function half(bytes: Uint8Array, at: number): number {
  return decodeScalar('float16', bytes[at]! | (bytes[at + 1]! << 8));
}

function int8(byte: number): number {
  return byte >= 128 ? byte - 256 : byte;
}

function uint32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
  );
}

/** Q4_0 and IQ4_NL: an f16 scale, then 16 bytes of nibbles (low nibbles: first 16 weights). */
function nibbleBlock(level: (nibble: number) => number): BlockDecoder {
  return (bytes, at, out, to) => {
    const d = half(bytes, at);
    for (let j = 0; j < 16; j++) {
      const byte = bytes[at + 2 + j]!;
      out[to + j] = d * level(byte & 0x0f);
      out[to + j + 16] = d * level(byte >> 4);
    }
  };
}

/** Q5_0 (offset 16, no minimum) and Q5_1 (minimum m): f16 d [, f16 m], u32 high bits, 16 bytes. */
function fiveBitBlock(withMin: boolean): BlockDecoder {
  return (bytes, at, out, to) => {
    const d = half(bytes, at);
    const m = withMin ? half(bytes, at + 2) : 0;
    const highAt = at + (withMin ? 4 : 2);
    const high = uint32(bytes, highAt);
    for (let j = 0; j < 16; j++) {
      const byte = bytes[highAt + 4 + j]!;
      const low = (byte & 0x0f) | (((high >>> j) & 1) << 4);
      const up = (byte >> 4) | (((high >>> (j + 16)) & 1) << 4);
      out[to + j] = withMin ? low * d + m : (low - 16) * d;
      out[to + j + 16] = withMin ? up * d + m : (up - 16) * d;
    }
  };
}

/** The 6-bit scale and minimum of sub-block `j` (0…7) of Q4_K/Q5_K's 12 packed bytes at `at`. */
function scaleMinK4(bytes: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  return [
    (bytes[at + j + 4]! & 0x0f) | ((bytes[at + j - 4]! >> 6) << 4),
    (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4),
  ];
}

const DECODERS: Readonly<Record<string, BlockDecoder>> = {
  Q4_0: nibbleBlock((nibble) => nibble - 8),
  IQ4_NL: nibbleBlock((nibble) => IQ4_LEVELS[nibble]!),
  Q4_1: (bytes, at, out, to) => {
    const d = half(bytes, at);
    const m = half(bytes, at + 2);
    for (let j = 0; j < 16; j++) {
      const byte = bytes[at + 4 + j]!;
      out[to + j] = (byte & 0x0f) * d + m;
      out[to + j + 16] = (byte >> 4) * d + m;
    }
  },
  Q5_0: fiveBitBlock(false),
  Q5_1: fiveBitBlock(true),
  Q8_0: (bytes, at, out, to) => {
    const d = half(bytes, at);
    for (let j = 0; j < 32; j++) out[to + j] = int8(bytes[at + 2 + j]!) * d;
  },
  MXFP4: (bytes, at, out, to) => {
    // E8M0 exponent, halved because the levels are doubled: 2^(e - 128).
    const d = 2 ** (bytes[at]! - 128);
    for (let j = 0; j < 16; j++) {
      const byte = bytes[at + 1 + j]!;
      out[to + j] = MXFP4_LEVELS[byte & 0x0f]! * d;
      out[to + j + 16] = MXFP4_LEVELS[byte >> 4]! * d;
    }
  },
  // block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin.
  Q2_K: (bytes, at, out, to) => {
    const d = half(bytes, at + 80);
    const dmin = half(bytes, at + 82);
    let scale = 0;
    let y = to;
    for (let half128 = 0; half128 < 2; half128++) {
      const q = at + 16 + half128 * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 2; part++) {
          const sc = bytes[at + scale++]!;
          const dl = d * (sc & 0x0f);
          const ml = dmin * (sc >> 4);
          for (let l = 0; l < 16; l++)
            out[y++] = dl * ((bytes[q + part * 16 + l]! >> shift) & 3) - ml;
        }
      }
    }
  },
  // block_q3_K: hmask[32], qs[64], scales[12] (16 six-bit scales), f16 d.
  Q3_K: (bytes, at, out, to) => {
    const d = half(bytes, at + 108);
    const packed = at + 96;
    const scales = new Array<number>(16);
    for (let i = 0; i < 16; i++) {
      const low = i < 8 ? bytes[packed + i]! & 0x0f : bytes[packed + i - 8]! >> 4;
      const high = (bytes[packed + 8 + (i % 4)]! >> (2 * Math.floor(i / 4))) & 3;
      scales[i] = (low | (high << 4)) - 32;
    }
    let scale = 0;
    let y = to;
    let mask = 1;
    for (let half128 = 0; half128 < 2; half128++) {
      const q = at + 32 + half128 * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 2; part++) {
          const dl = d * scales[scale++]!;
          for (let l = 0; l < 16; l++) {
            const index = part * 16 + l;
            const value = (bytes[q + index]! >> shift) & 3;
            const high = bytes[at + index]! & mask ? 0 : 4;
            out[y++] = dl * (value - high);
          }
        }
        mask <<= 1;
      }
    }
  },
  // block_q4_K: f16 d, f16 dmin, scales[12] (8 six-bit scale/min pairs), qs[128].
  Q4_K: (bytes, at, out, to) => {
    const d = half(bytes, at);
    const dmin = half(bytes, at + 2);
    let y = to;
    for (let chunk = 0; chunk < 4; chunk++) {
      const q = at + 16 + chunk * 32;
      const [sc1, m1] = scaleMinK4(bytes, at + 4, 2 * chunk);
      const [sc2, m2] = scaleMinK4(bytes, at + 4, 2 * chunk + 1);
      for (let l = 0; l < 32; l++) out[y++] = d * sc1 * (bytes[q + l]! & 0x0f) - dmin * m1;
      for (let l = 0; l < 32; l++) out[y++] = d * sc2 * (bytes[q + l]! >> 4) - dmin * m2;
    }
  },
  // block_q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128].
  Q5_K: (bytes, at, out, to) => {
    const d = half(bytes, at);
    const dmin = half(bytes, at + 2);
    const qh = at + 16;
    let y = to;
    for (let chunk = 0; chunk < 4; chunk++) {
      const q = at + 48 + chunk * 32;
      const [sc1, m1] = scaleMinK4(bytes, at + 4, 2 * chunk);
      const [sc2, m2] = scaleMinK4(bytes, at + 4, 2 * chunk + 1);
      const bit1 = 1 << (2 * chunk);
      const bit2 = bit1 << 1;
      for (let l = 0; l < 32; l++) {
        const value = (bytes[q + l]! & 0x0f) + (bytes[qh + l]! & bit1 ? 16 : 0);
        out[y++] = d * sc1 * value - dmin * m1;
      }
      for (let l = 0; l < 32; l++) {
        const value = (bytes[q + l]! >> 4) + (bytes[qh + l]! & bit2 ? 16 : 0);
        out[y++] = d * sc2 * value - dmin * m2;
      }
    }
  },
  // block_q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d.
  Q6_K: (bytes, at, out, to) => {
    const d = half(bytes, at + 208);
    for (let half128 = 0; half128 < 2; half128++) {
      const ql = at + half128 * 64;
      const qh = at + 128 + half128 * 32;
      const sc = at + 192 + half128 * 8;
      const y = to + half128 * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const high = bytes[qh + l]!;
        const q1 = ((bytes[ql + l]! & 0x0f) | ((high & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32]! & 0x0f) | (((high >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l]! >> 4) | (((high >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32]! >> 4) | (((high >> 6) & 3) << 4)) - 32;
        out[y + l] = d * int8(bytes[sc + is]!) * q1;
        out[y + l + 32] = d * int8(bytes[sc + is + 2]!) * q2;
        out[y + l + 64] = d * int8(bytes[sc + is + 4]!) * q3;
        out[y + l + 96] = d * int8(bytes[sc + is + 6]!) * q4;
      }
    }
  },
  // block_iq4_xs: f16 d, u16 scales_h, scales_l[4], qs[128]; eight 32-weight sub-blocks.
  IQ4_XS: (bytes, at, out, to) => {
    const d = half(bytes, at);
    const scalesHigh = bytes[at + 2]! | (bytes[at + 3]! << 8);
    for (let sub = 0; sub < 8; sub++) {
      const low = (bytes[at + 4 + (sub >> 1)]! >> (4 * (sub & 1))) & 0x0f;
      const dl = d * ((low | (((scalesHigh >> (2 * sub)) & 3) << 4)) - 32);
      const q = at + 8 + sub * 16;
      const y = to + sub * 32;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * IQ4_LEVELS[bytes[q + j]! & 0x0f]!;
        out[y + j + 16] = dl * IQ4_LEVELS[bytes[q + j]! >> 4]!;
      }
    }
  },
};

type ScaleReader = (bytes: Uint8Array, at: number) => number;

function halfAt(offset: number): ScaleReader {
  return (bytes, at) => half(bytes, at + offset);
}

/**
 * The scale d of one block of each decoded type, from the block starting at `at`: the f16
 * field of the block_* struct (K-quants: the super-block's d), or MXFP4's E8M0 exponent.
 */
const SCALE_READERS: Readonly<Record<string, ScaleReader>> = {
  Q4_0: halfAt(0),
  Q4_1: halfAt(0),
  Q5_0: halfAt(0),
  Q5_1: halfAt(0),
  Q8_0: halfAt(0),
  IQ4_NL: halfAt(0),
  MXFP4: (bytes, at) => 2 ** (bytes[at]! - 127),
  Q2_K: halfAt(80),
  Q3_K: halfAt(108),
  Q4_K: halfAt(0),
  Q5_K: halfAt(0),
  Q6_K: halfAt(208),
  IQ4_XS: halfAt(0),
};

/** How to read the scale of one block of `typeName`; an Error naming the type when it has none. */
export function blockScaleReader(typeName: string): ScaleReader {
  const reader = SCALE_READERS[ggmlType(typeName).name];
  if (!reader) throw new Error(`${typeName} blocks have no block scale LayerLens reads`);
  return reader;
}

/** Why the values of a ggml block type are not decoded; null when they are. */
export function notDecodedReason(type: GgmlType): string | null {
  if (type.plain || DECODERS[type.name]) return null;
  return `values not decoded: LayerLens does not dequantize ${type.name} blocks yet`;
}

/**
 * Dequantize the `blocks` whole blocks of `typeName` at the start of `bytes` into `out`
 * (blocks × blockElements values); an Error naming the type when it is not decoded.
 */
export function dequantizeReference(
  typeName: string,
  bytes: Uint8Array,
  blocks: number,
  out: Float32Array,
): Float32Array {
  const type = ggmlType(typeName);
  const decoder = DECODERS[type.name];
  if (!decoder) throw new Error(notDecodedReason(type) ?? `${type.name} is a plain type`);
  const elements = blocks * type.blockElements;
  if (bytes.byteLength < blocks * type.blockBytes || out.length < elements) {
    throw new RangeError(
      `${blocks} ${type.name} blocks need ${blocks * type.blockBytes} bytes and ${elements} outputs, got ${bytes.byteLength} and ${out.length}`,
    );
  }
  for (let block = 0; block < blocks; block++) {
    decoder(bytes, block * type.blockBytes, out, block * type.blockElements);
  }
  return out.subarray(0, elements);
}

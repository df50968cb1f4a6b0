import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dequantizeReference } from '../../../../../src/server/analysis/ggmlDequant';
import { ggmlKernel } from '../../../../../src/server/analysis/ggmlKernel';
import {
  GGML_QUANT_TYPES,
  quantizeGgml,
  roundTripGgml,
} from '../../../../../src/server/compress/ggml';
import { packScaleMinK4, packScalesQ3K } from '../../../../../src/server/compress/ggml/kquants';
import { relativeFrobeniusError } from '../../../../../src/server/compress/kernels';
import { ggmlType } from '../../../../../src/server/formats/gguf/ggmlTypes';

/** Bytes per block as published in ggml-common.h's block_* structs. */
const PUBLISHED_BYTES: Record<string, [number, number]> = {
  Q8_0: [32, 34],
  Q6_K: [256, 210],
  Q5_K: [256, 176],
  Q5_0: [32, 22],
  Q4_K: [256, 144],
  Q4_0: [32, 18],
  IQ4_NL: [32, 18],
  Q3_K: [256, 110],
  Q2_K: [256, 84],
};

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
}

function gaussian(count: number, seed: number, sigma = 1): Float32Array {
  const next = random(seed);
  return Float32Array.from({ length: count }, () => {
    const r = Math.sqrt(-2 * Math.log(next()));
    return sigma * r * Math.cos(2 * Math.PI * next());
  });
}

/** The 16-bit word at `at`. */
function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

/**
 * Relative Frobenius error on Gaussian weights each type must stay under: the bits per
 * weight imply roughly 2^-bits·√(12)-scaled errors; these are those with some room
 * (llama.cpp's reference quantizers land near 0.005, 0.018, 0.036, 0.043, 0.071, 0.086,
 * 0.076, 0.15 and 0.30).
 */
const GAUSSIAN_BOUNDS: Record<string, number> = {
  Q8_0: 0.006,
  Q6_K: 0.02,
  Q5_K: 0.04,
  Q5_0: 0.047,
  Q4_K: 0.08,
  Q4_0: 0.095,
  IQ4_NL: 0.085,
  Q3_K: 0.17,
  Q2_K: 0.33,
};

describe('ggml reference quantizers', () => {
  it('write the published block sizes, a whole number of blocks', () => {
    assert.deepEqual([...GGML_QUANT_TYPES].sort(), Object.keys(PUBLISHED_BYTES).sort());
    for (const name of GGML_QUANT_TYPES) {
      const [elements, bytes] = PUBLISHED_BYTES[name]!;
      const type = ggmlType(name);
      assert.equal(type.blockElements, elements, name);
      assert.equal(type.blockBytes, bytes, name);
      assert.equal(quantizeGgml(name, gaussian(3 * elements, 1)).byteLength, 3 * bytes, name);
      assert.throws(() => quantizeGgml(name, new Float32Array(elements + 1)), /whole number/);
    }
  });

  it('round-trip Gaussian weights within each type’s error bound, finer types closer', () => {
    const values = gaussian(256 * 64, 7, 0.02);
    const errors = new Map<string, number>();
    for (const name of GGML_QUANT_TYPES) {
      const error = relativeFrobeniusError(values, roundTripGgml(name, values));
      errors.set(name, error);
      assert.ok(error < GAUSSIAN_BOUNDS[name]!, `${name}: ${error}`);
      assert.ok(error > GAUSSIAN_BOUNDS[name]! / 4, `${name}: ${error} is suspiciously small`);
    }
    const ladder = ['Q8_0', 'Q6_K', 'Q5_K', 'Q4_K', 'Q3_K', 'Q2_K'].map((n) => errors.get(n)!);
    for (let i = 1; i < ladder.length; i++) assert.ok(ladder[i - 1]! < ladder[i]!, `${ladder}`);
    assert.ok(errors.get('Q5_K')! < errors.get('Q5_0')!);
    assert.ok(errors.get('Q4_K')! < errors.get('Q4_0')!);
    assert.ok(errors.get('IQ4_NL')! < errors.get('Q4_0')!);
  });

  it('keep every weight of a 32-block within its scale step (Q8_0: half a step)', () => {
    const values = gaussian(32 * 200, 11, 3);
    // A block with one outlier, and one whose extreme is positive.
    values[5] = 40;
    values[64 + 9] = -25;
    for (const [name, steps] of [
      ['Q8_0', 0.5],
      ['Q5_0', 1],
      ['Q4_0', 1],
    ] as const) {
      const bytes = quantizeGgml(name, values);
      const restored = roundTripGgml(name, values);
      const type = ggmlType(name);
      for (let block = 0; block < values.length / 32; block++) {
        const stored = dequantizeReference(
          name,
          bytes.subarray(block * type.blockBytes),
          1,
          new Float32Array(32),
        );
        // d as stored: the dequantized value of level 1 relative to level 0.
        const d = Math.abs(halfValue(word(bytes, block * type.blockBytes)));
        for (let j = 0; j < 32; j++) {
          const at = block * 32 + j;
          assert.equal(restored[at], stored[j]);
          // The f16 rounding of d moves a level by at most its level × 2^-11.
          const slack = d * (128 / 2048);
          assert.ok(
            Math.abs(values[at]! - restored[at]!) <= steps * d + slack,
            `${name} block ${block}`,
          );
        }
      }
    }
  });

  it('store all-zero and constant blocks exactly', () => {
    for (const name of GGML_QUANT_TYPES) {
      const n = ggmlType(name).blockElements;
      assert.ok(
        roundTripGgml(name, new Float32Array(n)).every((v) => v === 0),
        name,
      );
      const constant = new Float32Array(n).fill(-0.75);
      const restored = roundTripGgml(name, constant);
      // −0.75 is an f16 and the extreme of its own block: every type maps it to a level exactly.
      assert.ok(relativeFrobeniusError(constant, restored) < 2e-3, `${name}: ${restored[0]}`);
    }
  });

  it('are a fixed point on their own output (Q8_0, Q4_0, Q5_0)', () => {
    for (const name of ['Q8_0', 'Q4_0', 'Q5_0']) {
      const once = roundTripGgml(name, gaussian(32 * 50, 3));
      const bytes = quantizeGgml(name, once);
      assert.deepEqual(quantizeGgml(name, roundTripGgml(name, once)), bytes, name);
    }
  });

  it('agree with the WebAssembly dequantizer on the values they write', () => {
    const kernel = ggmlKernel();
    if (!kernel) return; // the wasm module is built by scripts/build-wasm.mjs
    const values = gaussian(256 * 8, 5);
    for (const name of GGML_QUANT_TYPES) {
      const type = ggmlType(name);
      const bytes = quantizeGgml(name, values);
      const blocks = values.length / type.blockElements;
      const wasm = kernel.dequantize(type, bytes, blocks, new Float32Array(values.length));
      assert.deepEqual(wasm, roundTripGgml(name, values), name);
    }
  });
});

function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

describe('hand-computed blocks from the specification', () => {
  it('Q8_0: d = max|x|/127 as f16, q = roundf(x/d), ties away from zero', () => {
    const x = new Float32Array(32);
    x[0] = 127;
    x[1] = 0.5;
    x[2] = -0.5;
    x[3] = 1.5;
    x[4] = 2.5;
    x[5] = -126.4;
    x[6] = 3.49;
    const bytes = quantizeGgml('Q8_0', x);
    assert.equal(word(bytes, 0), 0x3c00); // d = 1.0
    const q = Int8Array.from(bytes.subarray(2));
    assert.deepEqual([...q.subarray(0, 8)], [127, 1, -1, 2, 3, -126, 3, 0]);
  });

  it('Q4_0: d = extreme/−8, q = min(15, trunc(x/d + 8.5)), low nibbles the first 16', () => {
    const x = new Float32Array(32);
    for (let j = 0; j < 16; j++) {
      x[j] = j - 8; // levels 0…15
      x[16 + j] = 7 - j; // levels 15…0
    }
    const bytes = quantizeGgml('Q4_0', x);
    assert.equal(word(bytes, 0), 0x3c00); // d = −8/−8 = 1
    for (let j = 0; j < 16; j++) assert.equal(bytes[2 + j], j | ((15 - j) << 4), `byte ${j}`);
    // A positive extreme: d = 8/−8 = −1 (0xbc00); 8 → level 0, −7.9 → trunc(16.4) capped at 15.
    const y = new Float32Array(32);
    y[0] = 8;
    y[1] = -7.9;
    y[17] = 0.6; // −0.6 + 8.5 → 7
    const other = quantizeGgml('Q4_0', y);
    assert.equal(word(other, 0), 0xbc00);
    assert.equal(other[2], 0 | (8 << 4)); // x0 = 8 → 0; x16 = 0 → 8
    assert.equal(other[3], 15 | (7 << 4));
  });

  it('Q5_0: the fifth bits go to qh, bit j for weight j', () => {
    const x = new Float32Array(32);
    x[0] = -16; // d = 1, level 0
    x[1] = 15; // level 31: high bit set
    x[17] = 0; // level 16: high bit set
    x[18] = -1; // level 15
    const bytes = quantizeGgml('Q5_0', x);
    assert.equal(word(bytes, 0), 0x3c00);
    const qh = new DataView(bytes.buffer).getUint32(2, true);
    // Weights 2…15 and 16, 17, 19…31 are 0 → level 16 too.
    let expected = 0;
    for (let j = 0; j < 32; j++) if (![0, 18].includes(j)) expected |= 1 << j;
    assert.equal(qh >>> 0, expected >>> 0);
    assert.equal(bytes[6], 0x00); // weight 0: level 0; weight 16: level 16 → low nibble 0
    assert.equal(bytes[7], 0x0f); // weight 1: 31 → 15; weight 17: 16 → 0
    assert.equal(bytes[8], 0xf0); // weight 2: 16 → 0; weight 18: 15
  });

  it('Q6_K: an exactly representable block — d = −1/128, scales −128, levels by the published layout', () => {
    const x = new Float32Array(256);
    for (let i = 0; i < 256; i++) x[i] = i % 16 === 0 ? -32 : ((i * 5) % 63) - 31;
    const bytes = quantizeGgml('Q6_K', x);
    assert.equal(word(bytes, 208), 0xa000); // −2^-7
    for (let g = 0; g < 16; g++) assert.equal(bytes[192 + g], 0x80, `scale ${g}`);
    // The layout written element by element: ql takes the low nibble, qh the top two bits.
    const ql = new Uint8Array(128);
    const qh = new Uint8Array(64);
    for (let i = 0; i < 256; i++) {
      const q = x[i]! + 32;
      const half = Math.floor(i / 128);
      const k = Math.floor((i % 128) / 32);
      const l = i % 32;
      ql[64 * half + l + (k === 1 || k === 3 ? 32 : 0)]! |= (q & 15) << (k >= 2 ? 4 : 0);
      qh[32 * half + l]! |= (q >> 4) << (2 * k);
    }
    assert.deepEqual(bytes.subarray(0, 128), ql);
    assert.deepEqual(bytes.subarray(128, 192), qh);
    assert.deepEqual(roundTripGgml('Q6_K', x), x);
  });

  it('Q4_K/Q5_K scale packing: eight 6-bit scales and minimums in 12 bytes', () => {
    const out = new Uint8Array(12);
    packScaleMinK4([63, 1, 2, 3, 40, 50, 60, 33], [0, 10, 20, 30, 17, 63, 5, 48], out, 0);
    assert.deepEqual([...out], [191, 193, 194, 131, 64, 202, 20, 222, 24, 242, 92, 1]);
  });

  it('Q3_K scale packing: sixteen 6-bit scales, low nibbles then 2-bit high parts', () => {
    const out = new Uint8Array(12);
    packScalesQ3K([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 63], out, 0);
    assert.deepEqual([...out], [128, 145, 162, 179, 196, 213, 230, 247, 0, 0, 0, 192]);
  });

  it('Q4_K: a block on its own grid comes back exactly (d, dmin and 6-bit scales as fitted)', () => {
    // Every group of 32: levels 0…15 of step 1/16 from −0.5 (min 0.5, scale 1/16).
    const x = new Float32Array(256);
    for (let i = 0; i < 256; i++) x[i] = (i % 16) / 16 - 0.5;
    const bytes = quantizeGgml('Q4_K', x);
    // d = max scale/63, dmin = max min/63 as f16; every group stores scale 63 and min 63.
    assert.ok(Math.abs(halfValue(word(bytes, 0)) * 63 * 16 - 1) < 2 ** -10);
    assert.ok(Math.abs(halfValue(word(bytes, 2)) * 63 * 2 - 1) < 2 ** -10);
    const restored = roundTripGgml('Q4_K', x);
    assert.ok(relativeFrobeniusError(x, restored) < 2e-3, `${relativeFrobeniusError(x, restored)}`);
    assert.deepEqual([...bytes.subarray(4, 16)], new Array(12).fill(255));
  });
});

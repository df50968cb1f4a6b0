/**
 * ggml's reference quantizers for the K-quants, super-blocks of 256 weights: Q6_K, Q5_K,
 * Q4_K, Q3_K and Q2_K. Each fits a scale (and, for Q2/4/5_K, a minimum) per group, stores
 * those group scales as small integers relative to the super-block's f16 d (and dmin),
 * then re-quantizes every weight against the stored, rounded scales. Byte layouts as the
 * block_q*_K structs (see analysis/ggmlDequant.ts, which reads them back). Given an
 * importance matrix, Q6_K, Q5_K, Q4_K and Q2_K weight their group fits by llama.cpp's
 * importance · √(σ² + x²) in place of their own weights (Q3_K ignores it).
 */
import {
  GROUP_MAX_EPS,
  clamp,
  importanceWeights,
  nearestInt,
  putHalf,
  signedMax,
} from './rounding';
import {
  refinedSymmetricScale,
  scaleWithMinimum,
  symmetricScale,
  type MinSearch,
} from './scaleSearch';
import type { BlockQuantizer } from './types';

const QK_K = 256;

/** Per-thread scratch: the levels of one super-block, and one group's weights. */
const levels = new Uint8Array(QK_K);
const groupWeights = new Float32Array(32);
/** A super-block's weights under an importance matrix. */
const blockWeights = new Float32Array(QK_K);

/** Q4_K/Q5_K's 12 bytes: eight 6-bit scales and eight 6-bit minimums. */
export function packScaleMinK4(
  scales: readonly number[],
  mins: readonly number[],
  out: Uint8Array,
  at: number,
): void {
  out.fill(0, at, at + 12);
  for (let j = 0; j < 8; j++) {
    const ls = scales[j]!;
    const lm = mins[j]!;
    if (j < 4) {
      out[at + j] = ls;
      out[at + j + 4] = lm;
    } else {
      out[at + j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
      out[at + j - 4]! |= (ls >> 4) << 6;
      out[at + j]! |= (lm >> 4) << 6;
    }
  }
}

/** Q3_K's 12 bytes: sixteen 6-bit scales (stored + 32): low nibbles, then 2-bit high parts. */
export function packScalesQ3K(scales: readonly number[], out: Uint8Array, at: number): void {
  out.fill(0, at, at + 12);
  for (let j = 0; j < 16; j++) {
    const l = scales[j]!;
    if (j < 8) out[at + j] = l & 0x0f;
    else out[at + j - 8]! |= (l & 0x0f) << 4;
    out[at + 8 + (j % 4)]! |= (l >> 4) << (2 * Math.floor(j / 4));
  }
}

/** Q4_K and Q5_K: eight groups of 32, scale and minimum each, weights |x| + rms(x). */
function scaleMinQuantizer(bits: 4 | 5): BlockQuantizer {
  const nmax = (1 << bits) - 1;
  const search: MinSearch =
    bits === 4
      ? { nmax, rmin: -1, rdelta: 0.1, steps: 20, absolute: false }
      : { nmax, rmin: -0.5, rdelta: 0.1, steps: 15, absolute: false };
  return (x, from, out, at, importance) => {
    const scales: number[] = [];
    const mins: number[] = [];
    let maxScale = 0;
    let maxMin = 0;
    if (importance) importanceWeights(x, from, 256, importance, blockWeights);
    for (let j = 0; j < 8; j++) {
      const start = from + 32 * j;
      if (importance) {
        groupWeights.set(blockWeights.subarray(32 * j, 32 * j + 32));
      } else {
        let sumX2 = 0;
        for (let l = 0; l < 32; l++) sumX2 += x[start + l]! * x[start + l]!;
        const rms = Math.sqrt(sumX2 / 32);
        for (let l = 0; l < 32; l++) groupWeights[l] = rms + Math.abs(x[start + l]!);
      }
      const [scale, min] = scaleWithMinimum(x, start, 32, groupWeights, search, levels, 32 * j);
      scales.push(scale);
      mins.push(min);
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    const inverseScale = maxScale > 0 ? 63 / maxScale : 0;
    const inverseMin = maxMin > 0 ? 63 / maxMin : 0;
    const ls = scales.map((scale) => Math.min(63, nearestInt(inverseScale * scale)));
    const lm = mins.map((min) => Math.min(63, nearestInt(inverseMin * min)));
    packScaleMinK4(ls, lm, out, at + 4);
    const d = putHalf(out, at, maxScale / 63);
    const dmin = putHalf(out, at + 2, maxMin / 63);
    for (let j = 0; j < 8; j++) {
      const dl = d * ls[j]!;
      if (!dl) continue;
      const ml = dmin * lm[j]!;
      for (let l = 0; l < 32; l++) {
        levels[32 * j + l] = clamp(nearestInt((x[from + 32 * j + l]! + ml) / dl), 0, nmax);
      }
    }
    if (bits === 4) {
      for (let chunk = 0; chunk < 4; chunk++) {
        for (let l = 0; l < 32; l++) {
          out[at + 16 + 32 * chunk + l] =
            levels[64 * chunk + l]! | (levels[64 * chunk + 32 + l]! << 4);
        }
      }
      return;
    }
    const qh = at + 16;
    out.fill(0, qh, qh + 32);
    for (let chunk = 0; chunk < 4; chunk++) {
      for (let l = 0; l < 32; l++) {
        const low = levels[64 * chunk + l]!;
        const up = levels[64 * chunk + 32 + l]!;
        out[qh + l]! |= ((low >> 4) << (2 * chunk)) | ((up >> 4) << (2 * chunk + 1));
        out[at + 48 + 32 * chunk + l] = (low & 0x0f) | ((up & 0x0f) << 4);
      }
    }
  };
}

export const quantizeQ4_K = scaleMinQuantizer(4);
export const quantizeQ5_K = scaleMinQuantizer(5);

/** The scales of the sixteen groups of 16 of a super-block, their levels into `levels`. */
function symmetricGroups(
  x: Float32Array,
  from: number,
  nmax: number,
  fit: typeof symmetricScale,
  weights?: Float32Array,
): number[] {
  const scales: number[] = [];
  for (let group = 0; group < 16; group++) {
    const groupWeights = weights?.subarray(16 * group, 16 * group + 16);
    scales.push(fit(x, from + 16 * group, 16, nmax, levels, 16 * group, groupWeights));
  }
  return scales;
}

/** Q6_K: sixteen groups of 16, symmetric 6-bit levels, int8 group scales against f16 d. */
export const quantizeQ6_K: BlockQuantizer = (x, from, out, at, importance) => {
  const weights = importance && importanceWeights(x, from, 256, importance, blockWeights);
  const scales = symmetricGroups(x, from, 32, symmetricScale, weights);
  const [maxScale, maxAbsScale] = signedMax(scales, 0, 16);
  out.fill(0, at, at + 210);
  if (maxAbsScale < GROUP_MAX_EPS) return;
  const inverse = -128 / maxScale;
  const d = putHalf(out, at + 208, 1 / inverse);
  for (let group = 0; group < 16; group++) {
    const stored = Math.min(127, nearestInt(inverse * scales[group]!));
    out[at + 192 + group] = stored & 0xff;
    const dl = d * stored;
    if (!dl) continue;
    for (let i = 0; i < 16; i++) {
      const l = clamp(nearestInt(x[from + 16 * group + i]! / dl), -32, 31);
      levels[16 * group + i] = l + 32;
    }
  }
  for (let half = 0; half < 2; half++) {
    const ql = at + 64 * half;
    const qh = at + 128 + 32 * half;
    const base = 128 * half;
    for (let l = 0; l < 32; l++) {
      const q1 = levels[base + l]!;
      const q2 = levels[base + l + 32]!;
      const q3 = levels[base + l + 64]!;
      const q4 = levels[base + l + 96]!;
      out[ql + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
      out[ql + l + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
      out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
};

/** Packs 2-bit levels: byte l of each 32-byte run holds levels l, l+32, l+64, l+96 of 128. */
function pack2Bit(out: Uint8Array, at: number): void {
  for (let half = 0; half < 2; half++) {
    for (let l = 0; l < 32; l++) {
      const base = 128 * half + l;
      out[at + 32 * half + l] =
        levels[base]! |
        (levels[base + 32]! << 2) |
        (levels[base + 64]! << 4) |
        (levels[base + 96]! << 6);
    }
  }
}

/** Q3_K: sixteen groups of 16, levels −4…3 (two bits in qs, the third in hmask). */
export const quantizeQ3_K: BlockQuantizer = (x, from, out, at) => {
  const scales = symmetricGroups(x, from, 4, refinedSymmetricScale);
  const [maxScale] = signedMax(scales, 0, 16);
  out.fill(0, at, at + 110);
  let d = 0;
  const stored = new Array<number>(16).fill(0);
  if (maxScale) {
    const inverse = -32 / maxScale;
    for (let group = 0; group < 16; group++) {
      stored[group] = clamp(nearestInt(inverse * scales[group]!), -32, 31) + 32;
    }
    packScalesQ3K(stored, out, at + 96);
    d = putHalf(out, at + 108, 1 / inverse);
  } else {
    stored.fill(32);
  }
  for (let group = 0; group < 16; group++) {
    const dl = d * (stored[group]! - 32);
    if (!dl) continue;
    for (let i = 0; i < 16; i++) {
      const l = clamp(nearestInt(x[from + 16 * group + i]! / dl), -4, 3);
      levels[16 * group + i] = l + 4;
    }
  }
  for (let j = 0; j < QK_K; j++) {
    if (levels[j]! > 3) {
      out[at + (j % 32)]! |= 1 << Math.floor(j / 32);
      levels[j] = levels[j]! - 4;
    }
  }
  pack2Bit(out, at + 32);
};

const Q2_SEARCH: MinSearch = { nmax: 3, rmin: -0.5, rdelta: 0.1, steps: 15, absolute: true };

/** Q2_K: sixteen groups of 16, levels 0…3, 4-bit scale and minimum per group. */
export const quantizeQ2_K: BlockQuantizer = (x, from, out, at, importance) => {
  const scales: number[] = [];
  const mins: number[] = [];
  let maxScale = 0;
  let maxMin = 0;
  if (importance) importanceWeights(x, from, 256, importance, blockWeights);
  for (let group = 0; group < 16; group++) {
    const start = from + 16 * group;
    if (importance) groupWeights.set(blockWeights.subarray(16 * group, 16 * group + 16));
    else for (let l = 0; l < 16; l++) groupWeights[l] = Math.abs(x[start + l]!);
    const [scale, min] = scaleWithMinimum(
      x,
      start,
      16,
      groupWeights,
      Q2_SEARCH,
      levels,
      16 * group,
    );
    scales.push(scale);
    mins.push(min);
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  out.fill(0, at, at + 84);
  const ls = scales.map((scale) => (maxScale > 0 ? nearestInt((15 / maxScale) * scale) : 0));
  const lm = mins.map((min) => (maxMin > 0 ? nearestInt((15 / maxMin) * min) : 0));
  for (let group = 0; group < 16; group++) out[at + group] = ls[group]! | (lm[group]! << 4);
  const d = putHalf(out, at + 80, maxScale > 0 ? maxScale / 15 : 0);
  const dmin = putHalf(out, at + 82, maxMin > 0 ? maxMin / 15 : 0);
  for (let group = 0; group < 16; group++) {
    const dl = d * ls[group]!;
    if (!dl) continue;
    const ml = dmin * lm[group]!;
    for (let i = 0; i < 16; i++) {
      levels[16 * group + i] = clamp(nearestInt((x[from + 16 * group + i]! + ml) / dl), 0, 3);
    }
  }
  pack2Bit(out, at + 16);
};

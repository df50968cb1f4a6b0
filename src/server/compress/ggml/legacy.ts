/**
 * ggml's reference quantizers for the 32-weight block types: Q8_0, Q4_0, Q5_0 and IQ4_NL.
 * Each writes one block_* struct (layouts as in formats/gguf/ggmlTypes.ts and the
 * dequantizers of analysis/ggmlDequant.ts) from 32 float32 weights.
 */
import { IQ4_LEVELS } from '../../analysis/ggmlDequant';
import {
  GROUP_MAX_EPS,
  importanceWeights,
  nearestLevel,
  putHalf,
  roundAway,
  signedMax,
} from './rounding';
import type { BlockQuantizer } from './types';

const QK = 32;

/** Q8_0: d = max|x|/127, q = round(x/d) in int8. */
export const quantizeQ8_0: BlockQuantizer = (x, from, out, at) => {
  const [, amax] = signedMax(x, from, QK);
  const d = amax / 127;
  const inverse = d ? 1 / d : 0;
  putHalf(out, at, d);
  for (let j = 0; j < QK; j++) out[at + 2 + j] = roundAway(x[from + j]! * inverse) & 0xff;
};

/**
 * Q4_0 and Q5_0: the signed extreme maps to the most negative level (−8 or −16), so
 * d = max / −levels; q = trunc(x/d + levels + ½), capped at the top level.
 */
function offsetQuantizer(bits: 4 | 5): BlockQuantizer {
  const half = 1 << (bits - 1);
  const top = (1 << bits) - 1;
  return (x, from, out, at) => {
    const [max] = signedMax(x, from, QK);
    const d = max / -half;
    const inverse = d ? 1 / d : 0;
    putHalf(out, at, d);
    const qs = at + (bits === 5 ? 6 : 2);
    let high = 0;
    for (let j = 0; j < QK / 2; j++) {
      const low = Math.min(top, Math.trunc(x[from + j]! * inverse + half + 0.5));
      const up = Math.min(top, Math.trunc(x[from + j + QK / 2]! * inverse + half + 0.5));
      out[qs + j] = (low & 0x0f) | ((up & 0x0f) << 4);
      high |= ((low >> 4) << j) | ((up >> 4) << (j + QK / 2));
    }
    if (bits === 5) new DataView(out.buffer, out.byteOffset).setUint32(at + 2, high >>> 0, true);
  };
}

export const quantizeQ4_0 = offsetQuantizer(4);
export const quantizeQ5_0 = offsetQuantizer(5);

/** Candidate scales tried on each side of the extreme's (IQ4_NL's ntry). */
const IQ4_TRIES = 7;

/**
 * IQ4_NL: weights x² (with an importance matrix, importance · √(σ² + x²)), the scale that maps the extreme to the first level, then 2·7 nearby
 * scales; the one with the best weighted least-squares fit is kept, and every weight takes
 * the level nearest to x/d.
 */
/** IQ4_NL's weights under an importance matrix. */
const iq4Weights = new Float32Array(QK);

export const quantizeIq4Nl: BlockQuantizer = (x, from, out, at, importance) => {
  const [max, amax] = signedMax(x, from, QK);
  const weights = importance && importanceWeights(x, from, QK, importance, iq4Weights);
  out.fill(0, at, at + 18);
  let d = 0;
  if (amax >= GROUP_MAX_EPS) {
    const first = IQ4_LEVELS[0]!;
    const fit = (inverse: number): [number, number] => {
      let sumQx = 0;
      let sumQ2 = 0;
      for (let j = 0; j < QK; j++) {
        const value = x[from + j]!;
        const q = IQ4_LEVELS[nearestLevel(IQ4_LEVELS, inverse * value)]!;
        const w = weights ? weights[j]! : value * value;
        sumQx += w * q * value;
        sumQ2 += w * q * q;
      }
      return [sumQx, sumQ2];
    };
    const [sumQx, sumQ2] = fit(1 / (-max / first));
    d = sumQx / sumQ2;
    let best = d * sumQx;
    for (let step = -IQ4_TRIES; step <= IQ4_TRIES; step++) {
      const [qx, q2] = fit((step + first) / max);
      if (q2 > 0 && qx * qx > best * q2) {
        d = qx / q2;
        best = d * qx;
      }
    }
  }
  putHalf(out, at, d);
  const inverse = d ? 1 / d : 0;
  for (let j = 0; j < QK / 2; j++) {
    const low = nearestLevel(IQ4_LEVELS, inverse * x[from + j]!);
    const up = nearestLevel(IQ4_LEVELS, inverse * x[from + j + QK / 2]!);
    out[at + 2 + j] = low | (up << 4);
  }
};

/**
 * The scale searches of ggml's K-quant reference quantizers, for one group of weights:
 * symmetric levels fitted by weighted least squares over a sweep of candidate scales
 * (Q6_K), the same refined one weight at a time (Q3_K), and asymmetric levels with a
 * minimum (Q2_K, Q4_K, Q5_K). Each writes the chosen levels into `levels[at…]` and returns
 * the group's scale.
 */
import { GROUP_MAX_EPS, clamp, nearestInt, signedMax } from './rounding';

/** The signed extreme of a group; 0, with the levels zeroed, when the group is all but zero. */
function groupExtreme(x: Float32Array, from: number, n: number, levels: Uint8Array, at: number) {
  const [max, amax] = signedMax(x, from, n);
  if (amax >= GROUP_MAX_EPS) return max;
  levels.fill(0, at, at + n);
  return 0;
}

/**
 * Symmetric levels −nmax…nmax−1 (stored + nmax), weights x² (or `weights[0…n)` where
 * given, an importance matrix's): the scale that maps the signed extreme to −nmax, then
 * ±0.1…0.9 levels around it; the best weighted fit is kept.
 */
export function symmetricScale(
  x: Float32Array,
  from: number,
  n: number,
  nmax: number,
  levels: Uint8Array,
  at: number,
  weights?: Float32Array,
): number {
  const max = groupExtreme(x, from, n, levels, at);
  if (max === 0) return 0;
  let best = -1;
  let scale = 0;
  for (let step = 0; step <= 18; step++) {
    // step 0 is the plain extreme; 1…18 are the offsets −9…9 without 0.
    const offset = step === 0 ? 0 : step <= 9 ? step - 10 : step - 9;
    const inverse = -(nmax + 0.1 * offset) / max;
    let sumLx = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const value = x[from + i]!;
      const l = clamp(nearestInt(inverse * value), -nmax, nmax - 1);
      const w = weights ? weights[i]! : value * value;
      sumLx += w * value * l;
      sumL2 += w * l * l;
    }
    const better = step === 0 || (sumL2 > 0 && sumLx * sumLx > best * sumL2);
    if (!better) continue;
    for (let i = 0; i < n; i++) {
      levels[at + i] = nmax + clamp(nearestInt(inverse * x[from + i]!), -nmax, nmax - 1);
    }
    scale = sumL2 ? sumLx / sumL2 : 0;
    best = scale * sumLx;
  }
  return scale;
}

/**
 * Q3_K's groups: symmetric levels from the extreme, then up to five passes that move one
 * weight at a time to the level the others' fit suggests, kept when the fit improves.
 */
export function refinedSymmetricScale(
  x: Float32Array,
  from: number,
  n: number,
  nmax: number,
  levels: Uint8Array,
  at: number,
): number {
  const max = groupExtreme(x, from, n, levels, at);
  if (max === 0) return 0;
  const inverse = -nmax / max;
  const signed = new Int8Array(n);
  let sumLx = 0;
  let sumL2 = 0;
  for (let i = 0; i < n; i++) {
    const value = x[from + i]!;
    const l = clamp(nearestInt(inverse * value), -nmax, nmax - 1);
    signed[i] = l;
    const w = value * value;
    sumLx += w * value * l;
    sumL2 += w * l * l;
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const value = x[from + i]!;
      const w = value * value;
      const current = signed[i]!;
      let lx = sumLx - w * value * current;
      if (lx <= 0) continue;
      let l2 = sumL2 - w * current * current;
      const next = clamp(nearestInt((value * l2) / lx), -nmax, nmax - 1);
      if (next === current) continue;
      lx += w * value * next;
      l2 += w * next * next;
      if (l2 > 0 && lx * lx * sumL2 > sumLx * sumLx * l2) {
        signed[i] = next;
        sumLx = lx;
        sumL2 = l2;
        changed++;
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) levels[at + i] = signed[i]! + nmax;
  return sumLx / sumL2;
}

/** Scratch for the levels of one candidate scale (groups are at most 32 weights). */
const candidateLevels = new Uint8Array(32);

export interface MinSearch {
  /** Levels are 0…nmax. */
  readonly nmax: number;
  /** The candidate inverse scales are (nmax + rmin + rdelta·k)/(max − min), k = 0…steps. */
  readonly rmin: number;
  readonly rdelta: number;
  readonly steps: number;
  /** Score by weighted absolute (true) or squared (false) error. */
  readonly absolute: boolean;
}

/**
 * Asymmetric levels 0…nmax with value = scale·l − minimum (minimum ≥ 0): the range
 * [min(x, 0), max(x)] first, then each candidate scale's weighted least-squares scale and
 * minimum (the minimum held at 0 when the fit wants it above), the lowest weighted error
 * kept. Returns [scale, minimum].
 */
export function scaleWithMinimum(
  x: Float32Array,
  from: number,
  n: number,
  weights: Float32Array,
  search: MinSearch,
  levels: Uint8Array,
  at: number,
): [number, number] {
  const { nmax } = search;
  let min = x[from]!;
  let max = x[from]!;
  let sumW = 0;
  let sumX = 0;
  for (let i = 0; i < n; i++) {
    const value = x[from + i]!;
    if (value < min) min = value;
    if (value > max) max = value;
    sumW += weights[i]!;
    sumX += weights[i]! * value;
  }
  if (min > 0) min = 0;
  if (max === min) {
    levels.fill(0, at, at + n);
    return [0, -min];
  }
  const error = (scale: number, offset: number, candidate: ArrayLike<number>, base: number) => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      const diff = scale * candidate[base + i]! + offset - x[from + i]!;
      total += weights[i]! * (search.absolute ? Math.abs(diff) : diff * diff);
    }
    return total;
  };
  let inverse = nmax / (max - min);
  let scale = 1 / inverse;
  for (let i = 0; i < n; i++) {
    levels[at + i] = clamp(nearestInt(inverse * (x[from + i]! - min)), 0, nmax);
  }
  let bestError = error(scale, min, levels, at);
  const candidate = candidateLevels;
  for (let step = 0; step <= search.steps; step++) {
    inverse = (search.rmin + search.rdelta * step + nmax) / (max - min);
    let sumL = 0;
    let sumL2 = 0;
    let sumXl = 0;
    for (let i = 0; i < n; i++) {
      const value = x[from + i]!;
      const l = clamp(nearestInt(inverse * (value - min)), 0, nmax);
      candidate[i] = l;
      const w = weights[i]!;
      sumL += w * l;
      sumL2 += w * l * l;
      sumXl += w * l * value;
    }
    const det = sumW * sumL2 - sumL * sumL;
    if (det <= 0) continue;
    let thisScale = (sumW * sumXl - sumX * sumL) / det;
    let thisMin = (sumL2 * sumX - sumL * sumXl) / det;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXl / sumL2;
    }
    const thisError = error(thisScale, thisMin, candidate, 0);
    if (thisError < bestError) {
      levels.set(candidate.subarray(0, n), at);
      bestError = thisError;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [scale, -min];
}

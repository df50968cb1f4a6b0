/**
 * The small numeric steps every ggml reference quantizer shares: ggml's nearest-integer
 * rounding (ties to even, as its float trick gives), C's roundf, the f16 scale fields
 * (stored, then read back the way the dequantizer reads them), and the nearest level of a
 * sorted non-uniform table (IQ4_NL).
 */
import { decodeScalar } from '../../analysis/decode';
import { float16Bits } from '../kernels';

/** Groups whose largest magnitude is below this are stored as zeros (ggml's GROUP_MAX_EPS). */
export const GROUP_MAX_EPS = 1e-15;

/** The nearest integer, ties to even. */
export function nearestInt(value: number): number {
  const rounded = Math.round(value);
  return rounded - value === 0.5 && (rounded & 1) !== 0 ? rounded - 1 : rounded;
}

/** C's roundf: the nearest integer, ties away from zero. */
export function roundAway(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}

export function clamp(value: number, low: number, high: number): number {
  return value < low ? low : value > high ? high : value;
}

/** Write `value` as an f16 at `at` (little-endian); the value the file then holds. */
export function putHalf(out: Uint8Array, at: number, value: number): number {
  const bits = float16Bits(value);
  out[at] = bits & 0xff;
  out[at + 1] = bits >> 8;
  return decodeScalar('float16', bits);
}

/** Index of the level of the ascending `levels` nearest to `value` (ties: the lower one). */
export function nearestLevel(levels: readonly number[], value: number): number {
  const last = levels.length - 1;
  if (value <= levels[0]!) return 0;
  if (value >= levels[last]!) return last;
  let low = 0;
  let high = last;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (value < levels[middle]!) high = middle;
    else low = middle;
  }
  return value - levels[high - 1]! < levels[high]! - value ? high - 1 : high;
}

/** The element of largest magnitude among `n` values from `from` (the first on ties), and its magnitude. */
export function signedMax(x: ArrayLike<number>, from: number, n: number): [number, number] {
  let amax = 0;
  let max = 0;
  for (let i = from; i < from + n; i++) {
    const magnitude = Math.abs(x[i]!);
    if (magnitude > amax) {
      amax = magnitude;
      max = x[i]!;
    }
  }
  return [max, amax];
}

/**
 * llama.cpp's weight of each value under an importance matrix: importance · √(σ² + x²),
 * σ² twice the mean square of the `n` values from `from` (the block), into `out[0…n)`.
 */
export function importanceWeights(
  x: Float32Array,
  from: number,
  n: number,
  importance: Float32Array,
  out: Float32Array,
): Float32Array {
  let sumX2 = 0;
  for (let i = 0; i < n; i++) sumX2 += x[from + i]! * x[from + i]!;
  const sigma2 = (2 * sumX2) / n;
  for (let i = 0; i < n; i++) {
    const value = x[from + i]!;
    out[i] = importance[i]! * Math.sqrt(sigma2 + value * value);
  }
  return out;
}

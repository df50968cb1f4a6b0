/**
 * Compression kernels on typed arrays, independent of any file format: magnitude and N:M
 * pruning, symmetric int8/int4 quantization (per output channel or per block along the
 * input dimension), float16/bfloat16 rounding, and the relative weight error.
 *
 * A weight is seen as a row-major matrix `rows × cols` whose input dimension is one of
 * the two axes (`inputAxis`); the other axis indexes output channels. Examples:
 * ONNX MatMul B `[in, out]` → inputAxis 0; Gemm B with transB=1 `[out, in]` → inputAxis 1;
 * Conv `[out, in, kh, kw]` → rows = out, cols = in·kh·kw, inputAxis 1.
 */
import { quantizeBlocksWasm } from './quantizeSimd';
import { MAX_NM_GROUP } from '../../shared/heatmap';
import type { MatrixLayout, QuantizedBlocks } from './kernelTypes';

/** Part of the kernels' interface: callers import them from here. */
export type { MatrixLayout, QuantizedBlocks };

/** Length of the input dimension and number of output channels of a layout. */
export function layoutDims(layout: MatrixLayout): { inputs: number; channels: number } {
  return layout.inputAxis === 0
    ? { inputs: layout.rows, channels: layout.cols }
    : { inputs: layout.cols, channels: layout.rows };
}

function checkLayout(values: ArrayLike<number>, layout: MatrixLayout): void {
  if (!Number.isInteger(layout.rows) || !Number.isInteger(layout.cols)) {
    throw new RangeError(`matrix sides must be integers, got ${layout.rows} × ${layout.cols}`);
  }
  if (layout.rows * layout.cols !== values.length) {
    throw new RangeError(
      `a ${layout.rows} × ${layout.cols} matrix needs ${layout.rows * layout.cols} values, got ${values.length}`,
    );
  }
}

/** Whether every value is finite (the quantizers need finite scales). */
export function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) return false;
  }
  return true;
}

/** Magnitude bits of float32 values (sign cleared): unsigned order = order of |x|, NaN above ∞. */
function magnitudeBits(values: Float32Array): Uint32Array {
  const aligned = values.byteOffset % 4 === 0 ? values : values.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length);
}

/**
 * Unstructured magnitude pruning: the ⌊sparsity·n⌋ values of smallest magnitude become
 * zero (zeros already there count among them); among equal magnitudes the lower index is
 * pruned first, so the result is deterministic. NaN counts as the largest magnitude.
 * Linear time: a two-pass radix selection on the magnitude bits.
 */
export function pruneMagnitude(values: Float32Array, sparsity: number): Float32Array {
  if (!(sparsity >= 0 && sparsity < 1)) {
    throw new RangeError(`sparsity must be in [0, 1), got ${sparsity}`);
  }
  const n = values.length;
  const k = Math.floor(sparsity * n);
  if (k === 0) return new Float32Array(values);
  const bits = magnitudeBits(values);
  // Pass 1: histogram of the upper 16 magnitude bits, find the bin holding the k-th value.
  const high = new Uint32Array(65536);
  for (let i = 0; i < n; i++) high[(bits[i]! & 0x7fffffff) >>> 16]!++;
  let below = 0;
  let hiBin = 0;
  while (below + high[hiBin]! < k) below += high[hiBin++]!;
  // Pass 2: histogram of the lower 16 bits inside that bin.
  const low = new Uint32Array(65536);
  for (let i = 0; i < n; i++) {
    const b = bits[i]! & 0x7fffffff;
    if (b >>> 16 === hiBin) low[b & 0xffff]!++;
  }
  let loBin = 0;
  while (below + low[loBin]! < k) below += low[loBin++]!;
  const threshold = ((hiBin << 16) | loBin) >>> 0;
  // Pass 3: copy what stays into a zeroed array: values above the threshold, and the ties
  // after the first (k − below).
  const out = new Float32Array(n);
  let ties = k - below;
  for (let i = 0; i < n; i++) {
    const b = (bits[i]! & 0x7fffffff) >>> 0;
    if (b > threshold) out[i] = values[i]!;
    else if (b === threshold) {
      if (ties > 0) ties--;
      else out[i] = values[i]!;
    }
  }
  return out;
}

// Largest group length `m` of N:M pruning (the per-group selection is quadratic in m).
export { MAX_NM_GROUP };

/**
 * N:M semi-structured pruning: in every group of `m` consecutive weights along the input
 * dimension, the `n` of largest magnitude stay and the others become zero. Among equal
 * magnitudes the lower input index stays. A last partial group (input length not a
 * multiple of m) also keeps its n largest.
 */
export function pruneNM(
  values: Float32Array,
  layout: MatrixLayout,
  n: number,
  m: number,
): Float32Array {
  checkLayout(values, layout);
  if (!Number.isInteger(m) || m < 1 || m > MAX_NM_GROUP) {
    throw new RangeError(`m must be an integer in [1, ${MAX_NM_GROUP}], got ${m}`);
  }
  if (!Number.isInteger(n) || n < 0 || n > m) {
    throw new RangeError(`n must be an integer in [0, m=${m}], got ${n}`);
  }
  const out = new Float32Array(values);
  if (n === m) return out;
  const bits = magnitudeBits(values);
  const { inputs, channels } = layoutDims(layout);
  const group = new Uint32Array(m);
  // Input index i of channel c lives at c·inputs + i (inputAxis 1) or i·channels + c (axis 0).
  const inputStride = layout.inputAxis === 1 ? 1 : channels;
  const channelStride = layout.inputAxis === 1 ? inputs : 1;
  for (let start = 0; start < inputs; start += m) {
    const size = Math.min(m, inputs - start);
    if (size <= n) continue;
    for (let c = 0; c < channels; c++) {
      const base = c * channelStride + start * inputStride;
      for (let g = 0; g < size; g++) group[g] = bits[base + g * inputStride]! & 0x7fffffff;
      for (let g = 0; g < size; g++) {
        // Rank of element g: how many others win against it (larger, or equal and earlier).
        const mine = group[g]!;
        let rank = 0;
        for (let h = 0; h < size && rank < n; h++) {
          const other = group[h]!;
          if (other > mine || (other === mine && h < g)) rank++;
        }
        if (rank >= n) out[base + g * inputStride] = 0;
      }
    }
  }
  return out;
}

/** 1.5·2^52: adding and subtracting it rounds a float64 to an integer, ties to even. */
const ROUNDING_MAGIC = 6755399441055744;

/**
 * Symmetric quantization with one scale per output channel and block of `blockSize`
 * consecutive inputs: scale = max|w| / qmax, q = round-half-even(w · (1/scale)) in float32. Values must be
 * finite (see allFinite). Memory is read in storage order whatever the input axis.
 */
export function quantizeBlocks(
  values: Float32Array,
  layout: MatrixLayout,
  blockSize: number,
  qmax: number,
): QuantizedBlocks {
  checkLayout(values, layout);
  const { inputs, channels } = layoutDims(layout);
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
  }
  const blocks = Math.max(1, Math.ceil(inputs / blockSize));
  return (
    quantizeBlocksWasm(values, layout, blockSize, qmax, blocks, channels, inputs) ??
    quantizeBlocksScalar(values, layout, blockSize, qmax)
  );
}

/** quantizeBlocks in plain JavaScript (the reference the SIMD code matches bit for bit). */
export function quantizeBlocksScalar(
  values: Float32Array,
  layout: MatrixLayout,
  blockSize: number,
  qmax: number,
): QuantizedBlocks {
  checkLayout(values, layout);
  const { inputs, channels } = layoutDims(layout);
  const blocks = Math.max(1, Math.ceil(inputs / blockSize));
  const scales = new Float32Array(channels * blocks);
  const q = new Int8Array(values.length);
  // float32 arithmetic as in the SIMD code: p = f32(x · f32(1/s)); p + 1.5·2^52 − 1.5·2^52
  // rounds p to the nearest integer, ties to even (the float64 addition does the rounding).
  const inverses = new Float64Array(layout.inputAxis === 1 ? 1 : channels);
  const scaleOf = (maxAbs: number): number => Math.fround(maxAbs / qmax) || 1;
  if (layout.inputAxis === 1) {
    for (let c = 0; c < channels; c++) {
      const row = c * inputs;
      for (let b = 0; b < blocks; b++) {
        const start = row + b * blockSize;
        const end = row + Math.min(inputs, (b + 1) * blockSize);
        let maxAbs = 0;
        for (let i = start; i < end; i++) {
          const a = Math.abs(values[i]!);
          if (a > maxAbs) maxAbs = a;
        }
        const scale = scaleOf(maxAbs);
        scales[c * blocks + b] = scale;
        const inverse = Math.fround(1 / scale);
        for (let i = start; i < end; i++) {
          const r = Math.fround(values[i]! * inverse) + ROUNDING_MAGIC - ROUNDING_MAGIC;
          q[i] = r > qmax ? qmax : r < -qmax ? -qmax : r;
        }
      }
    }
  } else {
    const maxAbs = new Float64Array(channels);
    for (let b = 0; b < blocks; b++) {
      const first = b * blockSize;
      const last = Math.min(inputs, first + blockSize);
      maxAbs.fill(0);
      for (let i = first; i < last; i++) {
        const row = i * channels;
        for (let c = 0; c < channels; c++) {
          const a = Math.abs(values[row + c]!);
          if (a > maxAbs[c]!) maxAbs[c] = a;
        }
      }
      for (let c = 0; c < channels; c++) {
        const scale = scaleOf(maxAbs[c]!);
        scales[c * blocks + b] = scale;
        inverses[c] = Math.fround(1 / scale);
      }
      for (let i = first; i < last; i++) {
        const row = i * channels;
        for (let c = 0; c < channels; c++) {
          const r = Math.fround(values[row + c]! * inverses[c]!) + ROUNDING_MAGIC - ROUNDING_MAGIC;
          q[row + c] = r > qmax ? qmax : r < -qmax ? -qmax : r;
        }
      }
    }
  }
  return { q, scales, blocks, blockSize };
}

/** The float32 values q·scale that a dequantizing runtime computes. */
export function dequantizeBlocks(quantized: QuantizedBlocks, layout: MatrixLayout): Float32Array {
  checkLayout(quantized.q, layout);
  const { inputs, channels } = layoutDims(layout);
  const { q, scales, blocks, blockSize } = quantized;
  const out = new Float32Array(q.length);
  for (let index = 0; index < q.length; index++) {
    const i = layout.inputAxis === 1 ? index % inputs : Math.floor(index / channels);
    const c = layout.inputAxis === 1 ? Math.floor(index / inputs) : index % channels;
    out[index] = Math.fround(q[index]! * scales[c * blocks + Math.floor(i / blockSize)]!);
  }
  return out;
}

/** int8 symmetric per output channel: levels −127…127, one scale per channel. */
export function quantizeInt8PerChannel(
  values: Float32Array,
  layout: MatrixLayout,
): QuantizedBlocks {
  return quantizeBlocks(values, layout, Math.max(1, layoutDims(layout).inputs), 127);
}

/** int4 symmetric per block of the input dimension: levels −7…7 (−8 is never produced). */
export function quantizeInt4Blocks(
  values: Float32Array,
  layout: MatrixLayout,
  blockSize: number,
): QuantizedBlocks {
  return quantizeBlocks(values, layout, blockSize, 7);
}

/**
 * Two 4-bit values per byte, the first in the low nibble (ONNX INT4/UINT4 order); `offset`
 * is added to each value first (8 turns −8…7 into the unsigned 0…15 MatMulNBits stores).
 */
export function packNibbles(values: Int8Array, offset = 0): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  const pairs = values.length >> 1;
  for (let j = 0; j < pairs; j++) {
    out[j] = ((values[2 * j]! + offset) & 0x0f) | (((values[2 * j + 1]! + offset) & 0x0f) << 4);
  }
  if (values.length & 1) out[pairs] = (values[values.length - 1]! + offset) & 0x0f;
  return out;
}

/** Inverse of packNibbles: `count` values, sign-extended when `signed`, minus `offset`. */
export function unpackNibbles(
  packed: Uint8Array,
  count: number,
  signed: boolean,
  offset = 0,
): Int8Array {
  if (packed.length * 2 < count) {
    throw new RangeError(
      `${count} nibbles need ${Math.ceil(count / 2)} bytes, got ${packed.length}`,
    );
  }
  const out = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    let nibble = (packed[i >> 1]! >> ((i & 1) * 4)) & 0x0f;
    if (signed && nibble >= 8) nibble -= 16;
    out[i] = nibble - offset;
  }
  return out;
}

/** float32 → IEEE float16 bits, round to nearest even; overflow → ±∞, NaN stays NaN. */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16FromFloat32Bits(bits[i]!);
  return out;
}

const scalarFloat = new Float32Array(1);
const scalarBits = new Uint32Array(scalarFloat.buffer);

/** One number rounded to float32, then → IEEE float16 bits (as float32ToFloat16Bits). */
export function float16Bits(value: number): number {
  scalarFloat[0] = value;
  return float16FromFloat32Bits(scalarBits[0]!);
}

function float16FromFloat32Bits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  if (exponent >= 143) return sign | 0x7c00; // |x| ≥ 2^16: beyond the largest half
  if (exponent >= 113) {
    // Normal half: rebias the exponent; a rounding carry may step into the next binade or ∞.
    let h = ((exponent - 112) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  if (exponent < 102) return sign; // below half the smallest subnormal (2^-25): zero
  // Subnormal half: the 24-bit significand shifted right by 126 − exponent (14…24 bits).
  const significand = mantissa | 0x800000;
  const shift = 126 - exponent;
  let h = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) !== 0)) h++;
  return sign | h;
}

/** float32 → bfloat16 bits (upper half of a float32), round to nearest even; NaN stays NaN. */
export function float32ToBfloat16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i]!;
    if ((f & 0x7fffffff) > 0x7f800000) out[i] = (f >>> 16) | 0x40;
    else out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** ‖a − b‖_F / ‖a‖_F in float64; 0 when both are zero, ∞ when only a is. */
export function relativeFrobeniusError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`cannot compare ${a.length} values with ${b.length}`);
  }
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const d = x - b[i]!;
    diff += d * d;
    norm += x * x;
  }
  if (norm === 0) return diff === 0 ? 0 : Infinity;
  return Math.sqrt(diff / norm);
}

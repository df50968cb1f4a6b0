/**
 * Quantized codes → the values a model computes with, (q − zero point) · scale, for the
 * two grids ONNX models use (see onnx/quantized.ts): DequantizeLinear's (one scale per
 * tensor, per index along an axis, or per block along an axis) and MatMulNBits' packed
 * blocks. Products are formed in float64 and rounded once to float32, which is the
 * float32 product onnxruntime computes ((q − zp) is exact in either). A DequantizePlan says
 * how one tensor decodes, as data, so that a statistics worker can decode it too.
 */
import { decodeValues, type NumericDType } from './decode';

/** Scales (and zero points) along one axis of a row-major tensor of `shape`. */
export interface AxisGrid {
  readonly shape: readonly number[];
  /** Null: one scale for the whole tensor. Non-negative otherwise. */
  readonly axis: number | null;
  /** 0: one scale per index along `axis`; otherwise one per block of that many. */
  readonly blockSize: number;
}

/** (codes[i] − zeroPoints[s]) · scales[s] for each element i with scale index s. */
export function dequantizeAxis(
  codes: ArrayLike<number>,
  grid: AxisGrid,
  scales: ArrayLike<number>,
  zeroPoints?: ArrayLike<number>,
): Float32Array {
  const { shape, axis, blockSize } = grid;
  const out = new Float32Array(codes.length);
  // A single zero point applies to every scale (ConvInteger's scalar w_zero_point).
  const zeroAt = (s: number): number =>
    zeroPoints ? (zeroPoints.length === 1 ? zeroPoints[0]! : zeroPoints[s]!) : 0;
  if (axis === null) {
    const scale = scales[0]!;
    const zero = zeroAt(0);
    for (let i = 0; i < codes.length; i++) out[i] = (codes[i]! - zero) * scale;
    return out;
  }
  const length = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = codes.length / Math.max(1, length * inner);
  const blocks = blockSize > 0 ? Math.ceil(length / blockSize) : length;
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < length; a++) {
      if (blockSize === 0) {
        // One scale for the whole run of `inner` elements.
        const scale = scales[a]!;
        const zero = zeroAt(a);
        for (const end = i + inner; i < end; i++) out[i] = (codes[i]! - zero) * scale;
        continue;
      }
      const base = (o * blocks + Math.floor(a / blockSize)) * inner;
      for (let k = 0; k < inner; k++, i++) {
        out[i] = (codes[i]! - zeroAt(base + k)) * scales[base + k]!;
      }
    }
  }
  return out;
}

/** MatMulNBits' attributes: the weight is [k, n], stored as n rows of k codes in blocks. */
export interface NBitsGrid {
  readonly k: number;
  readonly n: number;
  readonly bits: number;
  readonly blockSize: number;
}

export function nbitsBlocks(grid: NBitsGrid): number {
  return Math.ceil(grid.k / grid.blockSize);
}

/** Bytes of one row's packed zero points. */
export function nbitsZeroPointBytes(grid: NBitsGrid): number {
  return Math.ceil((nbitsBlocks(grid) * grid.bits) / 8);
}

/** The `bits`-bit field at position `index` of `bytes`, low bits first. */
function field(bytes: Uint8Array, offset: number, index: number, bits: number): number {
  const bit = index * bits;
  return (bytes[offset + (bit >> 3)]! >> (bit & 7)) & ((1 << bits) - 1);
}

/** The codes of the [k, n] weight in row-major order. */
export function nbitsCodes(packed: Uint8Array, grid: NBitsGrid): Int32Array {
  const { k, n, bits, blockSize } = grid;
  const blocks = nbitsBlocks(grid);
  const blob = (blockSize * bits) / 8;
  const out = new Int32Array(k * n);
  for (let col = 0; col < n; col++) {
    for (let row = 0; row < k; row++) {
      const block = Math.floor(row / blockSize);
      out[row * n + col] = field(packed, (col * blocks + block) * blob, row % blockSize, bits);
    }
  }
  return out;
}

/** Zero points of MatMulNBits: packed like the codes (uint8), or one number per block. */
export type NBitsZeroPoints =
  { readonly packed: Uint8Array } | { readonly values: ArrayLike<number> } | undefined;

/** The [k, n] weight MatMulNBits computes with, row-major. */
export function dequantizeNBits(
  packed: Uint8Array,
  grid: NBitsGrid,
  scales: ArrayLike<number>,
  zeroPoints: NBitsZeroPoints,
): Float32Array {
  const { k, n, bits, blockSize } = grid;
  const blocks = nbitsBlocks(grid);
  const blob = (blockSize * bits) / 8;
  const rowZeroBytes = nbitsZeroPointBytes(grid);
  const middle = 1 << (bits - 1);
  const out = new Float32Array(k * n);
  for (let col = 0; col < n; col++) {
    for (let block = 0; block < blocks; block++) {
      const at = col * blocks + block;
      let zero = middle;
      if (zeroPoints && 'packed' in zeroPoints) {
        zero = field(zeroPoints.packed, col * rowZeroBytes, block, bits);
      } else if (zeroPoints) {
        zero = zeroPoints.values[at]!;
      }
      const scale = scales[at]!;
      const offset = at * blob;
      const first = block * blockSize;
      const count = Math.min(k, first + blockSize) - first;
      for (let j = 0; j < count; j++) {
        out[(first + j) * n + col] = (field(packed, offset, j, bits) - zero) * scale;
      }
    }
  }
  return out;
}

/** One stored part of a quantized tensor: its element type and count. */
export interface StoredPart {
  readonly dtype: NumericDType;
  readonly count: number;
}

/**
 * How to decode a quantized tensor from the bytes of its stored parts (codes, scale, zero
 * point), as data a worker can receive.
 */
export type DequantizePlan =
  | {
      readonly kind: 'axis';
      readonly grid: AxisGrid;
      readonly codes: StoredPart;
      readonly scale: StoredPart;
      readonly zeroPoint?: StoredPart;
    }
  | {
      readonly kind: 'nbits';
      readonly grid: NBitsGrid;
      readonly scale: StoredPart;
      /** `packed`: uint8 bytes packed like the codes. */
      readonly zeroPoint?: StoredPart | 'packed';
    };

function numbers(part: StoredPart, bytes: Uint8Array): Float32Array | Float64Array {
  return decodeValues(part.dtype, bytes, part.count);
}

/**
 * Little-endian float32 bytes of the values, from the bytes of the codes and of the
 * parameters (scale, then the zero point when the plan has one).
 */
export function dequantizeBytes(
  plan: DequantizePlan,
  codes: Uint8Array,
  params: readonly Uint8Array[],
): Uint8Array {
  const [scaleBytes, zeroBytes] = params;
  const scales = numbers(plan.scale, scaleBytes!);
  let values: Float32Array;
  if (plan.kind === 'axis') {
    const zeros = plan.zeroPoint && zeroBytes ? numbers(plan.zeroPoint, zeroBytes) : undefined;
    values = dequantizeAxis(numbers(plan.codes, codes), plan.grid, scales, zeros);
  } else {
    const zero = plan.zeroPoint;
    values = dequantizeNBits(
      codes,
      plan.grid,
      scales,
      zero && zeroBytes
        ? zero === 'packed'
          ? { packed: zeroBytes }
          : { values: numbers(zero, zeroBytes) }
        : undefined,
    );
  }
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The integer code behind each value, in the values' order. */
export function codesOf(plan: DequantizePlan, codes: Uint8Array): Int32Array {
  return plan.kind === 'nbits'
    ? nbitsCodes(codes, plan.grid)
    : Int32Array.from(numbers(plan.codes, codes));
}

/**
 * Byte grouping: a tensor's little-endian elements split into one stream per byte role, so
 * that the skewed exponent bytes sit together (and code well) apart from the near-random
 * mantissa bytes. For bfloat16 and float32 the exponent is realigned to a whole byte and
 * the sign bit moves into the mantissa stream.
 *
 * Every layout is a bijection: `joinStreams(layout, splitStreams(layout, bytes))` returns
 * `bytes`, whatever its length (bytes past the last whole element form a tail stream).
 */
import type { DType } from '../../shared/dtypes';

export type ByteLayout =
  /** [exponent, sign+7 mantissa bits] */
  | 'bf16'
  /** [rotated high byte: 5 exponent bits, 2 mantissa bits, sign; low mantissa byte] */
  | 'f16'
  /** [exponent, sign+7 mantissa bits, mantissa byte 1, mantissa byte 0] */
  | 'f32'
  /** [rotated top byte (sign last), bytes 6…0] */
  | 'f64'
  /** Byte planes, most significant first. */
  | 'planes2'
  | 'planes4'
  | 'planes8'
  /** One stream, the bytes as they are (8-bit and 4-bit types, bool, headers). */
  | 'bytes';

export const BYTE_LAYOUTS: readonly ByteLayout[] = [
  'bf16',
  'f16',
  'f32',
  'f64',
  'planes2',
  'planes4',
  'planes8',
  'bytes',
];

const ELEMENT_BYTES: Readonly<Record<ByteLayout, number>> = {
  bf16: 2,
  f16: 2,
  f32: 4,
  f64: 8,
  planes2: 2,
  planes4: 4,
  planes8: 8,
  bytes: 1,
};

export function elementBytesOf(layout: ByteLayout): number {
  return ELEMENT_BYTES[layout];
}

/** Whether the first stream of the layout holds a floating-point exponent. */
export function hasExponentStream(layout: ByteLayout): boolean {
  return layout === 'bf16' || layout === 'f16' || layout === 'f32' || layout === 'f64';
}

export function layoutOf(dtype: DType): ByteLayout {
  switch (dtype) {
    case 'bfloat16':
      return 'bf16';
    case 'float16':
      return 'f16';
    case 'float32':
    case 'complex64':
      return 'f32';
    case 'float64':
    case 'complex128':
      return 'f64';
    case 'int16':
    case 'uint16':
      return 'planes2';
    case 'int32':
    case 'uint32':
      return 'planes4';
    case 'int64':
    case 'uint64':
      return 'planes8';
    default:
      return 'bytes';
  }
}

/** Lengths of the streams of `byteLength` bytes: one per byte of an element, then the tail. */
export function streamLengths(layout: ByteLayout, byteLength: number): number[] {
  const size = ELEMENT_BYTES[layout];
  const elements = Math.floor(byteLength / size);
  return [...new Array<number>(size).fill(elements), byteLength - elements * size];
}

const rotateLeft = (byte: number) => ((byte << 1) | (byte >> 7)) & 0xff;
const rotateRight = (byte: number) => ((byte >> 1) | (byte << 7)) & 0xff;

/** The elements of `bytes` as 16-bit words (a copy when `bytes` is not 2-byte aligned). */
function aligned16(bytes: Uint8Array, n: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return new Uint16Array(bytes.slice(0, n * 2).buffer);
}

/**
 * Split `bytes` into the layout's streams (the last one is the tail, often empty). For bf16,
 * `exponentCounts` (when given) receives the histogram of the exponent stream, counted on the
 * way to spare the coder a pass.
 */
export function splitStreams(
  layout: ByteLayout,
  bytes: Uint8Array,
  exponentCounts?: Uint32Array,
): Uint8Array[] {
  const size = ELEMENT_BYTES[layout];
  const n = Math.floor(bytes.length / size);
  const tail = bytes.slice(n * size);
  if (layout === 'bytes') return [bytes.slice(0, n), tail];
  const streams = Array.from({ length: size }, () => new Uint8Array(n));
  if (layout === 'bf16') {
    const [exponent, signMantissa] = streams as [Uint8Array, Uint8Array];
    const words = aligned16(bytes, n);
    if (exponentCounts) {
      for (let i = 0; i < n; i++) {
        const word = words[i]!;
        const e = (word >> 7) & 0xff;
        exponent[i] = e;
        exponentCounts[e]!++;
        signMantissa[i] = ((word >> 8) & 0x80) | (word & 0x7f);
      }
      return [...streams, tail];
    }
    for (let i = 0; i < n; i++) {
      const word = words[i]!;
      exponent[i] = word >> 7;
      signMantissa[i] = ((word >> 8) & 0x80) | (word & 0x7f);
    }
  } else if (layout === 'f32') {
    const [exponent, signMantissa, m1, m0] = streams as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const b2 = bytes[j + 2]!;
      const b3 = bytes[j + 3]!;
      exponent[i] = ((b3 << 1) | (b2 >> 7)) & 0xff;
      signMantissa[i] = (b3 & 0x80) | (b2 & 0x7f);
      m1[i] = bytes[j + 1]!;
      m0[i] = bytes[j]!;
    }
  } else {
    // f16, f64 and the integer planes: most significant byte first; floats rotate the
    // sign bit out of the exponent's way.
    const rotate = layout === 'f16' || layout === 'f64';
    for (let plane = 0; plane < size; plane++) {
      const stream = streams[plane]!;
      const byteIndex = size - 1 - plane;
      for (let i = 0, j = byteIndex; i < n; i++, j += size) stream[i] = bytes[j]!;
      if (rotate && plane === 0) for (let i = 0; i < n; i++) stream[i] = rotateLeft(stream[i]!);
    }
  }
  return [...streams, tail];
}

/** Inverse of splitStreams, written into `out` (its length is the total of the streams). */
export function joinStreams(
  layout: ByteLayout,
  streams: readonly Uint8Array[],
  out: Uint8Array,
): Uint8Array {
  const size = ELEMENT_BYTES[layout];
  const n = Math.floor(out.length / size);
  const tail = streams[size]!;
  out.set(tail, n * size);
  if (layout === 'bytes') {
    out.set(streams[0]!.subarray(0, n), 0);
    return out;
  }
  if (layout === 'bf16') {
    const [exponent, signMantissa] = streams as [Uint8Array, Uint8Array];
    if (out.byteOffset % 2 === 0) {
      const words = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const sm = signMantissa[i]!;
        words[i] = ((sm & 0x80) << 8) | (exponent[i]! << 7) | (sm & 0x7f);
      }
    } else {
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const e = exponent[i]!;
        const sm = signMantissa[i]!;
        out[j] = ((e & 1) << 7) | (sm & 0x7f);
        out[j + 1] = (sm & 0x80) | (e >> 1);
      }
    }
  } else if (layout === 'f32') {
    const [exponent, signMantissa, m1, m0] = streams as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const e = exponent[i]!;
      const sm = signMantissa[i]!;
      out[j] = m0[i]!;
      out[j + 1] = m1[i]!;
      out[j + 2] = ((e & 1) << 7) | (sm & 0x7f);
      out[j + 3] = (sm & 0x80) | (e >> 1);
    }
  } else {
    const rotate = layout === 'f16' || layout === 'f64';
    for (let plane = 0; plane < size; plane++) {
      const stream = streams[plane]!;
      const byteIndex = size - 1 - plane;
      if (rotate && plane === 0) {
        for (let i = 0, j = byteIndex; i < n; i++, j += size) out[j] = rotateRight(stream[i]!);
      } else {
        for (let i = 0, j = byteIndex; i < n; i++, j += size) out[j] = stream[i]!;
      }
    }
  }
  return out;
}

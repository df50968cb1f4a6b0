/**
 * Little-endian tensor bytes → numbers, for every numeric DType.
 *
 * float32 and float64 come back as views on the input bytes (no copy) when the bytes are
 * aligned; every other type is written into a caller-provided Float64Array so that the
 * statistics loops only ever see two array types. 8- and 16-bit floats go through lookup
 * tables built on first use.
 */
import { byteLengthOf, DTYPES, type DType } from '../../shared/dtypes';

export type NumericDType = Exclude<DType, 'complex64' | 'complex128' | 'string'>;

export function isNumericDType(dtype: DType): dtype is NumericDType {
  return DTYPES[dtype].numeric;
}

// Typed-array views use the host's byte order; every platform Node and VS Code run on is
// little-endian, like the file formats. Refuse to produce wrong numbers anywhere else.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('LayerLens needs a little-endian CPU to decode tensor data');
}

/** Elements held by `byteLength` bytes of `dtype` (4-bit types: two per byte, padding included). */
export function elementsInBytes(dtype: NumericDType, byteLength: number): number {
  const bits = DTYPES[dtype].bits;
  return bits === 4 ? byteLength * 2 : byteLength / (bits / 8);
}

/**
 * Value of a small float with `exponentBits`/`mantissaBits`, given its bit pattern.
 * `nanOnlyAtNegativeZero`: the "fnuz" variants (and no infinities, no -0).
 * `ieeeSpecials`: all-ones exponent means inf/NaN (float16, float8_e5m2).
 * Otherwise (float8_e4m3fn) only S.1111.111 is NaN and there are no infinities.
 */
function smallFloatValue(
  bits: number,
  exponentBits: number,
  mantissaBits: number,
  bias: number,
  encoding: 'ieee' | 'fn' | 'fnuz',
): number {
  const totalBits = 1 + exponentBits + mantissaBits;
  const signBit = 1 << (totalBits - 1);
  const mantissaMask = (1 << mantissaBits) - 1;
  const exponentMax = (1 << exponentBits) - 1;
  const negative = (bits & signBit) !== 0;
  const exponent = (bits >> mantissaBits) & exponentMax;
  const mantissa = bits & mantissaMask;
  if (encoding === 'fnuz' && bits === signBit) return NaN;
  if (encoding === 'ieee' && exponent === exponentMax) {
    if (mantissa !== 0) return NaN;
    return negative ? -Infinity : Infinity;
  }
  if (encoding === 'fn' && exponent === exponentMax && mantissa === mantissaMask) return NaN;
  const magnitude =
    exponent === 0
      ? (mantissa / (1 << mantissaBits)) * 2 ** (1 - bias)
      : (1 + mantissa / (1 << mantissaBits)) * 2 ** (exponent - bias);
  return negative ? -magnitude : magnitude;
}

type Float8DType = 'float8_e4m3fn' | 'float8_e4m3fnuz' | 'float8_e5m2' | 'float8_e5m2fnuz';

const FLOAT8_LAYOUTS: Record<
  Float8DType,
  { exponentBits: number; mantissaBits: number; bias: number; encoding: 'ieee' | 'fn' | 'fnuz' }
> = {
  float8_e4m3fn: { exponentBits: 4, mantissaBits: 3, bias: 7, encoding: 'fn' },
  float8_e4m3fnuz: { exponentBits: 4, mantissaBits: 3, bias: 8, encoding: 'fnuz' },
  float8_e5m2: { exponentBits: 5, mantissaBits: 2, bias: 15, encoding: 'ieee' },
  float8_e5m2fnuz: { exponentBits: 5, mantissaBits: 2, bias: 16, encoding: 'fnuz' },
};

const float8Tables = new Map<Float8DType, Float32Array>();
let float16Table: Float32Array | undefined;
let bfloat16Table: Float32Array | undefined;
let boolTable: Float64Array | undefined;
let int4Tables: { low: Float64Array; high: Float64Array } | undefined;
let uint4Tables: { low: Float64Array; high: Float64Array } | undefined;

function float8Table(dtype: Float8DType): Float32Array {
  let table = float8Tables.get(dtype);
  if (!table) {
    const layout = FLOAT8_LAYOUTS[dtype];
    table = new Float32Array(256);
    for (let bits = 0; bits < 256; bits++) {
      table[bits] = smallFloatValue(
        bits,
        layout.exponentBits,
        layout.mantissaBits,
        layout.bias,
        layout.encoding,
      );
    }
    float8Tables.set(dtype, table);
  }
  return table;
}

function getFloat16Table(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++)
      float16Table[bits] = smallFloatValue(bits, 5, 10, 15, 'ieee');
  }
  return float16Table;
}

function getBfloat16Table(): Float32Array {
  if (!bfloat16Table) {
    // bfloat16 is the upper half of a float32: shift the bits into place and reinterpret.
    const words = new Uint32Array(65536);
    for (let bits = 0; bits < 65536; bits++) words[bits] = bits << 16;
    bfloat16Table = new Float32Array(words.buffer);
  }
  return bfloat16Table;
}

function getBoolTable(): Float64Array {
  if (!boolTable) {
    boolTable = new Float64Array(256);
    for (let byte = 1; byte < 256; byte++) boolTable[byte] = 1;
  }
  return boolTable;
}

function getNibbleTables(signed: boolean): { low: Float64Array; high: Float64Array } {
  const cached = signed ? int4Tables : uint4Tables;
  if (cached) return cached;
  const low = new Float64Array(256);
  const high = new Float64Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const lowNibble = byte & 0x0f;
    const highNibble = byte >> 4;
    low[byte] = signed && lowNibble >= 8 ? lowNibble - 16 : lowNibble;
    high[byte] = signed && highNibble >= 8 ? highNibble - 16 : highNibble;
  }
  const tables = { low, high };
  if (signed) int4Tables = tables;
  else uint4Tables = tables;
  return tables;
}

/** The bytes as an ArrayBuffer slice aligned to `alignment` (a copy only when they are not). */
function aligned(
  bytes: Uint8Array,
  alignment: number,
): { buffer: ArrayBufferLike; byteOffset: number } {
  if (bytes.byteOffset % alignment === 0)
    return { buffer: bytes.buffer, byteOffset: bytes.byteOffset };
  return { buffer: bytes.slice().buffer, byteOffset: 0 };
}

/**
 * `elementCount` float16 or bfloat16 values widened to float32 (exactly) into `out`, which
 * must hold that many; returns the filled part of `out`.
 */
export function decodeHalfToFloat32(
  dtype: 'float16' | 'bfloat16',
  bytes: Uint8Array,
  elementCount: number,
  out: Float32Array,
): Float32Array {
  if (bytes.byteLength < elementCount * 2 || out.length < elementCount) {
    throw new RangeError(
      `${elementCount} ${dtype} elements need ${elementCount * 2} bytes and as many outputs, got ${bytes.byteLength} and ${out.length}`,
    );
  }
  const { buffer, byteOffset } = aligned(bytes, 2);
  const words = new Uint16Array(buffer, byteOffset, elementCount);
  if (dtype === 'bfloat16') {
    // The upper half of a float32: shift the bits into place, two values per 32-bit load
    // where the bytes allow it (little-endian: the first value is the low half).
    const bits = new Uint32Array(out.buffer, out.byteOffset, elementCount);
    let i = 0;
    if (byteOffset % 4 === 0) {
      const pairs = new Uint32Array(buffer, byteOffset, elementCount >>> 1);
      for (let p = 0; p < pairs.length; p++, i += 2) {
        const pair = pairs[p]!;
        bits[i] = pair << 16;
        bits[i + 1] = pair & 0xffff0000;
      }
    }
    for (; i < elementCount; i++) bits[i] = words[i]! << 16;
  } else {
    const table = getFloat16Table();
    for (let i = 0; i < elementCount; i++) out[i] = table[words[i]!]!;
  }
  return out.subarray(0, elementCount);
}

/** Decode one 8- or 16-bit float pattern (used by tests and by single-value displays). */
export function decodeScalar(dtype: Float8DType | 'float16' | 'bfloat16', bits: number): number {
  if (dtype === 'float16') return getFloat16Table()[bits & 0xffff]!;
  if (dtype === 'bfloat16') return getBfloat16Table()[bits & 0xffff]!;
  return float8Table(dtype)[bits & 0xff]!;
}

/**
 * Decode `elementCount` elements from the start of `bytes`.
 * float32/float64: a view on `bytes` when aligned (otherwise an aligned copy).
 * Other types: written into `scratch` (allocated when absent or too small), and the
 * returned array is the filled prefix of it.
 */
export function decodeValues(
  dtype: NumericDType,
  bytes: Uint8Array,
  elementCount: number,
  scratch?: Float64Array,
): Float32Array | Float64Array {
  const needed = byteLengthOf(dtype, elementCount);
  if (bytes.byteLength < needed) {
    throw new RangeError(
      `${elementCount} ${dtype} elements need ${needed} bytes, got ${bytes.byteLength}`,
    );
  }
  if (dtype === 'float32') {
    const { buffer, byteOffset } = aligned(bytes, 4);
    return new Float32Array(buffer, byteOffset, elementCount);
  }
  if (dtype === 'float64') {
    const { buffer, byteOffset } = aligned(bytes, 8);
    return new Float64Array(buffer, byteOffset, elementCount);
  }
  const out =
    scratch && scratch.length >= elementCount
      ? scratch.subarray(0, elementCount)
      : new Float64Array(elementCount);
  switch (dtype) {
    case 'float16':
    case 'bfloat16': {
      const table = dtype === 'float16' ? getFloat16Table() : getBfloat16Table();
      const { buffer, byteOffset } = aligned(bytes, 2);
      const words = new Uint16Array(buffer, byteOffset, elementCount);
      for (let i = 0; i < elementCount; i++) out[i] = table[words[i]!]!;
      return out;
    }
    case 'float8_e4m3fn':
    case 'float8_e4m3fnuz':
    case 'float8_e5m2':
    case 'float8_e5m2fnuz': {
      const table = float8Table(dtype);
      for (let i = 0; i < elementCount; i++) out[i] = table[bytes[i]!]!;
      return out;
    }
    case 'bool': {
      const table = getBoolTable();
      for (let i = 0; i < elementCount; i++) out[i] = table[bytes[i]!]!;
      return out;
    }
    case 'int4':
    case 'uint4': {
      const { low, high } = getNibbleTables(dtype === 'int4');
      const pairs = elementCount >> 1;
      for (let i = 0; i < pairs; i++) {
        const byte = bytes[i]!;
        out[2 * i] = low[byte]!;
        out[2 * i + 1] = high[byte]!;
      }
      if (elementCount & 1) out[elementCount - 1] = low[bytes[pairs]!]!;
      return out;
    }
    case 'int8':
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, elementCount));
      return out;
    case 'uint8':
      out.set(bytes.subarray(0, elementCount));
      return out;
    case 'int16': {
      const { buffer, byteOffset } = aligned(bytes, 2);
      out.set(new Int16Array(buffer, byteOffset, elementCount));
      return out;
    }
    case 'uint16': {
      const { buffer, byteOffset } = aligned(bytes, 2);
      out.set(new Uint16Array(buffer, byteOffset, elementCount));
      return out;
    }
    case 'int32': {
      const { buffer, byteOffset } = aligned(bytes, 4);
      out.set(new Int32Array(buffer, byteOffset, elementCount));
      return out;
    }
    case 'uint32': {
      const { buffer, byteOffset } = aligned(bytes, 4);
      out.set(new Uint32Array(buffer, byteOffset, elementCount));
      return out;
    }
    case 'int64':
    case 'uint64': {
      // Two 32-bit halves instead of BigInt: exact up to 2^53, rounded beyond, and fast.
      const { buffer, byteOffset } = aligned(bytes, 4);
      const low = new Uint32Array(buffer, byteOffset, elementCount * 2);
      const high = dtype === 'int64' ? new Int32Array(buffer, byteOffset, elementCount * 2) : low;
      for (let i = 0; i < elementCount; i++) out[i] = high[2 * i + 1]! * 4294967296 + low[2 * i]!;
      return out;
    }
  }
}

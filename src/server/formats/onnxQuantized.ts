/**
 * The ONNX reader's quantized weights (found by onnx/quantized.ts): each gets its
 * `encoding` (scheme, bits per weight with scales and zero points, granularity, block,
 * symmetry) and, when its scale and zero point fit its grid, float32 values decoded as
 * (q − zero point) · scale, so that statistics, histogram, spectrum and heatmap show the
 * values the model computes with. The codes stay reachable (DecodedValues.codes) for the
 * raw-code view and for writers that copy the stored bytes.
 */
import { byteLengthOf, DTYPES, type DType } from '../../shared/dtypes';
import type { TensorEncoding, TensorInfo } from '../../shared/model';
import {
  nbitsBlocks,
  nbitsZeroPointBytes,
  type AxisGrid,
  type NBitsGrid,
  type StoredPart,
} from '../analysis/dequantize';
import { decodeValues, isNumericDType, type NumericDType } from '../analysis/decode';
import { quantizedWeights, type OnnxModel, type QuantizedWeight } from '../onnx';
import { decodedTensorData } from './decodedValues';
import { loadTensorData } from './onnxTensors';
import type { DecodedValues, TensorEntry } from './types';

/** Zero points read at open to tell symmetric schemes (larger ones are left undecided). */
const MAX_ZERO_POINTS_READ = 4096;

const CODE_DTYPES: ReadonlySet<DType> = new Set([
  'int4',
  'uint4',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
]);
const SCALE_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16']);

function values(entry: TensorEntry, bytes: Uint8Array): Float32Array | Float64Array {
  return decodeValues(entry.info.dtype as NumericDType, bytes, entry.info.parameterCount);
}

/** A stored tensor as a part of a DequantizePlan (its dtype is checked numeric before). */
function part(entry: TensorEntry): StoredPart {
  return { dtype: entry.info.dtype as NumericDType, count: entry.info.parameterCount };
}

/** Whether every zero point sits at the middle of the code range (0 for signed codes). */
function symmetricOf(zeroPoint: TensorEntry | undefined, middle: number): boolean | undefined {
  // Without a zero point, codes are centred on 0: symmetric when they are signed.
  if (!zeroPoint) return middle === 0;
  if (zeroPoint.info.parameterCount > MAX_ZERO_POINTS_READ) return undefined;
  if (!isNumericDType(zeroPoint.info.dtype)) return undefined;
  try {
    return values(zeroPoint, loadTensorData(zeroPoint.data)).every((zero) => zero === middle);
  } catch {
    return undefined;
  }
}

/** What the table shows of a weight that is not decoded: its codes, with the reason. */
function undecoded(
  entry: TensorEntry,
  decodedBy: string | undefined,
  scheme: string,
  granularity: TensorEncoding['granularity'],
  problem: string,
): TensorEntry {
  const encoding: TensorEncoding = {
    scheme,
    storedType: entry.info.dtype,
    bitsPerWeight: DTYPES[entry.info.dtype].bits,
    granularity,
    ...(decodedBy ? { decodedBy } : {}),
    notDecoded: `values shown as stored codes: ${problem}`,
    countsCodes: false,
    blockScales: false,
  };
  return { info: { ...entry.info, encoding }, data: entry.data };
}

/** A quantized weight's stored parts: codes, scale, zero point. */
export interface Parts {
  /** The op that decodes them, where a graph names one. */
  readonly op?: string;
  readonly codes: TensorEntry;
  readonly scale: TensorEntry;
  readonly zeroPoint?: TensorEntry;
}

/** Stored bits per weight: codes (block padding included), scales and zero points. */
function bitsPerWeight(parts: Parts, weights: number): number {
  const bytes =
    parts.codes.info.byteLength +
    parts.scale.info.byteLength +
    (parts.zeroPoint?.info.byteLength ?? 0);
  return (bytes * 8) / Math.max(1, weights);
}

function withValues(
  codes: TensorEntry,
  info: Partial<TensorInfo> & { encoding: TensorEncoding },
  decoded: DecodedValues,
  count: number,
): TensorEntry {
  return {
    info: { ...codes.info, ...info, dtype: 'float32', parameterCount: count },
    data: decodedTensorData(decoded, byteLengthOf('float32', count)),
  };
}

/**
 * DequantizeLinear, QLinear* and *Integer weights (and safetensors int8 with scales,
 * safetensorsInt8.ts): scales along one axis of the codes.
 */
export function decodeAxis(parts: Parts, grid: AxisGrid | string): TensorEntry {
  const { codes, scale, zeroPoint } = parts;
  const codeDtype = codes.info.dtype;
  const granularity =
    typeof grid === 'string'
      ? 'tensor'
      : grid.axis === null
        ? 'tensor'
        : grid.blockSize > 0
          ? 'block'
          : 'channel';
  const scheme = `${codeDtype} ${granularity === 'block' ? 'blocked' : `per-${granularity}`}`;
  if (typeof grid === 'string') return undecoded(codes, parts.op, scheme, granularity, grid);
  const signed = codeDtype.startsWith('int');
  const codeBits = DTYPES[codeDtype].bits;
  // Unsigned codes are symmetric around the middle of their range (128 for uint8).
  const symmetric = symmetricOf(zeroPoint, signed ? 0 : 2 ** (codeBits - 1));
  const decoded: DecodedValues = {
    codes: codes.data,
    codeDtype,
    codeBits,
    signedCodes: signed,
    params: zeroPoint ? [scale.data, zeroPoint.data] : [scale.data],
    plan: {
      kind: 'axis',
      grid,
      codes: part(codes),
      scale: part(scale),
      ...(zeroPoint ? { zeroPoint: part(zeroPoint) } : {}),
    },
  };
  return withValues(
    codes,
    {
      encoding: {
        scheme,
        storedType: codeDtype,
        bitsPerWeight: bitsPerWeight(parts, codes.info.parameterCount),
        granularity,
        ...(grid.blockSize > 0 ? { blockSize: grid.blockSize } : {}),
        ...(symmetric === undefined ? {} : { symmetric }),
        ...(parts.op ? { decodedBy: parts.op } : {}),
        notDecoded: null,
        countsCodes: true,
        blockScales: false,
      },
    },
    decoded,
    codes.info.parameterCount,
  );
}

/** The grid of a scale along `axis` of the codes, or why the scale does not fit. */
function axisGrid(weight: QuantizedWeight, parts: Parts): AxisGrid | string {
  const { codes, scale, zeroPoint } = parts;
  if (weight.grid.kind !== 'axis') return 'not a per-axis grid';
  const shape = codes.info.shape;
  const scales = scale.info.parameterCount;
  if (
    zeroPoint &&
    zeroPoint.info.parameterCount !== scales &&
    zeroPoint.info.parameterCount !== 1
  ) {
    return `its zero point has ${zeroPoint.info.parameterCount} values for ${scales} scales`;
  }
  const { blockSize } = weight.grid;
  if (scales === 1 && blockSize === 0) return { shape, axis: null, blockSize: 0 };
  const rank = shape.length;
  const axis = weight.grid.axis ?? 0;
  const normalized = axis < 0 ? axis + rank : axis;
  if (normalized < 0 || normalized >= rank) {
    return `axis ${axis} is outside the codes' ${rank} dimensions`;
  }
  const length = shape[normalized]!;
  if (blockSize > 0) {
    const expected = shape.map((dim, i) => (i === normalized ? Math.ceil(dim / blockSize) : dim));
    const actual = scale.info.shape;
    if (actual.length !== rank || actual.some((dim, i) => dim !== expected[i])) {
      return `scale of shape [${actual.join(', ')}] does not fit blocks of ${blockSize} along axis ${normalized} of [${shape.join(', ')}] (expected [${expected.join(', ')}])`;
    }
    return { shape, axis: normalized, blockSize };
  }
  if (scales !== length) {
    return `${scales} scales for ${length} channels along axis ${normalized} of [${shape.join(', ')}]`;
  }
  return { shape, axis: normalized, blockSize: 0 };
}

/** MatMulNBits' B: packed codes of the [K, N] weight. */
function decodeNBits(weight: QuantizedWeight, parts: Parts): TensorEntry {
  const { codes, scale, zeroPoint } = parts;
  if (weight.grid.kind !== 'nbits') throw new Error('not a MatMulNBits grid');
  const grid: NBitsGrid = weight.grid;
  const scheme = `MatMulNBits ${grid.bits}-bit`;
  const problem = nbitsProblem(grid, parts);
  if (problem) return undecoded(codes, parts.op, scheme, 'block', problem);
  const packedZeros = zeroPoint?.info.dtype === 'uint8';
  const middle = 1 << (grid.bits - 1);
  const decoded: DecodedValues = {
    codes: codes.data,
    codeDtype: codes.info.dtype,
    codeBits: grid.bits,
    signedCodes: false,
    params: zeroPoint ? [scale.data, zeroPoint.data] : [scale.data],
    plan: {
      kind: 'nbits',
      grid,
      scale: part(scale),
      ...(zeroPoint ? { zeroPoint: packedZeros ? ('packed' as const) : part(zeroPoint) } : {}),
    },
  };
  const count = grid.k * grid.n;
  let symmetric: boolean | undefined = true;
  if (zeroPoint && packedZeros) {
    symmetric =
      zeroPoint.info.parameterCount > MAX_ZERO_POINTS_READ
        ? undefined
        : nbitsZeroPoints(loadTensorData(zeroPoint.data), grid).every((zero) => zero === middle);
  } else if (zeroPoint) {
    symmetric = symmetricOf(zeroPoint, middle);
  }
  return withValues(
    codes,
    {
      shape: [grid.k, grid.n],
      encoding: {
        scheme,
        storedType: codes.info.dtype,
        bitsPerWeight: bitsPerWeight(parts, count),
        granularity: 'block',
        blockSize: grid.blockSize,
        ...(symmetric === undefined ? {} : { symmetric }),
        decodedBy: parts.op,
        notDecoded: null,
        countsCodes: true,
        blockScales: false,
      },
    },
    decoded,
    count,
  );
}

function nbitsZeroPoints(bytes: Uint8Array, grid: NBitsGrid): number[] {
  const zeros: number[] = [];
  const rowBytes = nbitsZeroPointBytes(grid);
  const mask = (1 << grid.bits) - 1;
  for (let col = 0; col < grid.n; col++) {
    for (let block = 0; block < nbitsBlocks(grid); block++) {
      const bit = block * grid.bits;
      zeros.push((bytes[col * rowBytes + (bit >> 3)]! >> (bit & 7)) & mask);
    }
  }
  return zeros;
}

function nbitsProblem(grid: NBitsGrid, parts: Parts): string | undefined {
  const { k, n, bits, blockSize } = grid;
  if (![2, 4, 8].includes(bits)) return `MatMulNBits with ${bits}-bit codes`;
  if (k <= 0 || n <= 0) return `MatMulNBits with K=${k}, N=${n}`;
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    return `block_size ${blockSize} is not a power of two from 16`;
  }
  const blocks = nbitsBlocks(grid);
  const blob = (blockSize * bits) / 8;
  const shape = parts.codes.info.shape;
  if (parts.codes.info.dtype !== 'uint8' || shape.join() !== [n, blocks, blob].join()) {
    return `B of ${parts.codes.info.dtype} [${shape.join(', ')}] is not uint8 [${n}, ${blocks}, ${blob}]`;
  }
  if (parts.scale.info.parameterCount !== n * blocks) {
    return `${parts.scale.info.parameterCount} scales for ${n * blocks} blocks`;
  }
  const zeroPoint = parts.zeroPoint;
  if (zeroPoint) {
    const expected = zeroPoint.info.dtype === 'uint8' ? n * nbitsZeroPointBytes(grid) : n * blocks;
    if (zeroPoint.info.parameterCount !== expected) {
      return `${zeroPoint.info.parameterCount} zero point values where ${expected} are needed`;
    }
    if (zeroPoint.info.dtype !== 'uint8' && !SCALE_DTYPES.has(zeroPoint.info.dtype)) {
      return `zero points of ${zeroPoint.info.dtype}`;
    }
  }
  return undefined;
}

/** Why the parts cannot be decoded at all (types LayerLens does not decode). */
function partsProblem(weight: QuantizedWeight, parts: Parts): string | undefined {
  const { codes, scale, zeroPoint } = parts;
  if (weight.grid.kind === 'axis' && !CODE_DTYPES.has(codes.info.dtype)) {
    return `codes of ${codes.info.dtype}`;
  }
  if (!SCALE_DTYPES.has(scale.info.dtype)) return `a scale of ${scale.info.dtype}`;
  if (zeroPoint && !isNumericDType(zeroPoint.info.dtype)) {
    return `a zero point of ${zeroPoint.info.dtype}`;
  }
  return undefined;
}

/**
 * The reader's entries with every quantized weight of `model` decoded (or marked with why
 * it is not); other entries are returned as they are.
 */
export function decodeQuantizedWeights(
  model: OnnxModel,
  entries: readonly TensorEntry[],
): readonly TensorEntry[] {
  const weights = quantizedWeights(model);
  if (weights.size === 0) return entries;
  return entries.map((entry, index) => {
    const weight = weights.get(index);
    if (!weight) return entry;
    const fallbackScheme =
      weight.grid.kind === 'nbits'
        ? `MatMulNBits ${weight.grid.bits}-bit`
        : `${entry.info.dtype} (${weight.op})`;
    const granularity = weight.grid.kind === 'nbits' ? 'block' : 'tensor';
    if (!weight.scale) {
      return undecoded(
        entry,
        weight.op,
        fallbackScheme,
        granularity,
        weight.problem ?? 'no scale found',
      );
    }
    const parts: Parts = {
      op: weight.op,
      codes: entry,
      scale: entries[weight.scale.index]!,
      ...(weight.zeroPoint ? { zeroPoint: entries[weight.zeroPoint.index]! } : {}),
    };
    const problem = weight.problem ?? partsProblem(weight, parts);
    if (problem) return undecoded(entry, weight.op, fallbackScheme, granularity, problem);
    if (weight.grid.kind === 'nbits') return decodeNBits(weight, parts);
    return decodeAxis(parts, axisGrid(weight, parts));
  });
}

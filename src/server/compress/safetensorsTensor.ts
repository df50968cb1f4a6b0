/**
 * One tensor of a safetensors compression, as a pure function of its bytes: what the new
 * file stores in its place and how far that is from the original. It runs in a worker
 * thread (jobs/compressWorker.ts) so that long work (an SVD) never blocks the server, and
 * a cancelled job stops at once (the worker is terminated).
 */
import * as path from 'node:path';
import type { CompressionOptions } from '../../shared/compress';
import { DTYPES, type DType } from '../../shared/dtypes';
import type { TensorInfo } from '../../shared/model';
import { decodeValues, type NumericDType } from '../analysis/decode';
import {
  dequantizeBlocks,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  type MatrixLayout,
} from './kernels';
import { factoriseLowRank, multiplyFactors } from './lowrank';

/** Suffix of the scale tensor next to an int8 tensor stored with `storeQuantized`. */
export const INT8_SCALE_SUFFIX = '.scale';

/** A tensor's shape seen as a matrix out × (product of the other axes), inputs along rows. */
function matrixLayout(shape: readonly number[]): MatrixLayout | undefined {
  if (shape.length < 2) return undefined;
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((product, dimension) => product * dimension, 1);
  if (rows === 0 || cols === 0) return undefined;
  return { rows, cols, inputAxis: 1 };
}

function asFloat32(values: Float32Array | Float64Array): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** float32 values → little-endian bytes of `dtype` (a float dtype). */
function encodeFloats(values: Float32Array, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'float32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'float16':
      return new Uint8Array(float32ToFloat16Bits(values).buffer);
    case 'bfloat16':
      return new Uint8Array(float32ToBfloat16Bits(values).buffer);
    case 'float64':
      return new Uint8Array(Float64Array.from(values).buffer);
    default:
      throw new RangeError(`cannot store float values as ${dtype}`);
  }
}

/**
 * Zero the elements of `bytes` (one `width`-byte element each) where `pruned` is zero and
 * the original was not: kept elements keep their exact bits in any float dtype.
 */
function zeroPruned(
  bytes: Uint8Array,
  original: ArrayLike<number>,
  pruned: Float32Array,
  width: number,
): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < pruned.length; i++) {
    if (pruned[i] === 0 && original[i] !== 0) out.fill(0, i * width, (i + 1) * width);
  }
  return out;
}

interface Outcome {
  /** Tensors written in place of the original (name, dtype, shape, bytes). */
  readonly tensors: readonly {
    name: string;
    dtype: DType;
    shape: readonly number[];
    bytes: Uint8Array;
  }[];
  /** The values the new file means, for the relative error. */
  readonly values: ArrayLike<number>;
  readonly detail: string;
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

/** Apply the method to one floating-point tensor; a string result means "skipped, because". */
async function compressTensor(
  info: Pick<TensorInfo, 'name' | 'dtype' | 'shape'>,
  bytes: Uint8Array,
  original: Float32Array | Float64Array,
  options: CompressionOptions,
  isCancelled: () => boolean,
): Promise<Outcome | string> {
  const { name, dtype, shape } = info;
  const width = DTYPES[dtype].bits / 8;
  const same = (data: Uint8Array, values: ArrayLike<number>, detail: string): Outcome => ({
    tensors: [{ name, dtype, shape, bytes: data }],
    values,
    detail,
  });
  const decodeStored = (data: Uint8Array, as: DType): Float32Array | Float64Array =>
    decodeValues(as as NumericDType, data, original.length);
  const layout = matrixLayout(shape);
  const needMatrix = `${shape.length === 1 ? 'a 1-D tensor (bias or norm)' : 'an empty tensor'} is kept as it is`;
  switch (options.method) {
    case 'prune': {
      const sparsity = options.sparsity ?? 0.5;
      const pruned = pruneMagnitude(asFloat32(original), sparsity);
      const data = zeroPruned(bytes, original, pruned, width);
      return same(
        data,
        decodeStored(data, dtype),
        `magnitude pruning to ${percent(sparsity)} zeros`,
      );
    }
    case 'nm': {
      if (!layout) return needMatrix;
      const n = options.n ?? 2;
      const m = options.m ?? 4;
      const pruned = pruneNM(asFloat32(original), layout, n, m);
      const data = zeroPruned(bytes, original, pruned, width);
      return same(data, decodeStored(data, dtype), `${n}:${m} pruning along the input dimension`);
    }
    case 'int8': {
      if (!layout) return needMatrix;
      const quantized = quantizeInt8PerChannel(asFloat32(original), layout);
      const dequantized = dequantizeBlocks(quantized, layout);
      if (options.storeQuantized) {
        return {
          tensors: [
            {
              name,
              dtype: 'int8',
              shape,
              bytes: new Uint8Array(
                quantized.q.buffer,
                quantized.q.byteOffset,
                quantized.q.byteLength,
              ),
            },
            {
              name: `${name}${INT8_SCALE_SUFFIX}`,
              dtype: 'float32',
              shape: [layout.rows],
              bytes: new Uint8Array(quantized.scales.buffer),
            },
          ],
          values: dequantized,
          detail: `int8 per channel, stored as I8 + ${name}${INT8_SCALE_SUFFIX} (F32)`,
        };
      }
      const data = encodeFloats(dequantized, dtype);
      return same(
        data,
        decodeStored(data, dtype),
        `int8 per channel round trip, stored as ${dtype}`,
      );
    }
    case 'int4': {
      if (!layout) return needMatrix;
      const blockSize = options.blockSize ?? 32;
      const quantized = quantizeInt4Blocks(asFloat32(original), layout, blockSize);
      const data = encodeFloats(dequantizeBlocks(quantized, layout), dtype);
      return same(
        data,
        decodeStored(data, dtype),
        `int4 block ${blockSize} round trip, stored as ${dtype}`,
      );
    }
    case 'lowrank': {
      if (!layout) return needMatrix;
      const { a, b, rank, fullRank } = await factoriseLowRank(
        original,
        layout.rows,
        layout.cols,
        { rank: options.rank, energy: options.energy },
        { isCancelled },
      );
      const product = await multiplyFactors(a, b, layout.rows, rank, layout.cols);
      const data = encodeFloats(product, dtype);
      return same(
        data,
        decodeStored(data, dtype),
        `rank ${rank} of ${fullRank} reconstruction, stored as ${dtype}`,
      );
    }
    case 'fp16':
    case 'bf16': {
      const target: DType = options.method === 'fp16' ? 'float16' : 'bfloat16';
      if (dtype === target) return `already ${target}`;
      const data = encodeFloats(asFloat32(original), target);
      return {
        tensors: [{ name, dtype: target, shape, bytes: data }],
        values: decodeStored(data, target),
        detail: `${dtype} → ${target}`,
      };
    }
  }
}

export interface TensorJob {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** The tensor's little-endian bytes (moved to the worker). */
  readonly bytes: Uint8Array;
  readonly options: CompressionOptions;
}

export interface WrittenTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

export type TensorJobResult =
  | { readonly kind: 'skipped'; readonly reason: string }
  | {
      readonly kind: 'done';
      readonly tensors: readonly WrittenTensor[];
      /** ‖W − Ŵ‖_F / ‖W‖_F of what the new file means against the original. */
      readonly relativeError: number;
      readonly detail: string;
    };

/**
 * Compress one floating-point tensor. A level the tensor cannot take (a rank that saves
 * nothing, a matrix beyond the SVD limits) is a skip with the reason, not a failure.
 */
export async function compressTensorJob(
  job: TensorJob,
  isCancelled: () => boolean = () => false,
): Promise<TensorJobResult> {
  const original = decodeValues(job.dtype as NumericDType, job.bytes, job.elementCount);
  let outcome: Outcome | string;
  try {
    outcome = await compressTensor(job, job.bytes, original, job.options, isCancelled);
  } catch (error) {
    if (
      !(error instanceof RangeError) &&
      !(error instanceof Error && error.name === 'LowRankRefusal')
    )
      throw error;
    outcome = error.message;
  }
  if (typeof outcome === 'string') return { kind: 'skipped', reason: outcome };
  return {
    kind: 'done',
    tensors: outcome.tensors,
    relativeError: relativeFrobeniusError(original, outcome.values),
    detail: outcome.detail,
  };
}

/** The buffers of a result, each once, to move back from the worker instead of copying. */
export function resultBuffers(result: TensorJobResult): ArrayBuffer[] {
  if (result.kind !== 'done') return [];
  return [...new Set(result.tensors.map((tensor) => tensor.bytes.buffer as ArrayBuffer))];
}

/**
 * The worker script. Bundled, this module is inside dist/server.js (or dist/cli.js) and
 * the worker is dist/compressWorker.js beside it; from source (tests), the .ts file.
 */
export function compressWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, '..', 'jobs', 'compressWorker.ts')
    : path.join(__dirname, 'compressWorker.js');
}

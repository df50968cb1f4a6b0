/**
 * Compression of a safetensors model into a new safetensors file that Hugging Face's
 * `safetensors` (and LayerLens) load. safetensors has no graph, so every method stores
 * tensors the consumer reads as they are:
 *
 * - prune, nm: the zeros written into the original dtype; kept values are bit-identical.
 * - int8, int4: fake quantization — the values int8 per output channel (or int4 per block)
 *   round-trips to, stored back in the original dtype.
 * - int8 with `storeQuantized`: real int8 storage, the convention written into the file's
 *   `__metadata__` (INT8_CONVENTION): `<name>` holds the I8 values q, `<name>.scale` the
 *   F32 scales s, one per output channel (first axis); the weight is q · s[channel].
 * - lowrank: the rank-r reconstruction W_r = A·B stored in place of W.
 * - fp16, bf16: floating-point tensors cast to F16 / BF16.
 *
 * Matrices: a weight of shape [out, in, …] is seen as out × (in·…), its input dimension
 * running along each row (N:M groups and int4 blocks follow the last axes, flattened).
 * One-dimensional tensors (biases, norms) are kept by every method but prune and the casts.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {
  CompressionOptions,
  CompressionReport,
  CompressRequest,
  TensorCompressionResult,
} from '../../shared/compress';
import { DTYPES, type DType } from '../../shared/dtypes';
import { MAX_IN_MEMORY_TENSOR_BYTES, MAX_SAFETENSORS_HEADER_BYTES } from '../../shared/limits';
import { decodeValues, type NumericDType } from '../analysis/decode';
import { safetensorsFormat } from '../formats/safetensors';
import { writeSafetensorsFile, type TensorToWrite } from '../formats/safetensorsWriter';
import { ModelFileError, type OpenedModel, type TensorEntry } from '../formats/types';
import type { CompressContext } from './index';
import {
  dequantizeBlocks,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  MAX_NM_GROUP,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  type MatrixLayout,
} from './kernels';
import { chooseRank, lowRankFactors, multiplyFactors, thinSvd } from './lowrank';
import { withOutputFiles, writeReport } from './output';
import { requestedTensors } from './targets';

/** Suffix of the scale tensor next to an int8 tensor stored with `storeQuantized`. */
export const INT8_SCALE_SUFFIX = '.scale';

/** The int8 storage convention, as written into `__metadata__` under `layerlens.int8`. */
export const INT8_CONVENTION =
  'symmetric int8 per output channel: tensor <name> holds int8 values q (I8, same shape as the original), ' +
  'tensor <name>.scale holds float32 scales s (F32, shape [out], one per index of the first axis); ' +
  'the weight is q * s[out] broadcast over the other axes';

const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16', 'float64']);

function validateOptions(source: string, options: CompressionOptions): void {
  const fail = (problem: string): never => {
    throw new RangeError(problem);
  };
  switch (options.method) {
    case 'prune': {
      const sparsity = options.sparsity ?? 0.5;
      if (!(sparsity >= 0 && sparsity < 1)) fail(`sparsity must be in [0, 1), got ${sparsity}`);
      return;
    }
    case 'nm': {
      const n = options.n ?? 2;
      const m = options.m ?? 4;
      if (!Number.isInteger(m) || m < 1 || m > MAX_NM_GROUP)
        fail(`m must be an integer in [1, ${MAX_NM_GROUP}], got ${m}`);
      if (!Number.isInteger(n) || n < 0 || n > m) fail(`n must be an integer in [0, m], got ${n}`);
      return;
    }
    case 'int4': {
      const blockSize = options.blockSize ?? 32;
      if (!Number.isInteger(blockSize) || blockSize < 1)
        fail(`block size must be a positive integer, got ${blockSize}`);
      return;
    }
    case 'lowrank':
      if (options.rank === undefined && options.energy === undefined)
        fail('low rank needs a rank or an energy target');
      return;
    case 'int8':
    case 'fp16':
    case 'bf16':
      return;
    default:
      throw new ModelFileError(source, `unknown compression method ${String(options.method)}`);
  }
}

/** A tensor's shape seen as a matrix out × (product of the other axes), inputs along rows. */
function matrixLayout(shape: readonly number[]): MatrixLayout | undefined {
  if (shape.length < 2) return undefined;
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((product, dimension) => product * dimension, 1);
  if (rows === 0 || cols === 0) return undefined;
  return { rows, cols, inputAxis: 1 };
}

/** The tensor's bytes, read from its file range (or built in memory). */
async function readTensorBytes(entry: TensorEntry): Promise<Uint8Array> {
  const { data } = entry;
  if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new ModelFileError(
      data.kind === 'file' ? data.path : entry.info.file,
      `tensor "${entry.info.name}" is ${data.length} bytes, more than the ${MAX_IN_MEMORY_TENSOR_BYTES} bytes LayerLens compresses in memory`,
    );
  }
  if (data.kind === 'memory') return data.load();
  const handle = await fs.open(data.path, 'r');
  try {
    const bytes = new Uint8Array(data.length);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await handle.read(
        bytes,
        filled,
        data.length - filled,
        data.offset + filled,
      );
      if (bytesRead === 0) {
        throw new ModelFileError(data.path, `the file ended inside tensor "${entry.info.name}"`);
      }
      filled += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
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
function compressTensor(
  info: TensorEntry['info'],
  bytes: Uint8Array,
  original: Float32Array | Float64Array,
  options: CompressionOptions,
): Outcome | string {
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
      const svd = thinSvd(original, layout.rows, layout.cols);
      const rank = chooseRank(svd, { rank: options.rank, energy: options.energy });
      const { a, b } = lowRankFactors(svd, rank);
      const product = multiplyFactors(a, b, layout.rows, rank, layout.cols);
      const data = encodeFloats(asFloat32(product), dtype);
      return same(
        data,
        decodeStored(data, dtype),
        `rank ${rank} of ${svd.singularValues.length} reconstruction, stored as ${dtype}`,
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

/** The `__metadata__` of a safetensors file (string values; others as JSON text). */
async function readMetadata(file: string): Promise<Record<string, string>> {
  const handle = await fs.open(file, 'r');
  try {
    const lengthBytes = new Uint8Array(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const length = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    if (length > MAX_SAFETENSORS_HEADER_BYTES) {
      throw new ModelFileError(file, `the header claims ${length} bytes, more than the limit`);
    }
    const text = new Uint8Array(length);
    await handle.read(text, 0, length, 8);
    const header = JSON.parse(new TextDecoder().decode(text)) as Record<string, unknown>;
    const metadata = header.__metadata__;
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return {};
    return Object.fromEntries(
      Object.entries(metadata).map(([key, value]) => [
        key,
        typeof value === 'string' ? value : JSON.stringify(value),
      ]),
    );
  } finally {
    await handle.close();
  }
}

/** Let the event loop answer other requests (a cancellation) between tensors. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function compressSafetensors(
  source: string,
  request: CompressRequest,
  context: CompressContext,
  model: OpenedModel,
): Promise<CompressionReport> {
  const started = performance.now();
  const { options } = request;
  const { signal, onProgress } = context;
  if (source.toLowerCase().endsWith('.json')) {
    throw new ModelFileError(
      source,
      'compressing a sharded model through its index is not supported; compress its shard files one by one',
    );
  }
  validateOptions(source, options);
  const targets = new Set(requestedTensors(model, request).map((entry) => entry.info.index));
  if (targets.size === 0) {
    throw new ModelFileError(source, 'the request names no tensor of this model');
  }
  if (options.method === 'int8' && options.storeQuantized) {
    const names = new Set(model.tensors.map((entry) => entry.info.name));
    for (const entry of model.tensors) {
      const scaleName = `${entry.info.name}${INT8_SCALE_SUFFIX}`;
      if (targets.has(entry.info.index) && names.has(scaleName)) {
        throw new ModelFileError(
          source,
          `tensor "${scaleName}" already exists, so "${entry.info.name}" cannot get its int8 scales under that name`,
        );
      }
    }
  }
  const metadata = await readMetadata(source);

  const outputMetadata: Record<string, string> = { ...metadata };
  if (options.method === 'int8' && options.storeQuantized)
    outputMetadata['layerlens.int8'] = INT8_CONVENTION;
  if (!outputMetadata.format) outputMetadata.format = 'pt';

  return withOutputFiles(source, options.method, request.outPath, async (files) => {
    // Compressed tensors go to a scratch file as they are made, so that memory holds one
    // tensor at a time; the model is then written from it (and from the source for the
    // tensors that stay as they are) once the header is known.
    const scratchPath = files.temp(`${files.path}.scratch`);
    const scratch = await fs.open(scratchPath, 'wx+');
    const plan: TensorToWrite[] = [];
    const results: TensorCompressionResult[] = [];
    let scratchBytes = 0;
    let fileBytesAfter = 0;
    const fromScratch = (offset: number, length: number) => async (): Promise<Uint8Array> => {
      const bytes = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await scratch.read(bytes, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new Error(`the scratch file ${scratchPath} ended early`);
        filled += bytesRead;
      }
      return bytes;
    };
    try {
      const total = model.tensors.length;
      for (const entry of model.tensors) {
        signal?.throwIfAborted();
        const { info } = entry;
        onProgress?.(plan.length, total, info.name);
        const copy = (): void => {
          plan.push({
            name: info.name,
            dtype: info.dtype,
            shape: info.shape,
            bytes: () => readTensorBytes(entry),
          });
        };
        if (!targets.has(info.index)) {
          copy();
          continue;
        }
        const skip = (detail: string): void => {
          results.push({
            name: info.name,
            bytesBefore: info.byteLength,
            bytesAfter: info.byteLength,
            relativeError: 0,
            detail,
            skipped: true,
          });
          copy();
        };
        if (!FLOAT_DTYPES.has(info.dtype)) {
          skip(`${info.dtype} is not a floating-point type`);
          continue;
        }
        const bytes = await readTensorBytes(entry);
        const original = decodeValues(info.dtype as NumericDType, bytes, info.parameterCount);
        let outcome: Outcome | string;
        try {
          outcome = compressTensor(info, bytes, original, options);
        } catch (error) {
          if (
            error instanceof RangeError ||
            (error instanceof Error && error.name === 'LowRankRefusal')
          ) {
            outcome = error.message;
          } else {
            throw error;
          }
        }
        if (typeof outcome === 'string') {
          skip(outcome);
        } else {
          for (const tensor of outcome.tensors) {
            await scratch.write(tensor.bytes, 0, tensor.bytes.byteLength, scratchBytes);
            plan.push({
              name: tensor.name,
              dtype: tensor.dtype,
              shape: tensor.shape,
              bytes: fromScratch(scratchBytes, tensor.bytes.byteLength),
            });
            scratchBytes += tensor.bytes.byteLength;
          }
          results.push({
            name: info.name,
            bytesBefore: info.byteLength,
            bytesAfter: outcome.tensors.reduce((sum, tensor) => sum + tensor.bytes.byteLength, 0),
            relativeError: relativeFrobeniusError(original, outcome.values),
            detail: outcome.detail,
            skipped: false,
          });
        }
        await yieldToEventLoop();
      }
      if (results.every((result) => result.skipped)) {
        const reasons = [...new Set(results.map((result) => result.detail))].slice(0, 3).join('; ');
        throw new ModelFileError(source, `nothing to compress with ${options.method}: ${reasons}`);
      }
      onProgress?.(total, total, 'writing');
      outputMetadata['layerlens.compression'] = JSON.stringify({
        source: path.basename(source),
        options,
        tensors: results.filter((result) => !result.skipped).length,
      });
      fileBytesAfter = await writeSafetensorsFile(files.temp(), plan, outputMetadata, signal);
    } finally {
      await scratch.close();
      await fs.rm(scratchPath, { force: true });
    }
    const temp = files.temp();
    const reread = await safetensorsFormat.open(temp);
    const expected = plan.map(
      (tensor) => `${tensor.name}:${tensor.dtype}:${tensor.shape.join('x')}`,
    );
    const actual = reread.tensors.map(
      ({ info }) => `${info.name}:${info.dtype}:${info.shape.join('x')}`,
    );
    if (expected.sort().join('\n') !== actual.sort().join('\n')) {
      throw new Error(`the written file does not read back with the tensors written: ${temp}`);
    }
    signal?.throwIfAborted();
    await files.commit();
    const report: CompressionReport = {
      source,
      output: files.path,
      reportPath: files.reportPath,
      method: options.method,
      options,
      fileBytesBefore: model.summary.fileBytes,
      fileBytesAfter,
      tensors: results,
      outputs: [],
      inputs: 'none: safetensors has no graph to run',
      validation: [
        `read back by the LayerLens safetensors reader: ${reread.tensors.length} tensors, header of ${fileBytesAfter - reread.tensors.reduce((sum, t) => sum + t.info.byteLength, 0)} bytes`,
        'no output deviation: a safetensors file has no graph to run; see the relative weight error per tensor',
      ],
      elapsedMs: Math.round(performance.now() - started),
    };
    return writeReport(files, report);
  });
}

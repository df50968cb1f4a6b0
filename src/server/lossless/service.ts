/**
 * Lossless packing for the server and the CLI: compressibility of a model's tensors
 * (computed in the lossless workers, cached per opened model), packing and unpacking
 * files, and per-tensor statistics of a fine-tune delta against its base model.
 */
import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import { byteLengthOf } from '../../shared/dtypes';
import { MAX_COMPRESSIBILITY_BATCH, MAX_IN_MEMORY_TENSOR_BYTES } from '../../shared/limits';
import type {
  CompressibilityResult,
  DeltaStatsResult,
  TensorCompressibility,
  TensorDeltaStats,
} from '../../shared/lossless';
import { decodeValues, isNumericDType } from '../analysis/decode';
import type { OpenedModel, TensorEntry } from '../formats/types';
import { isAbortError } from '../jobs/workerPool';
import { workerSourceOf } from '../jobs/computeStats';
import { storedTensor } from '../formats/decodedValues';
import type { ModelService } from '../modelService';
import { basePathOf, hasLlzMagic, readContainer, type LlzContainer } from './container';
import {
  losslessPool,
  poolRunner,
  type LosslessPool,
  type AnalyseJob,
  type AnalyseResult,
  type LosslessRunner,
} from './jobs';
import { extractTensor, packFile, unpackFile, type LosslessOptions } from './pack';

export class LosslessService {
  private pool: LosslessPool | undefined;
  private readonly compressibilityCache = new WeakMap<
    OpenedModel,
    Map<number, TensorCompressibility>
  >();
  /** Per model: each chunk key measured (jobs.ts chunkKey) → the tensor that holds it first. */
  private readonly chunkOwners = new WeakMap<OpenedModel, Map<string, number>>();

  /**
   * `pool`: lossless workers already started (losslessPool), which this service then owns
   * and disposes; without it, a pool of `workerCount` workers starts on first use.
   */
  constructor(
    private readonly models: ModelService,
    readonly workerCount: number,
    pool?: LosslessPool,
  ) {
    this.pool = pool;
  }

  /** Runs jobs in this service's worker pool (started on first use). */
  get runner(): LosslessRunner {
    this.pool ??= losslessPool(this.workerCount);
    return poolRunner(this.pool);
  }

  async compressibility(
    path: string,
    indices: readonly number[],
    signal?: AbortSignal,
  ): Promise<CompressibilityResult[]> {
    if (indices.length > MAX_COMPRESSIBILITY_BATCH) {
      throw new RangeError(
        `at most ${MAX_COMPRESSIBILITY_BATCH} tensors per compressibility request`,
      );
    }
    const model = await this.models.openedModel(path);
    let cache = this.compressibilityCache.get(model);
    if (!cache) {
      cache = new Map();
      this.compressibilityCache.set(model, cache);
    }
    let owners = this.chunkOwners.get(model);
    if (!owners) {
      owners = new Map();
      this.chunkOwners.set(model, owners);
    }
    const chunkOwners = owners;
    if (signal) setMaxListeners(indices.length + 10, signal);
    const runner = this.runner;
    const stored = await storedDeltaSizes(path, model);
    const analysed = await Promise.all(
      indices.map(async (index): Promise<AnalyseResult | CompressibilityResult> => {
        const entry = model.tensors[index];
        if (!Number.isInteger(index) || !entry)
          return { index, error: `no tensor with index ${index}` };
        const known = cache.get(index);
        if (known) return known;
        try {
          return await analyseTensor(runner, entry, signal);
        } catch (error) {
          if (isAbortError(error)) throw error;
          return { index, error: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
    // Chunks are claimed in the order asked (tensor order from the webview and the CLI),
    // not in the order the workers finish: the first of two equal tensors owns them.
    return analysed.map((outcome, i): CompressibilityResult => {
      if (!('op' in outcome)) return outcome;
      const index = indices[i]!;
      // A delta's tensor is stored as its XOR with the base: report what it really takes.
      const deltaBytes = stored.get(index);
      const result = toCompressibility(
        index,
        deltaBytes === undefined ? outcome : { ...outcome, packedBytes: deltaBytes },
        deltaBytes === undefined ? repeatedBytes(outcome, index, chunkOwners) : 0,
      );
      cache.set(index, result);
      return result;
    });
  }

  pack(path: string, options: LosslessOptions = {}) {
    return packFile(path, { runner: this.runner, ...options });
  }

  unpack(path: string, options: LosslessOptions = {}) {
    return unpackFile(path, { runner: this.runner, ...options });
  }

  extract(path: string, tensor: string, options: LosslessOptions & { out: string }) {
    return extractTensor(path, tensor, { runner: this.runner, ...options });
  }

  /**
   * For a delta container: each tensor's difference from the base model. Tensors that are
   * not stored as deltas get an error entry.
   */
  async deltaStats(
    path: string,
    indices: readonly number[],
    base?: string,
  ): Promise<DeltaStatsResult[]> {
    if (indices.length > MAX_COMPRESSIBILITY_BATCH) {
      throw new RangeError(`at most ${MAX_COMPRESSIBILITY_BATCH} tensors per delta request`);
    }
    const model = await this.models.openedModel(path);
    const container = await readContainer(path);
    const basePath = await basePathOf(container, base);
    return indices.map((index): DeltaStatsResult => {
      const entry = model.tensors[index];
      if (!Number.isInteger(index) || !entry)
        return { index, error: `no tensor with index ${index}` };
      try {
        return deltaOfTensor(container, basePath, entry);
      } catch (error) {
        return { index, error: error instanceof Error ? error.message : String(error) };
      }
    });
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = undefined;
  }
}

/**
 * For a packed fine-tune delta: tensor index → bytes its XOR-coded chunks take in the
 * container. Empty for any other file.
 */
async function storedDeltaSizes(path: string, model: OpenedModel): Promise<Map<number, number>> {
  const sizes = new Map<number, number>();
  let head: Uint8Array;
  try {
    const fd = fs.openSync(path, 'r');
    try {
      head = new Uint8Array(8);
      fs.readSync(fd, head, 0, 8, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return sizes;
  }
  if (!hasLlzMagic(head)) return sizes;
  const container = await readContainer(path);
  if (!container.index.base) return sizes;
  const byOffset = new Map<number, number>();
  for (const segment of container.index.segments) {
    if (segment.kind === 'tensor' && segment.xor) {
      byOffset.set(
        segment.offset,
        segment.chunks.reduce((sum, [, length]) => sum + length, 0),
      );
    }
  }
  for (const { info } of model.tensors) {
    const bytes = info.byteOffset === null ? undefined : byOffset.get(info.byteOffset);
    if (bytes !== undefined) sizes.set(info.index, bytes);
  }
  return sizes;
}

/**
 * Coded bytes of the tensor's chunks that repeat a chunk already measured (of another
 * tensor, or earlier in this one): a pack stores those once, as packFile does. Claims
 * the tensor's other chunks in `owners`.
 */
function repeatedBytes(result: AnalyseResult, index: number, owners: Map<string, number>): number {
  let repeated = 0;
  for (const [key, payloadBytes] of result.chunks) {
    if (owners.has(key)) repeated += payloadBytes;
    else owners.set(key, index);
  }
  return repeated;
}

function toCompressibility(
  index: number,
  result: AnalyseResult,
  repeated: number,
): TensorCompressibility {
  const raw = Math.max(1, result.rawBytes);
  return {
    index,
    rawBytes: result.rawBytes,
    packedBytes: result.packedBytes,
    repeatedBytes: repeated,
    ratio: result.rawBytes > 0 ? result.packedBytes / raw : 1,
    exponentEntropyBits: result.exponentEntropyBits,
    boundRatio: result.boundBytes === null ? null : result.boundBytes / raw,
  };
}

async function analyseTensor(
  runner: LosslessRunner,
  entry: TensorEntry,
  signal?: AbortSignal,
): Promise<AnalyseResult> {
  const { info } = entry;
  // A quantized weight is packed as its stored codes, not as the values decoded from them.
  const { data, dtype } = storedTensor(entry);
  if (data.kind === 'memory' && !data.packed) {
    // Values only this thread can build: made here and moved to the worker.
    if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
      throw new Error(
        `tensor "${info.name}" would need ${data.length} bytes in memory, more than the limit of ${MAX_IN_MEMORY_TENSOR_BYTES}`,
      );
    }
    const bytes = data.load().slice();
    const job: AnalyseJob = { op: 'analyse', dtype, source: { kind: 'memory', bytes } };
    return (await runner(job, signal, [bytes.buffer as ArrayBuffer])) as AnalyseResult;
  }
  // A file's range or a packed file's: the worker reads it.
  const job: AnalyseJob = { op: 'analyse', dtype, source: workerSourceOf(data)! };
  return (await runner(job, signal)) as AnalyseResult;
}

function readRange(filePath: string, offset: number, length: number): Uint8Array {
  const fd = fs.openSync(filePath, 'r');
  try {
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const read = fs.readSync(fd, bytes, filled, length - filled, offset + filled);
      if (read === 0) throw new Error(`${filePath} ended before byte ${offset + length}`);
      filled += read;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

function deltaOfTensor(
  container: LlzContainer,
  basePath: string | null,
  entry: TensorEntry,
): TensorDeltaStats {
  const { info, data } = entry;
  const segment = container.index.segments.find(
    (candidate) =>
      candidate.kind === 'tensor' && candidate.offset === info.byteOffset && candidate.xor,
  );
  if (!segment) throw new Error(`tensor "${info.name}" is not stored as a delta of the base model`);
  if (!basePath) throw new Error('the container is not a fine-tune delta');
  if (!isNumericDType(info.dtype))
    throw new Error(`tensor "${info.name}" holds ${info.dtype} values`);
  if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new Error(`tensor "${info.name}" is larger than ${MAX_IN_MEMORY_TENSOR_BYTES} bytes`);
  }
  const tuned =
    data.kind === 'memory' ? data.load() : readRange(data.path, data.offset, data.length);
  const base = readRange(basePath, segment.baseOffset!, segment.length);
  const count = info.parameterCount;
  const elementBytes = byteLengthOf(info.dtype, count) / Math.max(1, count);
  const tunedValues = decodeValues(info.dtype, tuned, count);
  const baseValues = decodeValues(info.dtype, base, count);
  let deltaSquares = 0;
  let baseSquares = 0;
  let identical = 0;
  for (let i = 0; i < count; i++) {
    const d = tunedValues[i]! - baseValues[i]!;
    if (Number.isFinite(d)) deltaSquares += d * d;
    const b = baseValues[i]!;
    if (Number.isFinite(b)) baseSquares += b * b;
  }
  // Bit-identical elements, compared on the stored bytes (whole bytes per element where it has them).
  if (Number.isInteger(elementBytes) && elementBytes > 0) {
    for (let i = 0; i < count; i++) {
      let same = true;
      for (let k = i * elementBytes; k < (i + 1) * elementBytes; k++) {
        if (tuned[k] !== base[k]) {
          same = false;
          break;
        }
      }
      if (same) identical++;
    }
  } else {
    for (let i = 0; i < count; i++) if (tunedValues[i] === baseValues[i]) identical++;
  }
  const deltaNorm = Math.sqrt(deltaSquares);
  const baseNorm = Math.sqrt(baseSquares);
  return {
    index: info.index,
    deltaNorm,
    relativeDelta: baseNorm > 0 ? deltaNorm / baseNorm : null,
    identicalFraction: count > 0 ? identical / count : 1,
  };
}

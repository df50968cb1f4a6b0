/**
 * Pack a model file into a `.llz` container, unpack it byte for byte, extract one tensor,
 * and the same against a base model for fine-tune deltas (tensors stored as the XOR with
 * the base's). Files are streamed chunk by chunk; chunks are coded in parallel by the
 * runner's workers and written in order. Outputs go to a temporary file that is linked
 * to its final name only when complete, and never over an existing file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  LLZ_CHUNK_BYTES,
  LLZ_CHUNKS_IN_FLIGHT,
  MAX_LLZ_CHUNK_BYTES,
  MAX_LLZ_STRUCTURE_BYTES,
} from '../../shared/limits';
import { PACKED_EXTENSION, type ModelFormat } from '../../shared/model';
import { openModelFile } from '../formats/registry';
import { isShardIndex, isSplitModel } from '../formats/shardIndex';
import { readExactly } from '../formats/fileRange';
import { ModelFileError, type OpenedModel, type TensorEntry } from '../formats/types';
import { JobAbortedError } from '../jobs/workerPool';
import { chosenOrDefault } from '../outputPaths';
import { temporaryPath } from '../tempFiles';
import { BufferPool } from './bufferPool';
import { layoutOf, type ByteLayout } from './byteGroups';
import {
  chunkRawLength,
  encodeIndex,
  LLZ_HEADER_BYTES,
  LLZ_VERSION,
  llzHeader,
  llzTrailer,
  basePathOf,
  chunkDigest,
  hasLlzMagic,
  chunkHashOf,
  originalDigest,
  readContainer,
  type LlzChunk,
  type LlzContainer,
  type LlzIndex,
  type LlzSegment,
} from './container';
import {
  CHUNKS_PER_JOB,
  chunkKey,
  chunksPerJob,
  fileDecodeChunksPerJob,
  inProcessRunner,
  type DecodeJobChunk,
  type DecodeResult,
  type EncodeResult,
  type LosslessRunner,
} from './jobs';
import { orderedPipeline } from '../jobs/orderedPipeline';

export const LLZ_EXTENSION = PACKED_EXTENSION;

export interface LosslessOptions {
  /** Output file; a default in the output folder (`folder`, outputPaths.ts) when absent. */
  readonly out?: string;
  /** `layerlens.output.folder`: where the default output goes (empty: beside the input). */
  readonly folder?: string;
  /** Base model: packing stores matching tensors as XOR deltas; unpacking needs it back. */
  readonly base?: string;
  readonly runner?: LosslessRunner;
  readonly signal?: AbortSignal;
  /** Called as bytes of the original are processed. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Chunk size for packing (tests use small ones); LLZ_CHUNK_BYTES when absent. */
  readonly chunkBytes?: number;
}

export interface PackResult {
  readonly out: string;
  readonly format: ModelFormat;
  readonly originalBytes: number;
  readonly packedBytes: number;
  /** The chunk digest of the original (container.ts chunkDigest), as the container records it. */
  readonly digest: string;
  readonly tensors: number;
  /** Tensors stored as XOR with the base model. */
  readonly deltaTensors: number;
  readonly base: string | null;
}

export interface UnpackResult {
  readonly out: string;
  readonly bytes: number;
  /**
   * What the bytes written were checked by: their chunk digest (container.ts chunkDigest),
   * or, unpacking a container of version 1–3, the file's SHA-256.
   */
  readonly digest: string;
}

interface PlannedSegment {
  readonly kind: 'tensor' | 'other';
  readonly offset: number;
  readonly length: number;
  readonly tensor?: TensorEntry;
  readonly baseOffset?: number;
}

/** Jobs in flight: enough to keep every worker of a small pool busy while the main thread waits its turn. */
const jobsInFlight = Math.max(8, Math.ceil(LLZ_CHUNKS_IN_FLIGHT / CHUNKS_PER_JOB));

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new JobAbortedError();
}

async function fileExists(filePath: string): Promise<boolean> {
  try {
    await fs.lstat(filePath);
    return true;
  } catch {
    return false;
  }
}

/** How a tensor's bytes are grouped for coding: ggml blocks as plain bytes, others by dtype. */
function tensorLayout(entry: TensorEntry): ByteLayout {
  return entry.data.blocks ? 'bytes' : layoutOf(entry.info.dtype);
}

/** Tensors stored as one range of the model file itself, in file order, without overlaps. */
function tensorRanges(model: OpenedModel): TensorEntry[] {
  const inFile = model.tensors
    .filter((entry) => entry.data.kind === 'file' && entry.data.path === model.path)
    .sort(
      (a, b) =>
        (a.data.kind === 'file' ? a.data.offset : 0) - (b.data.kind === 'file' ? b.data.offset : 0),
    );
  const ranges: TensorEntry[] = [];
  let end = 0;
  for (const entry of inFile) {
    if (entry.data.kind !== 'file' || entry.data.length === 0 || entry.data.offset < end) continue;
    ranges.push(entry);
    end = entry.data.offset + entry.data.length;
  }
  return ranges;
}

function planSegments(
  size: number,
  tensors: readonly TensorEntry[],
  base: OpenedModel | null,
): PlannedSegment[] {
  const baseByName = new Map<string, TensorEntry>();
  for (const entry of base ? tensorRanges(base) : []) baseByName.set(entry.info.name, entry);
  const segments: PlannedSegment[] = [];
  let position = 0;
  for (const tensor of tensors) {
    if (tensor.data.kind !== 'file') continue;
    const { offset, length } = tensor.data;
    if (offset > position)
      segments.push({ kind: 'other', offset: position, length: offset - position });
    const match = baseByName.get(tensor.info.name);
    const matches =
      match &&
      match.data.kind === 'file' &&
      match.info.dtype === tensor.info.dtype &&
      match.data.blocks === tensor.data.blocks &&
      match.data.length === length &&
      match.info.shape.join(',') === tensor.info.shape.join(',');
    segments.push({
      kind: 'tensor',
      offset,
      length,
      tensor,
      ...(matches && match.data.kind === 'file' ? { baseOffset: match.data.offset } : {}),
    });
    position = offset + length;
  }
  if (position < size) segments.push({ kind: 'other', offset: position, length: size - position });
  return segments;
}

async function sha256OfFile(filePath: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(filePath, 'r');
  try {
    const buffer = new Uint8Array(4 * 1024 * 1024);
    for (let position = 0; ;) {
      checkAborted(signal);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/**
 * A temporary output for `finalPath` (tempFiles.ts); `commit` links it to the final name (refusing an
 * existing file) and `discard` removes it.
 */
async function temporaryOutput(finalPath: string) {
  if (await fileExists(finalPath)) {
    throw new ModelFileError(
      finalPath,
      'already exists; LayerLens never overwrites a file (choose another output)',
    );
  }
  await fs.mkdir(path.dirname(finalPath), { recursive: true });
  const temporary = temporaryPath(finalPath);
  let handle: fs.FileHandle;
  try {
    // Read as well as written: packing compares a payload with an earlier one it wrote.
    handle = await fs.open(temporary, 'wx+');
  } catch (error) {
    throw new ModelFileError(temporary, `cannot be created (${(error as Error).message})`);
  }
  let open = true;
  const temporaryFile = temporary;
  const close = async () => {
    if (open) {
      open = false;
      await handle.close();
    }
  };
  return {
    handle,
    path: temporaryFile,
    async commit(): Promise<void> {
      await handle.sync();
      await close();
      try {
        await fs.link(temporary, finalPath);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          await fs.rm(temporary, { force: true });
          throw new ModelFileError(
            finalPath,
            'appeared while writing; LayerLens never overwrites a file',
          );
        }
        // File systems without hard links: rename, after checking once more.
        if (await fileExists(finalPath)) {
          await fs.rm(temporary, { force: true });
          throw new ModelFileError(
            finalPath,
            'appeared while writing; LayerLens never overwrites a file',
          );
        }
        await fs.rename(temporary, finalPath);
        return;
      }
      await fs.rm(temporary, { force: true });
    },
    async discard(): Promise<void> {
      await close().catch(() => {});
      await fs.rm(temporary, { force: true });
    },
  };
}

/** Bytes written between two early flushes of an output (earlyFlusher). */
const EARLY_FLUSH_BYTES = 128 * 1024 * 1024;

/**
 * Flushes an output being written to disk as it grows (fdatasync every EARLY_FLUSH_BYTES,
 * one at a time, off the thread that writes), so that the fsync of its commit finds little
 * left to write instead of the whole file: on a 1.6 GB unpack that fsync alone took 1.3 s.
 * An early flush that fails is ignored: the commit's fsync reports the error.
 */
function earlyFlusher(handle: fs.FileHandle) {
  let pending: Promise<void> | null = null;
  let flushedAt = 0;
  return {
    /** `bytes` of the output are written. */
    written(bytes: number): void {
      if (pending || bytes - flushedAt < EARLY_FLUSH_BYTES) return;
      flushedAt = bytes;
      pending = handle
        .datasync()
        .catch(() => {})
        .finally(() => {
          pending = null;
        });
    },
    /** Wait for the flush in flight (before the file is synced, closed or removed). */
    async settle(): Promise<void> {
      await pending;
    },
  };
}

async function openFileForReading(filePath: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(filePath, 'r');
  } catch {
    throw new ModelFileError(filePath, 'the file does not exist or cannot be read');
  }
}

/**
 * Open a model that is one file holding its own tensors: not a shard index (its tensors are
 * in other files) and not already a packed file.
 */
async function openSingleModel(filePath: string, what: string): Promise<OpenedModel> {
  const model = await openModelFile(filePath);
  const handle = await openFileForReading(filePath);
  let head: Uint8Array;
  try {
    head = await readExactly(
      handle,
      filePath,
      0,
      Math.min(LLZ_HEADER_BYTES, (await handle.stat()).size),
    );
  } finally {
    await handle.close();
  }
  if (hasLlzMagic(head)) throw new ModelFileError(filePath, 'is already a packed file');
  if (isShardIndex(model.summary)) {
    throw new ModelFileError(
      filePath,
      `${what}: this index keeps its tensors in shards (${model.summary.dataFiles.join(', ')}); pack each shard`,
    );
  }
  if (isSplitModel(model.summary)) {
    throw new ModelFileError(
      filePath,
      `${what}: this split model keeps its tensors in ${model.summary.dataFiles.length + 1} files; LayerLens packs models held in one file`,
    );
  }
  return model;
}

/** Pack a `.safetensors` or `.onnx` file (optionally as a delta against `options.base`). */
export async function packFile(input: string, options: LosslessOptions = {}): Promise<PackResult> {
  const source = path.resolve(input);
  if (source.toLowerCase().endsWith(LLZ_EXTENSION)) {
    throw new ModelFileError(source, 'is already a packed file');
  }
  const model = await openSingleModel(source, 'only single model files can be packed');
  const basePath = options.base ? path.resolve(options.base) : null;
  const base = basePath
    ? await openSingleModel(basePath, 'the base must be a single model file')
    : null;
  const out = chosenOrDefault(
    source,
    options.out,
    `${path.basename(source)}${LLZ_EXTENSION}`,
    options.folder,
  );
  const chunkBytes = options.chunkBytes ?? LLZ_CHUNK_BYTES;
  if (chunkBytes < 64 || chunkBytes > MAX_LLZ_CHUNK_BYTES || chunkBytes % 64 !== 0) {
    throw new RangeError(
      `chunk size ${chunkBytes} is not a multiple of 64 up to ${MAX_LLZ_CHUNK_BYTES}`,
    );
  }
  const runner = options.runner ?? inProcessRunner;
  const sourceHandle = await openFileForReading(source);
  const baseHandle = basePath ? await openFileForReading(basePath) : null;
  let output: Awaited<ReturnType<typeof temporaryOutput>> | undefined;
  let flusher: ReturnType<typeof earlyFlusher> | undefined;
  try {
    const { size } = await sourceHandle.stat();
    const baseIdentity = basePath
      ? {
          size: (await baseHandle!.stat()).size,
          sha256: await sha256OfFile(basePath, options.signal),
        }
      : null;
    const plan = planSegments(size, tensorRanges(model), base);
    const structureBytes = plan
      .filter((segment) => segment.kind === 'other')
      .reduce((sum, segment) => sum + segment.length, 0);
    if (structureBytes > MAX_LLZ_STRUCTURE_BYTES) {
      throw new ModelFileError(
        source,
        `its structure (non-tensor bytes) is ${structureBytes} bytes, more than the ${MAX_LLZ_STRUCTURE_BYTES} a packed file may hold`,
      );
    }
    output = await temporaryOutput(out);
    const writer = output.handle;
    flusher = earlyFlusher(writer);
    await writer.write(llzHeader(), 0, LLZ_HEADER_BYTES, 0);
    let writePosition = LLZ_HEADER_BYTES;
    // Runs of consecutive chunks of one segment per job (chunksPerJob).
    const jobs = plan.flatMap((segment, segmentIndex) => {
      const runBytes = chunkBytes * chunksPerJob(Math.ceil(segment.length / chunkBytes));
      return Array.from({ length: Math.ceil(segment.length / runBytes) }, (_, run) => ({
        segmentIndex,
        offset: segment.offset + run * runBytes,
        length: Math.min(runBytes, segment.length - run * runBytes),
        baseOffset:
          segment.baseOffset === undefined ? undefined : segment.baseOffset + run * runBytes,
      }));
    });
    const chunksOf = plan.map((): LlzChunk[] => []);
    // Workers read their runs from the source themselves and code them into reused
    // buffers (a payload never exceeds its chunk by more than one byte).
    const outputs = new BufferPool(chunkBytes * CHUNKS_PER_JOB + CHUNKS_PER_JOB, jobsInFlight + 1);
    /** Each job's chunk hashes, in the order of the file. */
    const digests: Uint8Array[] = [];
    let done = 0;
    /** Payloads written (not XOR deltas), by CRC and lengths → their offsets. */
    const written = new Map<string, number[]>();
    /** The offset of an earlier payload equal to `payload`, read back to compare. */
    const earlierCopy = async (key: string, payload: Uint8Array) => {
      for (const offset of written.get(key) ?? []) {
        const earlier = await readExactly(writer, out, offset, payload.length);
        if (Buffer.from(earlier.buffer).equals(payload)) return offset;
      }
      return undefined;
    };
    await orderedPipeline(
      jobs.length,
      jobsInFlight,
      async (i) => {
        checkAborted(options.signal);
        const job = jobs[i]!;
        const segment = plan[job.segmentIndex]!;
        const baseBytes =
          job.baseOffset === undefined
            ? undefined
            : await readExactly(baseHandle!, basePath!, job.baseOffset, job.length);
        const into = outputs.take(job.length + CHUNKS_PER_JOB);
        const transfer = [into.buffer, ...(baseBytes ? [baseBytes.buffer] : [])];
        return runner(
          {
            op: 'encode',
            layout: segment.tensor ? tensorLayout(segment.tensor) : 'bytes',
            generic: segment.kind === 'other',
            bytesFrom: {
              fd: sourceHandle.fd,
              path: source,
              position: job.offset,
              length: job.length,
            },
            digests: chunkHashOf(LLZ_VERSION)!,
            chunkBytes,
            into,
            ...(baseBytes ? { base: baseBytes } : {}),
          },
          // Not cancelled in the worker: a job reading the source must end before it closes
          // (a cancel is seen before the next job starts).
          undefined,
          transfer as ArrayBuffer[],
        ) as Promise<EncodeResult>;
      },
      async (i, result) => {
        const job = jobs[i]!;
        const xor = job.baseOffset !== undefined;
        const chunks = chunksOf[job.segmentIndex]!;
        // Payloads stored one after the other are written together: from `pendingAt` in
        // the job's payload, `pendingLength` bytes, to go at `writePosition`.
        let pendingAt = 0;
        let pendingLength = 0;
        const flush = async () => {
          if (pendingLength > 0) {
            await writer.write(result.payload, pendingAt, pendingLength, writePosition);
            writePosition += pendingLength;
          }
          pendingLength = 0;
        };
        // A chunk equal to an earlier one (duplicated tensors are common in exported
        // graphs) points at that chunk's payload instead of storing it again.
        for (let c = 0, at = 0; c < result.payloadLengths.length; c++) {
          const length = result.payloadLengths[c]!;
          const crc = result.checks[c]!;
          const payload = result.payload.subarray(at, at + length);
          const rawLength = Math.min(chunkBytes, job.length - c * chunkBytes);
          const key = chunkKey(crc, rawLength, length);
          // An earlier copy may be among the pending payloads: write them before comparing.
          if (!xor && written.has(key)) await flush();
          const earlier = xor ? undefined : await earlierCopy(key, payload);
          if (earlier !== undefined) {
            await flush();
            chunks.push([earlier, length, crc]);
          } else {
            if (pendingLength === 0) pendingAt = at;
            const position = writePosition + pendingLength;
            chunks.push([position, length, crc]);
            if (!xor) written.set(key, [...(written.get(key) ?? []), position]);
            pendingLength += length;
          }
          at += length;
        }
        await flush();
        digests.push(result.digests!);
        outputs.give(result.payload);
        done += job.length;
        flusher!.written(writePosition);
        options.onProgress?.(done, size);
      },
    );
    checkAborted(options.signal);
    const segments: LlzSegment[] = plan.map((segment, i) => ({
      kind: segment.kind,
      offset: segment.offset,
      length: segment.length,
      ...(segment.tensor
        ? { name: segment.tensor.info.name, dtype: segment.tensor.info.dtype }
        : {}),
      layout: segment.tensor ? tensorLayout(segment.tensor) : 'bytes',
      xor: segment.baseOffset !== undefined,
      ...(segment.baseOffset !== undefined ? { baseOffset: segment.baseOffset } : {}),
      chunks: chunksOf[i]!,
    }));
    const digest = chunkDigest(digests);
    const index: LlzIndex = {
      version: LLZ_VERSION,
      original: { name: path.basename(source), size, digest, format: model.summary.format },
      base:
        basePath && baseIdentity
          ? {
              path: path.relative(path.dirname(out), basePath).split(path.sep).join('/'),
              ...baseIdentity,
            }
          : null,
      chunkBytes,
      segments,
    };
    const indexBytes = encodeIndex(index);
    await writer.write(indexBytes, 0, indexBytes.length, writePosition);
    const trailer = llzTrailer(writePosition, indexBytes.length);
    await writer.write(trailer, 0, trailer.length, writePosition + indexBytes.length);
    const packedBytes = writePosition + indexBytes.length + trailer.length;
    if ((await sourceHandle.stat()).size !== size) {
      throw new ModelFileError(source, 'the file changed while it was being packed');
    }
    await flusher?.settle();
    await output.commit();
    output = undefined;
    return {
      out,
      format: model.summary.format,
      originalBytes: size,
      packedBytes,
      digest,
      tensors: segments.filter((s) => s.kind === 'tensor').length,
      deltaTensors: segments.filter((s) => s.xor).length,
      base: basePath,
    };
  } finally {
    await flusher?.settle();
    await output?.discard();
    await sourceHandle.close();
    await baseHandle?.close();
  }
}

/** Check that `basePath` is the base model the container was packed against. */
export async function verifyBase(
  container: LlzContainer,
  basePath: string,
  signal?: AbortSignal,
): Promise<void> {
  const expected = container.index.base!;
  let size: number;
  try {
    size = (await fs.stat(basePath)).size;
  } catch {
    throw new ModelFileError(
      basePath,
      `the base model of ${path.basename(container.path)} is missing (pass it with --base)`,
    );
  }
  if (size !== expected.size || (await sha256OfFile(basePath, signal)) !== expected.sha256) {
    throw new ModelFileError(
      basePath,
      `is not the base model ${path.basename(container.path)} was packed against (its size or SHA-256 differs)`,
    );
  }
}

/** Default output of unpacking: the container's name without `.llz`. */
function defaultUnpackPath(container: string): string {
  return container.toLowerCase().endsWith(LLZ_EXTENSION)
    ? container.slice(0, -LLZ_EXTENSION.length)
    : `${container}.unpacked`;
}

interface ChunkRef {
  readonly segment: LlzSegment;
  readonly segmentIndex: number;
  readonly chunk: number;
}

/**
 * Consecutive chunks of one segment, decoded by one job: fileDecodeChunksPerJob, or
 * chunksPerJob for a delta's segment (its base bytes are read here and moved to the job).
 */
function runsOf(refs: readonly ChunkRef[]): ChunkRef[][] {
  const runs: ChunkRef[][] = [];
  for (const ref of refs) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    const perJob = ref.segment.xor ? chunksPerJob : fileDecodeChunksPerJob;
    if (
      run &&
      last &&
      run.length < perJob(ref.segment.chunks.length) &&
      last.segmentIndex === ref.segmentIndex &&
      last.chunk + 1 === ref.chunk
    ) {
      run.push(ref);
    } else {
      runs.push([ref]);
    }
  }
  return runs;
}

/** The payload ranges of `run` in the container, payloads that follow each other joined. */
function payloadRanges(run: readonly ChunkRef[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const { segment, chunk } of run) {
    const [offset, length] = segment.chunks[chunk]!;
    const last = ranges.at(-1);
    if (last && last[0] + last[1] === offset) last[1] += length;
    else ranges.push([offset, length]);
  }
  return ranges;
}

/**
 * Decode chunks in order into an open file (`target`, from its position 0) in parallel
 * through the runner: each job reads its payloads from the container and writes its bytes
 * itself. Returns each job's chunk hashes in order (none before container version 4).
 */
async function decodeChunks(
  container: LlzContainer,
  refs: readonly ChunkRef[],
  containerHandle: fs.FileHandle,
  baseHandle: fs.FileHandle | null,
  basePath: string | null,
  options: LosslessOptions,
  target: { readonly fd: number; readonly path: string; readonly sparse: boolean },
): Promise<Uint8Array[]> {
  const runner = options.runner ?? inProcessRunner;
  const { index } = container;
  const total = refs.reduce((sum, ref) => sum + chunkRawLength(index, ref.segment, ref.chunk), 0);
  const runs = runsOf(refs);
  const digests: Uint8Array[] = [];
  let position = 0;
  let done = 0;
  await orderedPipeline(
    runs.length,
    jobsInFlight,
    async (i) => {
      checkAborted(options.signal);
      const run = runs[i]!;
      const { segment, segmentIndex, chunk: first } = run[0]!;
      const chunks: DecodeJobChunk[] = run.map(({ chunk }) => ({
        payloadLength: segment.chunks[chunk]![1],
        rawLength: chunkRawLength(index, segment, chunk),
        crc: segment.chunks[chunk]![2],
        where:
          segment.kind === 'tensor'
            ? `chunk ${chunk} of tensor "${segment.name}"`
            : `chunk ${chunk} of segment ${segmentIndex}`,
      }));
      const rawLength = chunks.reduce((sum, chunk) => sum + chunk.rawLength, 0);
      const at = position;
      position += rawLength;
      const base =
        segment.xor && baseHandle
          ? await readExactly(
              baseHandle,
              basePath!,
              segment.baseOffset! + first * index.chunkBytes,
              rawLength,
            )
          : undefined;
      return runner(
        {
          op: 'decode',
          layout: segment.layout,
          payloadFrom: { fd: containerHandle.fd, ranges: payloadRanges(run) },
          chunks,
          ...(base ? { base } : {}),
          file: container.path,
          writeTo: { ...target, position: at },
          digests: chunkHashOf(index.version),
        },
        // Not cancelled in the worker: a job writing the output must end before it is
        // discarded (a cancel is seen before the next job starts).
        undefined,
        base ? [base.buffer as ArrayBuffer] : [],
      ) as Promise<DecodeResult>;
    },
    async (_i, result) => {
      if (result.digests) digests.push(result.digests);
      done += result.length;
      options.onProgress?.(done, total);
    },
  );
  return digests;
}

async function withContainer<T>(
  input: string,
  options: LosslessOptions,
  body: (
    container: LlzContainer,
    handle: fs.FileHandle,
    baseHandle: fs.FileHandle | null,
    basePath: string | null,
  ) => Promise<T>,
): Promise<T> {
  const container = await readContainer(path.resolve(input));
  const basePath = await basePathOf(container, options.base);
  if (basePath) await verifyBase(container, basePath, options.signal);
  const handle = await openFileForReading(container.path);
  const baseHandle = basePath ? await openFileForReading(basePath) : null;
  try {
    return await body(container, handle, baseHandle, basePath);
  } finally {
    await handle.close();
    await baseHandle?.close();
  }
}

/** Restore the original file of a container, checked against its recorded chunk digest (or SHA-256). */
export async function unpackFile(
  input: string,
  options: LosslessOptions = {},
): Promise<UnpackResult> {
  return withContainer(input, options, async (container, handle, baseHandle, basePath) => {
    const out = chosenOrDefault(
      container.path,
      options.out,
      path.basename(defaultUnpackPath(container.path)),
      options.folder,
    );
    const output = await temporaryOutput(out);
    const flusher = earlyFlusher(output.handle);
    try {
      const refs = container.index.segments.flatMap((segment, segmentIndex) =>
        segment.chunks.map((_, chunk) => ({ segment, segmentIndex, chunk })),
      );
      const progress = {
        ...options,
        onProgress: (done: number, total: number) => {
          flusher.written(done);
          options.onProgress?.(done, total);
        },
      };
      const digests = await decodeChunks(container, refs, handle, baseHandle, basePath, progress, {
        fd: output.handle.fd,
        path: output.path,
        // Runs of zeros stay holes, so that a sparse original unpacks sparse.
        sparse: true,
      });
      checkAborted(options.signal);
      const { original } = container.index;
      const bytes = refs.reduce(
        (sum, ref) => sum + chunkRawLength(container.index, ref.segment, ref.chunk),
        0,
      );
      await output.handle.truncate(bytes);
      // Before version 4 the container records the SHA-256 of the whole file: read it back.
      const digest =
        original.digest === undefined
          ? await sha256OfFile(output.path, options.signal)
          : chunkDigest(digests);
      if (digest !== originalDigest(container.index) || bytes !== original.size) {
        throw new ModelFileError(
          container.path,
          `the unpacked bytes do not match the ${original.digest === undefined ? 'SHA-256' : 'chunk digest'} recorded in the container (corrupt file)`,
        );
      }
      await flusher.settle();
      await output.commit();
      return { out, bytes, digest };
    } finally {
      await flusher.settle();
      await output.discard();
    }
  });
}

/** Write one tensor's raw bytes (as stored in the original file) without decoding the rest. */
export async function extractTensor(
  input: string,
  tensorName: string,
  options: LosslessOptions & { readonly out: string },
): Promise<UnpackResult> {
  return withContainer(input, options, async (container, handle, baseHandle, basePath) => {
    const segmentIndex = container.index.segments.findIndex(
      (segment) => segment.kind === 'tensor' && segment.name === tensorName,
    );
    if (segmentIndex < 0) {
      throw new ModelFileError(container.path, `holds no tensor named "${tensorName}"`);
    }
    const segment = container.index.segments[segmentIndex]!;
    const out = path.resolve(options.out);
    const output = await temporaryOutput(out);
    try {
      const refs = segment.chunks.map((_, chunk) => ({ segment, segmentIndex, chunk }));
      const digests = await decodeChunks(container, refs, handle, baseHandle, basePath, options, {
        fd: output.handle.fd,
        path: output.path,
        sparse: false,
      });
      checkAborted(options.signal);
      const digest = chunkHashOf(container.index.version)
        ? chunkDigest(digests)
        : await sha256OfFile(output.path, options.signal);
      await output.commit();
      return { out, bytes: segment.length, digest };
    } finally {
      await output.discard();
    }
  });
}

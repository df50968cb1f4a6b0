/**
 * The work packing, unpacking and compressibility hand to worker threads: a run of up to
 * CHUNKS_PER_JOB consecutive chunks of one segment per job (coding is CPU-bound and chunks
 * are independent; a few chunks per message keep the round trips to the main thread a
 * small share of the time), or one tensor per analysis job. `runLosslessJob` is the same
 * function in a worker and, without a pool, in-process.
 */
import * as path from 'node:path';
import type { TransferListItem } from 'node:worker_threads';
import type { DType } from '../../shared/dtypes';
import { LLZ_CHUNK_BYTES } from '../../shared/limits';
import type { TensorByteSource } from '../jobs/statsJob';
import { tensorBytesOf } from '../jobs/tensorSource';
import { JobAbortedError, WorkerPool } from '../jobs/workerPool';
import { readIntoSync } from '../formats/fileRange';
import { threadScratch } from './bufferPool';
import { hasExponentStream, layoutOf, type ByteLayout } from './byteGroups';
import { crc32, encodeChunk, kernelsFor, xorInto } from './chunkCodec';
import { CHUNK_HASH_BYTES, chunkCheck, hashChunk, type ChunkHash } from './chunkHash';
import { decodeChunkJob, type DecodeJob, type DecodeResult } from './decodeJob';
import { entropyBits } from './rans';

/** Most chunks one job codes or decodes (2 MB of 256 KB chunks). */
export const CHUNKS_PER_JOB = 8;

/**
 * Most chunks one job decodes when the worker reads its payloads from the container and
 * writes the bytes to the output itself (8 MB of 256 KB chunks): nothing crosses between
 * threads but the job's description, so a longer job only saves round trips to the main
 * thread, during which the worker would wait.
 */
export const FILE_DECODE_CHUNKS_PER_JOB = 32;

/** Up to `most` chunks per job, but at least four jobs where a run of `chunks` allows. */
const chunksPerJobUpTo = (chunks: number, most: number) =>
  Math.min(most, Math.max(1, Math.ceil(chunks / 4)));

/**
 * Chunks per job for a run of `chunks` chunks: up to CHUNKS_PER_JOB, but at least four
 * jobs where the run allows, so that a short run still keeps every worker busy.
 */
export function chunksPerJob(chunks: number): number {
  return chunksPerJobUpTo(chunks, CHUNKS_PER_JOB);
}

/** The same for jobs that decode from file to file: up to FILE_DECODE_CHUNKS_PER_JOB. */
export function fileDecodeChunksPerJob(chunks: number): number {
  return chunksPerJobUpTo(chunks, FILE_DECODE_CHUNKS_PER_JOB);
}

export interface EncodeJob {
  readonly op: 'encode';
  readonly layout: ByteLayout;
  readonly generic: boolean;
  /** Consecutive chunks of one segment, back to back; or, without it, `bytesFrom`. */
  readonly bytes?: Uint8Array;
  /** Where to read them instead: `length` bytes at `position` of an open file. */
  readonly bytesFrom?: {
    readonly fd: number;
    readonly path: string;
    readonly position: number;
    readonly length: number;
  };
  /**
   * Return each chunk's hash of this kind (of its original bytes, before any XOR), and check
   * each chunk by the hash's first 32 bits instead of its CRC-32 (container version 4 on).
   */
  readonly digests?: ChunkHash | null;
  /** Bytes of each chunk but the last (which may be shorter); all of `bytes` when absent. */
  readonly chunkBytes?: number;
  /** The same range of the base model: the chunks are stored as the XOR with it. */
  readonly base?: Uint8Array;
  /**
   * A buffer to code into (room for `bytes` and one byte per chunk), reused from job to job;
   * with it, `bytes` comes back in the result (`input`) to be reused as well.
   */
  readonly into?: Uint8Array;
}

export interface AnalyseJob {
  readonly op: 'analyse';
  readonly dtype: DType;
  readonly source: TensorByteSource;
  readonly chunkBytes?: number;
}

export type LosslessJob = EncodeJob | DecodeJob | AnalyseJob;
export {
  decodeChunkJob,
  type DecodeJob,
  type DecodeJobChunk,
  type DecodeResult,
} from './decodeJob';

export interface EncodeResult {
  readonly op: 'encode';
  /** The chunks' payloads, back to back. */
  readonly payload: Uint8Array;
  readonly payloadLengths: readonly number[];
  /**
   * The check of each chunk's original bytes (before any XOR): its CRC-32, or with
   * `digests` the first 32 bits of its hash (chunkCheck).
   */
  readonly checks: readonly number[];
  /** The job's `bytes` handed back, when the job came with them and a buffer to code `into`. */
  readonly input?: Uint8Array;
  /** With `digests`: the chunks' hashes (CHUNK_HASH_BYTES each), in order. */
  readonly digests?: Uint8Array;
}

/** How well one tensor packs, and the bound its exponent stream sets. */
export interface AnalyseResult {
  readonly op: 'analyse';
  readonly rawBytes: number;
  readonly packedBytes: number;
  /** Empirical entropy of the exponent stream over the whole tensor (bits per value); null for non-float layouts. */
  readonly exponentEntropyBits: number | null;
  /**
   * Packed size if the exponent stream were coded exactly at its entropy and the other
   * streams as LayerLens stores them; null for non-float layouts.
   */
  readonly boundBytes: number | null;
  /**
   * Each chunk as the pack keys it to store a repeated chunk once (CRC-32, raw length,
   * coded length) and its coded length: `[key, payloadBytes]`.
   */
  readonly chunks: readonly (readonly [string, number])[];
}

export type LosslessResult = EncodeResult | DecodeResult | AnalyseResult;

/** Scratch slot of this thread (threadScratch) for bytes a job reads itself. */
const INPUT_SLOT = 2;

function inputOf(job: EncodeJob): Uint8Array {
  if (job.bytes) return job.bytes;
  const from = job.bytesFrom;
  if (!from) throw new RangeError('an encode job needs its bytes or where to read them');
  return readIntoSync(from.fd, from.path, from.position, threadScratch(INPUT_SLOT, from.length));
}

function encode(job: EncodeJob): EncodeResult {
  const { base } = job;
  // Read by the job with kernels to code them: each chunk is read straight into the kernels'
  // memory, where it is hashed and split (chunkRoom) without being copied there.
  const from = job.bytesFrom;
  const kernels = from ? kernelsFor(job.layout, job.generic) : null;
  const bytes = kernels ? null : inputOf(job);
  const length = bytes ? bytes.length : from!.length;
  const chunkBytes = job.chunkBytes ?? Math.max(1, length);
  const count = Math.max(1, Math.ceil(length / chunkBytes));
  // A payload never exceeds its chunk by more than one byte: code them all into one buffer.
  const room = length + count;
  const out = job.into && job.into.length >= room ? job.into : new Uint8Array(room);
  const payloadLengths: number[] = [];
  const checks: number[] = [];
  const hash = job.digests;
  const hashBytes = hash ? CHUNK_HASH_BYTES[hash] : 0;
  const digests = hash ? new Uint8Array(hashBytes * count) : undefined;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const start = i * chunkBytes;
    const end = Math.min(length, start + chunkBytes);
    const chunk =
      kernels && from
        ? readIntoSync(
            from.fd,
            from.path,
            from.position + start,
            kernels.chunkRoom(job.layout, end - start),
          )
        : bytes!.subarray(start, end);
    if (hash && digests) {
      const digest = hashChunk(hash, chunk);
      digests.set(digest, hashBytes * i);
      checks.push(chunkCheck(digest));
    } else checks.push(crc32(chunk));
    if (base) xorInto(chunk, base.subarray(start, end));
    const { payload } = encodeChunk(job.layout, chunk, job.generic, undefined, out.subarray(at));
    payloadLengths.push(payload.length);
    at += payload.length;
  }
  return {
    op: 'encode',
    payload: out.subarray(0, at),
    payloadLengths,
    checks,
    ...(job.into && job.bytes ? { input: job.bytes } : {}),
    ...(digests ? { digests } : {}),
  };
}

/** The key under which the pack stores a chunk once, however often it repeats. */
export function chunkKey(check: number, rawLength: number, payloadLength: number): string {
  return `${check}:${rawLength}:${payloadLength}`;
}

async function analyse(job: AnalyseJob, isCancelled: () => boolean): Promise<AnalyseResult> {
  const layout = layoutOf(job.dtype);
  const chunkBytes = job.chunkBytes ?? LLZ_CHUNK_BYTES;
  const source = tensorBytesOf(job.source);
  const exponentCounts = new Float64Array(256);
  let rawBytes = 0;
  let packedBytes = 0;
  let otherStreamBytes = 0;
  const chunks: [string, number][] = [];
  await source.chunks(chunkBytes, (chunk) => {
    if (isCancelled()) throw new JobAbortedError();
    const encoded = encodeChunk(layout, chunk);
    rawBytes += chunk.length;
    packedBytes += encoded.payload.length;
    chunks.push([
      chunkKey(crc32(chunk), chunk.length, encoded.payload.length),
      encoded.payload.length,
    ]);
    // The bound is the byte groups': exponent at its entropy, the other streams as coded.
    otherStreamBytes += encoded.groupedBytes - encoded.streamBytes[0]!;
    for (let s = 0; s < 256; s++) exponentCounts[s]! += encoded.firstStreamCounts[s]!;
  });
  if (!hasExponentStream(layout)) {
    return {
      op: 'analyse',
      rawBytes,
      packedBytes,
      exponentEntropyBits: null,
      boundBytes: null,
      chunks,
    };
  }
  const entropy = entropyBits(exponentCounts);
  let values = 0;
  for (let s = 0; s < 256; s++) values += exponentCounts[s]!;
  return {
    op: 'analyse',
    rawBytes,
    packedBytes,
    exponentEntropyBits: entropy,
    boundBytes: otherStreamBytes + (entropy * values) / 8,
    chunks,
  };
}

export async function runLosslessJob(
  job: LosslessJob,
  isCancelled: () => boolean = () => false,
): Promise<LosslessResult> {
  switch (job.op) {
    case 'encode':
      return encode(job);
    case 'decode':
      return decodeChunkJob(job);
    case 'analyse':
      return analyse(job, isCancelled);
  }
}

/** The buffers a result moves back to the main thread (its data and any buffer handed back). */
export function transferOfResult(result: LosslessResult): readonly TransferListItem[] {
  if (result.op === 'analyse') return [];
  const [data, returned] =
    result.op === 'encode' ? [result.payload, result.input] : [result.bytes, result.payload];
  const buffers = [data.buffer as ArrayBuffer];
  if (returned && returned.buffer !== data.buffer) buffers.push(returned.buffer as ArrayBuffer);
  return buffers;
}

/** Runs lossless jobs: in a worker pool, or in this thread when there is none. */
export type LosslessRunner = (
  job: LosslessJob,
  signal?: AbortSignal,
  transfer?: readonly TransferListItem[],
) => Promise<LosslessResult>;

export const inProcessRunner: LosslessRunner = (job) => runLosslessJob(job);

export type LosslessPool = WorkerPool<LosslessJob, LosslessResult>;

/** A pool of `size` lossless workers; with `start`, their threads start now instead of at the first job. */
export function losslessPool(size: number, start = false): LosslessPool {
  const pool = new WorkerPool<LosslessJob, LosslessResult>(size, losslessWorkerScript());
  if (start) pool.start();
  return pool;
}

export function poolRunner(pool: LosslessPool): LosslessRunner {
  return (job, signal, transfer) => pool.run(job, signal, transfer);
}

/**
 * The lossless worker script, beside this module: the TypeScript source under tsx, the
 * bundle dist/losslessWorker.js beside dist/server.js (or dist/cli.js) otherwise.
 */
export function losslessWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, '..', 'jobs', 'losslessWorker.ts')
    : path.join(__dirname, 'losslessWorker.js');
}

/**
 * The work packing, unpacking and compressibility hand to worker threads: one chunk per
 * job (coding is CPU-bound, chunks are independent), or one tensor per analysis job.
 * `runLosslessJob` is the same function in a worker and, without a pool, in-process.
 */
import * as path from 'node:path';
import type { TransferListItem } from 'node:worker_threads';
import type { DType } from '../../shared/dtypes';
import { LLZ_CHUNK_BYTES } from '../../shared/limits';
import { fileTensorBytes, memoryTensorBytes } from '../analysis/stats';
import { ModelFileError } from '../formats/types';
import type { TensorByteSource } from '../jobs/computeStats';
import { JobAbortedError, type WorkerPool } from '../jobs/workerPool';
import { hasExponentStream, layoutOf, type ByteLayout } from './byteGroups';
import { ChunkFormatError, crc32, decodeChunk, encodeChunk, xorInto } from './chunkCodec';
import { entropyBits } from './rans';

export interface EncodeJob {
  readonly op: 'encode';
  readonly layout: ByteLayout;
  readonly generic: boolean;
  readonly bytes: Uint8Array;
  /** The same range of the base model: the chunk is stored as the XOR with it. */
  readonly base?: Uint8Array;
}

export interface DecodeJob {
  readonly op: 'decode';
  readonly layout: ByteLayout;
  readonly payload: Uint8Array;
  readonly rawLength: number;
  readonly crc: number;
  readonly base?: Uint8Array;
  /** For error messages: the container, and which chunk this is. */
  readonly file: string;
  readonly where: string;
}

export interface AnalyseJob {
  readonly op: 'analyse';
  readonly dtype: DType;
  readonly source: TensorByteSource;
  readonly chunkBytes?: number;
}

export type LosslessJob = EncodeJob | DecodeJob | AnalyseJob;

export interface EncodeResult {
  readonly op: 'encode';
  readonly payload: Uint8Array;
  /** CRC-32 of the chunk's original bytes (before any XOR). */
  readonly crc: number;
}

export interface DecodeResult {
  readonly op: 'decode';
  readonly bytes: Uint8Array;
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
}

export type LosslessResult = EncodeResult | DecodeResult | AnalyseResult;

function encode(job: EncodeJob): EncodeResult {
  const crc = crc32(job.bytes);
  const bytes = job.base ? xorInto(job.bytes, job.base) : job.bytes;
  return { op: 'encode', payload: encodeChunk(job.layout, bytes, job.generic).payload, crc };
}

/** Decode one chunk (synchronously: random access uses it outside the workers too). */
export function decodeChunkJob(job: DecodeJob): DecodeResult {
  let bytes: Uint8Array;
  try {
    bytes = decodeChunk(job.layout, job.payload, job.rawLength);
  } catch (error) {
    if (error instanceof ChunkFormatError) {
      throw new ModelFileError(job.file, `${job.where} is corrupt: ${error.message}`);
    }
    throw error;
  }
  // Raw streams are views on the payload: own the result before XOR-ing in place.
  if (bytes.buffer === job.payload.buffer) bytes = bytes.slice();
  if (job.base) xorInto(bytes, job.base);
  if (crc32(bytes) !== job.crc) {
    throw new ModelFileError(job.file, `${job.where} is corrupt: its checksum does not match`);
  }
  return { op: 'decode', bytes };
}

async function analyse(job: AnalyseJob, isCancelled: () => boolean): Promise<AnalyseResult> {
  const layout = layoutOf(job.dtype);
  const chunkBytes = job.chunkBytes ?? LLZ_CHUNK_BYTES;
  const source =
    job.source.kind === 'file'
      ? fileTensorBytes(job.source.path, job.source.offset, job.source.length)
      : memoryTensorBytes(job.source.bytes);
  const exponentCounts = new Float64Array(256);
  let rawBytes = 0;
  let packedBytes = 0;
  let otherStreamBytes = 0;
  await source.chunks(chunkBytes, (chunk) => {
    if (isCancelled()) throw new JobAbortedError();
    const encoded = encodeChunk(layout, chunk);
    rawBytes += chunk.length;
    packedBytes += encoded.payload.length;
    otherStreamBytes += encoded.payload.length - encoded.streamBytes[0]!;
    for (let s = 0; s < 256; s++) exponentCounts[s]! += encoded.firstStreamCounts[s]!;
  });
  if (!hasExponentStream(layout)) {
    return { op: 'analyse', rawBytes, packedBytes, exponentEntropyBits: null, boundBytes: null };
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

export function transferOfResult(result: LosslessResult): readonly TransferListItem[] {
  if (result.op === 'encode') return [result.payload.buffer as ArrayBuffer];
  if (result.op === 'decode') return [result.bytes.buffer as ArrayBuffer];
  return [];
}

/** Runs lossless jobs: in a worker pool, or in this thread when there is none. */
export type LosslessRunner = (
  job: LosslessJob,
  signal?: AbortSignal,
  transfer?: readonly TransferListItem[],
) => Promise<LosslessResult>;

export const inProcessRunner: LosslessRunner = (job) => runLosslessJob(job);

export function poolRunner(pool: WorkerPool<LosslessJob, LosslessResult>): LosslessRunner {
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

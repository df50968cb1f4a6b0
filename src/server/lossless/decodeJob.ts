/**
 * Decoding a run of chunks of one segment, with its checks: each chunk's payload decoded,
 * the XOR with the base undone, its check compared (CRC-32, or from version 4 the first
 * 32 bits of its hash). Synchronous: the workers run it as a
 * job, and random access into a packed file (reader.ts) runs it where it is.
 *
 * Unpacking hands the worker the container's and the output's file descriptors instead of
 * bytes (`payloadFrom`, `writeTo`): each worker reads its payloads, decodes them, takes
 * each chunk's hash and writes the bytes in place, so that reading, decoding, hashing
 * and writing all run on every core and no chunk crosses between threads.
 */
import { writeSync } from 'node:fs';
import { readIntoSync } from '../formats/fileRange';
import { ModelFileError } from '../formats/types';
import type { ByteLayout } from './byteGroups';
import {
  ChunkFormatError,
  crc32,
  decodeChunk,
  decodeChunkView,
  kernelsFor,
  xorInto,
} from './chunkCodec';
import type { LosslessKernels } from './losslessWasm';
import { threadScratch } from './bufferPool';
import { CHUNK_HASH_BYTES, chunkCheck, hashChunk, type ChunkHash } from './chunkHash';

/** One chunk of a decode job. */
export interface DecodeJobChunk {
  readonly payloadLength: number;
  readonly rawLength: number;
  /** Its check as the index records it: CRC-32, or with `digests` chunkCheck. */
  readonly crc: number;
  /** For error messages: which chunk this is. */
  readonly where: string;
}

/** Byte ranges of an open file: `[position, length]` each, read one after the other. */
export interface FileRanges {
  readonly fd: number;
  readonly ranges: readonly (readonly [position: number, length: number])[];
}

/** Where a job writes its decoded bytes: an open file, from `position`. */
export interface FileTarget {
  readonly fd: number;
  /** For error messages: the file written. */
  readonly path: string;
  readonly position: number;
  /** Runs of zeros are not written, so that they stay holes of a sparse file. */
  readonly sparse: boolean;
}

export interface DecodeJob {
  readonly op: 'decode';
  readonly layout: ByteLayout;
  /** The chunks' payloads, back to back; or, without it, `payloadFrom`. */
  readonly payload?: Uint8Array;
  /** The container's file and the ranges that hold the payloads, back to back once read. */
  readonly payloadFrom?: FileRanges;
  readonly chunks: readonly DecodeJobChunk[];
  /** The same range of the base model, for chunks stored as XOR. */
  readonly base?: Uint8Array;
  /** For error messages: the container. */
  readonly file: string;
  /**
   * A buffer to decode into (room for every chunk), reused from job to job; with it, the
   * payload comes back in the result to be reused as well.
   */
  readonly into?: Uint8Array;
  /** Write the decoded bytes there instead of returning them. */
  readonly writeTo?: FileTarget;
  /**
   * Check each chunk by this hash (`crc` holds chunkCheck) and return the hashes: container
   * version 4 on checks the whole file by them. Without it, `crc` is the chunk's CRC-32.
   */
  readonly digests?: ChunkHash | null;
}

export interface DecodeResult {
  readonly op: 'decode';
  /** The chunks' original bytes, back to back (empty when the job wrote them `writeTo`). */
  readonly bytes: Uint8Array;
  /** Bytes decoded. */
  readonly length: number;
  /** The job's payload handed back, when the job came with a buffer to decode `into`. */
  readonly payload?: Uint8Array;
  /** With `digests`: the chunks' hashes (CHUNK_HASH_BYTES each), in order. */
  readonly digests?: Uint8Array;
}

/** Scratch slots of this thread (threadScratch): payloads read, bytes decoded. */
const PAYLOAD_SLOT = 0;
const DECODED_SLOT = 1;

function isAllZero(bytes: Uint8Array): boolean {
  const aligned = bytes.byteOffset % 4 === 0;
  const words = aligned ? bytes.length >> 2 : 0;
  const view = new Uint32Array(bytes.buffer, aligned ? bytes.byteOffset : 0, words);
  for (let i = 0; i < words; i++) if (view[i] !== 0) return false;
  for (let i = words * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Write all of `bytes` at `position` of an open file. */
export function writeAllSync(
  fd: number,
  filePath: string,
  bytes: Uint8Array,
  position: number,
): void {
  for (let done = 0; done < bytes.length;) {
    let written: number;
    try {
      written = writeSync(fd, bytes, done, bytes.length - done, position + done);
    } catch (error) {
      throw new ModelFileError(filePath, `cannot be written (${(error as Error).message})`);
    }
    if (written <= 0) throw new ModelFileError(filePath, 'cannot be written (no progress)');
    done += written;
  }
}

function payloadOf(job: DecodeJob, payloadTotal: number): Uint8Array {
  if (job.payload) {
    if (job.payload.length !== payloadTotal) {
      throw new RangeError(`the payloads hold ${job.payload.length} bytes, not ${payloadTotal}`);
    }
    return job.payload;
  }
  const from = job.payloadFrom;
  if (!from) throw new RangeError('a decode job needs its payload or where to read it');
  const payload = threadScratch(PAYLOAD_SLOT, payloadTotal);
  let at = 0;
  for (const [position, length] of from.ranges) {
    if (at + length > payloadTotal) throw new RangeError('the payload ranges exceed the chunks');
    readIntoSync(from.fd, job.file, position, payload.subarray(at, at + length));
    at += length;
  }
  if (at !== payloadTotal) throw new RangeError(`the ranges hold ${at} bytes, not ${payloadTotal}`);
  return payload;
}

/**
 * Each chunk's payload read from the container straight into the kernels' memory, where it
 * is decoded (payloadRoom): the payloads of a job with `payloadFrom`, decoded with kernels.
 */
function payloadReader(job: DecodeJob, kernels: LosslessKernels | null) {
  const from = job.payloadFrom;
  if (!from || !kernels) return null;
  let range = 0;
  let within = 0;
  return (chunk: DecodeJobChunk): Uint8Array => {
    while (range < from.ranges.length && within >= from.ranges[range]![1]) {
      range++;
      within = 0;
    }
    const [position, length] = from.ranges[range] ?? [0, 0];
    if (within + chunk.payloadLength > length) {
      throw new RangeError('the payload ranges do not hold whole chunks');
    }
    const room = kernels.payloadRoom(chunk.payloadLength, chunk.rawLength);
    readIntoSync(from.fd, job.file, position + within, room);
    within += chunk.payloadLength;
    return room;
  };
}

/** Decode a job's chunks (synchronously: random access uses it outside the workers too). */
export function decodeChunkJob(job: DecodeJob): DecodeResult {
  const total = job.chunks.reduce((sum, chunk) => sum + chunk.rawLength, 0);
  const payloadTotal = job.chunks.reduce((sum, chunk) => sum + chunk.payloadLength, 0);
  const target = job.writeTo;
  // Written to a file without a base to XOR: each chunk is hashed and written where it was
  // decoded (the kernels' memory), with no copy into a buffer of the job's.
  const inPlace = target !== undefined && !job.base;
  const readPayload = inPlace ? payloadReader(job, kernelsFor(job.layout, false)) : null;
  const payloads = readPayload ? null : payloadOf(job, payloadTotal);
  const bytes: Uint8Array<ArrayBuffer> = inPlace
    ? new Uint8Array(0)
    : target
      ? (threadScratch(DECODED_SLOT, total) as Uint8Array<ArrayBuffer>)
      : job.into && job.into.length >= total
        ? new Uint8Array(job.into.buffer as ArrayBuffer, job.into.byteOffset, total)
        : new Uint8Array(total);
  const hash = job.digests;
  const hashBytes = hash ? CHUNK_HASH_BYTES[hash] : 0;
  const digests = hash ? new Uint8Array(hashBytes * job.chunks.length) : undefined;
  let payloadAt = 0;
  let at = 0;
  job.chunks.forEach((chunk, c) => {
    const payload = readPayload
      ? readPayload(chunk)
      : payloads!.subarray(payloadAt, payloadAt + chunk.payloadLength);
    let out: Uint8Array;
    try {
      if (inPlace) out = decodeChunkView(job.layout, payload, chunk.rawLength);
      else {
        const into = bytes.subarray(at, at + chunk.rawLength);
        const decoded = decodeChunk(job.layout, payload, chunk.rawLength, into);
        if (decoded !== into) into.set(decoded);
        out = into;
      }
    } catch (error) {
      if (error instanceof ChunkFormatError) {
        throw new ModelFileError(job.file, `${chunk.where} is corrupt: ${error.message}`);
      }
      throw error;
    }
    if (job.base) xorInto(out, job.base.subarray(at, at + chunk.rawLength));
    let check: number;
    if (hash && digests) {
      const digest = hashChunk(hash, out);
      digests.set(digest, hashBytes * c);
      check = chunkCheck(digest);
    } else check = crc32(out);
    if (check !== chunk.crc) {
      throw new ModelFileError(job.file, `${chunk.where} is corrupt: its checksum does not match`);
    }
    if (inPlace) writeUnlessHole(target, out, target.position + at);
    payloadAt += chunk.payloadLength;
    at += chunk.rawLength;
  });
  if (target && !inPlace) writeUnlessHole(target, bytes, target.position);
  return {
    op: 'decode',
    bytes: target ? new Uint8Array(0) : bytes,
    length: total,
    ...(job.into && job.payload ? { payload: job.payload } : {}),
    ...(digests ? { digests } : {}),
  };
}

/** Write `bytes` at `position` of the target, unless they are zeros of a sparse one. */
function writeUnlessHole(target: FileTarget, bytes: Uint8Array, position: number): void {
  if (!(target.sparse && isAllZero(bytes))) writeAllSync(target.fd, target.path, bytes, position);
}

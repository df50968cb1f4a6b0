/**
 * Decoding a run of chunks of one segment, with its checks: each chunk's payload decoded,
 * the XOR with the base undone, the CRC-32 compared. Synchronous: the workers run it as a
 * job, and random access into a packed file (reader.ts) runs it where it is.
 */
import { ModelFileError } from '../formats/types';
import type { ByteLayout } from './byteGroups';
import { ChunkFormatError, crc32, decodeChunk, xorInto } from './chunkCodec';

/** One chunk of a decode job. */
export interface DecodeJobChunk {
  readonly payloadLength: number;
  readonly rawLength: number;
  readonly crc: number;
  /** For error messages: which chunk this is. */
  readonly where: string;
}

export interface DecodeJob {
  readonly op: 'decode';
  readonly layout: ByteLayout;
  /** The chunks' payloads, back to back. */
  readonly payload: Uint8Array;
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
}

export interface DecodeResult {
  readonly op: 'decode';
  /** The chunks' original bytes, back to back. */
  readonly bytes: Uint8Array;
  /** The job's payload handed back, when the job came with a buffer to decode `into`. */
  readonly payload?: Uint8Array;
}

/** Decode a job's chunks (synchronously: random access uses it outside the workers too). */
export function decodeChunkJob(job: DecodeJob): DecodeResult {
  const total = job.chunks.reduce((sum, chunk) => sum + chunk.rawLength, 0);
  const payloadTotal = job.chunks.reduce((sum, chunk) => sum + chunk.payloadLength, 0);
  if (payloadTotal !== job.payload.length) {
    throw new RangeError(`the payloads hold ${job.payload.length} bytes, not ${payloadTotal}`);
  }
  const bytes: Uint8Array<ArrayBuffer> =
    job.into && job.into.length >= total
      ? new Uint8Array(job.into.buffer as ArrayBuffer, job.into.byteOffset, total)
      : new Uint8Array(total);
  let payloadAt = 0;
  let at = 0;
  for (const chunk of job.chunks) {
    const payload = job.payload.subarray(payloadAt, payloadAt + chunk.payloadLength);
    const out = bytes.subarray(at, at + chunk.rawLength);
    try {
      const decoded = decodeChunk(job.layout, payload, chunk.rawLength, out);
      if (decoded !== out) out.set(decoded);
    } catch (error) {
      if (error instanceof ChunkFormatError) {
        throw new ModelFileError(job.file, `${chunk.where} is corrupt: ${error.message}`);
      }
      throw error;
    }
    if (job.base) xorInto(out, job.base.subarray(at, at + chunk.rawLength));
    if (crc32(out) !== chunk.crc) {
      throw new ModelFileError(job.file, `${chunk.where} is corrupt: its checksum does not match`);
    }
    payloadAt += chunk.payloadLength;
    at += chunk.rawLength;
  }
  return { op: 'decode', bytes, ...(job.into ? { payload: job.payload } : {}) };
}

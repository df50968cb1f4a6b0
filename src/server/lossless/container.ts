/**
 * The packed-file container (`*.llz`), documented in docs/llz-format.md:
 *
 *   header   8-byte magic "\x89LLZ\r\n\x1a\n", u32 version, u32 flags (0)
 *   chunks   coded chunks, back to back (see chunkCodec.ts)
 *   index    UTF-8 JSON (LlzIndex), raw-deflated: the original file, an optional base model, and the
 *            segments that cover the original file in order, each with its chunks
 *   trailer  u64 index offset, u64 index length, 8-byte magic "LLZINDEX"
 *
 * Reading validates every number in the index against the container's size and the
 * limits in shared/limits.ts before anything is allocated or decoded.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DTYPES, type DType } from '../../shared/dtypes';
import {
  MAX_LLZ_CHUNK_BYTES,
  MAX_LLZ_INDEX_BYTES,
  MAX_LLZ_SEGMENTS,
  MAX_TENSOR_ELEMENTS,
} from '../../shared/limits';
import { isModelFormat, type ModelFormat } from '../../shared/model';
import { readExactly } from '../formats/fileRange';
import { parseFileJson } from '../formats/jsonText';
import { confinedPath } from '../formats/referencedFile';
import { ModelFileError } from '../formats/types';
import { BYTE_LAYOUTS, type ByteLayout } from './byteGroups';
import type { ChunkHash } from './chunkHash';

export const LLZ_MAGIC = Uint8Array.of(0x89, 0x4c, 0x4c, 0x5a, 0x0d, 0x0a, 0x1a, 0x0a);
/**
 * The version written: 5. Version 2 coded exponent streams with eight-lane rANS (stream
 * codec 4); 3 adds chunks brotli-coded whole (stream count 255); 4 checks the original by
 * its chunk digest (`original.digest`, chunkDigest) instead of the SHA-256 of the whole
 * file, so that packing and unpacking hash on every core; 5 hashes chunks with XXH64
 * instead of SHA-256 (chunkHashOf).
 */
export const LLZ_VERSION = 5;
/** Versions read: 1 (two-state rANS, codec 1), 2, 3, 4 and 5. */
const READABLE_VERSIONS: readonly number[] = [1, 2, 3, 4, 5];
/** The first version that records `original.digest` instead of `original.sha256`. */
export const LLZ_CHUNK_DIGEST_VERSION = 4;
/** The first version whose chunks are hashed with XXH64. */
const LLZ_XXH64_VERSION = 5;

/**
 * The hash a container of `version` checks each chunk by (chunkHash.ts), or null for the
 * versions before 4, which check chunks by CRC-32 and the file by its SHA-256.
 */
export function chunkHashOf(version: number): ChunkHash | null {
  if (version >= LLZ_XXH64_VERSION) return 'xxh64';
  return version >= LLZ_CHUNK_DIGEST_VERSION ? 'sha256' : null;
}
export const LLZ_HEADER_BYTES = 16;
export const LLZ_TRAILER_BYTES = 24;
const TRAILER_MAGIC = 'LLZINDEX';
/** Framing around the streams of one chunk: count, then codec and length per stream. */
const MAX_CHUNK_FRAMING = 1 + 5 * 9;
/** rANS can exceed its input by its table and a few bytes; raw streams never do. */
const MAX_CHUNK_OVERHEAD = MAX_CHUNK_FRAMING + 1024;

/** One coded chunk: where its payload lies in the container, and the CRC-32 of its decoded bytes. */
export type LlzChunk = readonly [payloadOffset: number, payloadLength: number, crc32: number];

export interface LlzSegment {
  /** A tensor's bytes, or the bytes between tensors (headers, protobuf structure). */
  readonly kind: 'tensor' | 'other';
  /** Range in the original file. */
  readonly offset: number;
  readonly length: number;
  /** Tensor segments: the tensor's name and dtype as the model's reader reports them. */
  readonly name?: string;
  readonly dtype?: DType;
  readonly layout: ByteLayout;
  /** Stored as the XOR with the same tensor of the base model (fine-tune deltas). */
  readonly xor: boolean;
  /** Tensor segments stored as XOR: the tensor's range in the base file. */
  readonly baseOffset?: number;
  readonly chunks: readonly LlzChunk[];
}

export interface LlzFileIdentity {
  readonly size: number;
  /** Lower-case hex SHA-256 of the whole file. */
  readonly sha256: string;
}

/**
 * The original file as a container records it: its SHA-256 (versions 1–3) or its chunk
 * digest (version 4 on: the SHA-256 of its chunks' hashes, chunkDigest).
 */
export interface LlzOriginal {
  readonly name: string;
  readonly format: ModelFormat;
  readonly size: number;
  readonly sha256?: string;
  readonly digest?: string;
}

export interface LlzIndex {
  readonly version: number;
  readonly original: LlzOriginal;
  /** Set for fine-tune deltas: the base model, with its path relative to the container's folder. */
  readonly base: (LlzFileIdentity & { readonly path: string }) | null;
  readonly chunkBytes: number;
  readonly segments: readonly LlzSegment[];
}

export interface LlzContainer {
  readonly path: string;
  readonly size: number;
  readonly index: LlzIndex;
}

/** Decoded bytes of chunk `chunk` of `segment`. */
export function chunkRawLength(index: LlzIndex, segment: LlzSegment, chunk: number): number {
  return Math.min(index.chunkBytes, segment.length - chunk * index.chunkBytes);
}

export function hasLlzMagic(head: Uint8Array): boolean {
  return head.length >= LLZ_MAGIC.length && LLZ_MAGIC.every((byte, i) => head[i] === byte);
}

export function llzHeader(): Uint8Array {
  const header = new Uint8Array(LLZ_HEADER_BYTES);
  header.set(LLZ_MAGIC);
  new DataView(header.buffer).setUint32(8, LLZ_VERSION, true);
  return header;
}

/** The index as stored: JSON, raw-deflated (tensor names and chunk lists repeat a lot). */
export function encodeIndex(index: LlzIndex): Uint8Array {
  return zlib.deflateRawSync(JSON.stringify(index));
}

export function llzTrailer(indexOffset: number, indexLength: number): Uint8Array {
  const trailer = new Uint8Array(LLZ_TRAILER_BYTES);
  const view = new DataView(trailer.buffer);
  view.setBigUint64(0, BigInt(indexOffset), true);
  view.setBigUint64(8, BigInt(indexLength), true);
  trailer.set(new TextEncoder().encode(TRAILER_MAGIC), 16);
  return trailer;
}

/** Open and validate a packed file's header, trailer and index. */
export async function readContainer(filePath: string): Promise<LlzContainer> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch {
    throw new ModelFileError(filePath, 'the file does not exist or cannot be read');
  }
  try {
    const { size } = await handle.stat();
    if (size < LLZ_HEADER_BYTES + LLZ_TRAILER_BYTES) {
      throw new ModelFileError(filePath, `the file is ${size} bytes, too short for a packed model`);
    }
    const header = await readExactly(handle, filePath, 0, LLZ_HEADER_BYTES);
    if (!hasLlzMagic(header))
      throw new ModelFileError(filePath, 'not a LayerLens packed file (bad magic)');
    const version = new DataView(header.buffer).getUint32(8, true);
    if (!READABLE_VERSIONS.includes(version)) {
      throw new ModelFileError(
        filePath,
        `packed-file version ${version} is not supported (this LayerLens reads versions ${READABLE_VERSIONS.join(', ')})`,
      );
    }
    const trailer = await readExactly(
      handle,
      filePath,
      size - LLZ_TRAILER_BYTES,
      LLZ_TRAILER_BYTES,
    );
    if (new TextDecoder().decode(trailer.subarray(16)) !== TRAILER_MAGIC) {
      throw new ModelFileError(filePath, 'the packed file has no index at its end (truncated?)');
    }
    const view = new DataView(trailer.buffer);
    const indexOffset = view.getBigUint64(0, true);
    const indexLength = view.getBigUint64(8, true);
    if (indexLength > BigInt(MAX_LLZ_INDEX_BYTES)) {
      throw new ModelFileError(
        filePath,
        `the index claims ${indexLength} bytes, more than the limit of ${MAX_LLZ_INDEX_BYTES}`,
      );
    }
    const dataEnd = size - LLZ_TRAILER_BYTES;
    if (indexOffset < BigInt(LLZ_HEADER_BYTES) || indexOffset + indexLength !== BigInt(dataEnd)) {
      throw new ModelFileError(
        filePath,
        `the index range [${indexOffset}, +${indexLength}] does not end where the trailer starts (${dataEnd}); the file is truncated or corrupt`,
      );
    }
    const indexBytes = await readExactly(
      handle,
      filePath,
      Number(indexOffset),
      Number(indexLength),
    );
    let text: string;
    try {
      const inflated = zlib.inflateRawSync(indexBytes, { maxOutputLength: MAX_LLZ_INDEX_BYTES });
      text = new TextDecoder('utf-8', { fatal: true }).decode(inflated);
    } catch (error) {
      throw new ModelFileError(
        filePath,
        `the index cannot be inflated to UTF-8 text of at most ${MAX_LLZ_INDEX_BYTES} bytes (${(error as Error).message})`,
      );
    }
    const json = parseFileJson(filePath, text, 'the index');
    const index = validateIndex(filePath, json, Number(indexOffset));
    if (index.version !== version) {
      throw new ModelFileError(
        filePath,
        `corrupt index: version ${index.version} does not match the header's ${version}`,
      );
    }
    return { path: filePath, size, index };
  } finally {
    await handle.close();
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The chunk digest of a file: the SHA-256 of its chunks' hashes (`chunkDigests`, chunkHashOf
 * the version, in the order of the file). A changed byte changes its chunk's hash (for
 * XXH64, but for a chance of 2^-64 against accidental damage), and so this.
 */
export function chunkDigest(chunkDigests: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const digests of chunkDigests) hash.update(digests);
  return hash.digest('hex');
}

/** What a container checks the original by: its chunk digest, or (before version 4) its SHA-256. */
export function originalDigest(index: LlzIndex): string {
  return (index.original.digest ?? index.original.sha256)!;
}

function originalOf(
  filePath: string,
  value: unknown,
  version: number,
): { size: number; sha256?: string; digest?: string } {
  const key = version >= LLZ_CHUNK_DIGEST_VERSION ? 'digest' : 'sha256';
  if (
    !isObject(value) ||
    !isSize(value.size) ||
    typeof value[key] !== 'string' ||
    !SHA256_HEX.test(value[key])
  ) {
    throw new ModelFileError(
      filePath,
      `the index's original-file entry lacks a valid size and ${key === 'digest' ? 'chunk digest' : 'SHA-256'}`,
    );
  }
  return { size: value.size, [key]: value[key] };
}

function identity(filePath: string, value: unknown, what: string): LlzFileIdentity {
  if (
    !isObject(value) ||
    !isSize(value.size) ||
    typeof value.sha256 !== 'string' ||
    !SHA256_HEX.test(value.sha256)
  ) {
    throw new ModelFileError(filePath, `the index's ${what} entry lacks a valid size and SHA-256`);
  }
  return { size: value.size, sha256: value.sha256 };
}

/** Check an index parsed from `filePath` (whose chunk data ends at `dataEnd`). */
export function validateIndex(filePath: string, json: unknown, dataEnd: number): LlzIndex {
  const fail = (problem: string): never => {
    throw new ModelFileError(filePath, `corrupt index: ${problem}`);
  };
  if (!isObject(json)) return fail('it is not an object');
  const version = json.version;
  if (typeof version !== 'number' || !READABLE_VERSIONS.includes(version))
    return fail(`version ${String(version)} is not one of ${READABLE_VERSIONS.join(', ')}`);
  const original = originalOf(filePath, json.original, version);
  const originalObject = json.original as Record<string, unknown>;
  if (typeof originalObject.name !== 'string') return fail('the original file has no name');
  const format = originalObject.format;
  if (!isModelFormat(format)) return fail(`unknown format ${String(format)}`);
  let base: LlzIndex['base'] = null;
  if (json.base !== null && json.base !== undefined) {
    const baseIdentity = identity(filePath, json.base, 'base-model');
    const basePath = (json.base as Record<string, unknown>).path;
    if (typeof basePath !== 'string' || basePath === '') return fail('the base model has no path');
    base = { ...baseIdentity, path: basePath };
  }
  const chunkBytes = json.chunkBytes;
  if (
    !isSize(chunkBytes) ||
    chunkBytes < 64 ||
    chunkBytes > MAX_LLZ_CHUNK_BYTES ||
    chunkBytes % 64 !== 0
  ) {
    return fail(
      `chunk size ${String(chunkBytes)} is not a multiple of 64 up to ${MAX_LLZ_CHUNK_BYTES}`,
    );
  }
  if (!Array.isArray(json.segments)) return fail('it has no segment list');
  if (json.segments.length > MAX_LLZ_SEGMENTS) {
    return fail(`${json.segments.length} segments exceed the limit of ${MAX_LLZ_SEGMENTS}`);
  }
  const maxPayload = chunkBytes + MAX_CHUNK_OVERHEAD;
  let covered = 0;
  const segments = json.segments.map((raw: unknown, position: number): LlzSegment => {
    const where = `segment ${position}`;
    if (!isObject(raw)) return fail(`${where} is not an object`);
    const { kind, offset, length, name, dtype, layout, xor, baseOffset, chunks } = raw;
    if (kind !== 'tensor' && kind !== 'other')
      return fail(`${where} has unknown kind ${String(kind)}`);
    if (
      !isSize(offset) ||
      !isSize(length) ||
      offset !== covered ||
      offset + length > original.size
    ) {
      return fail(
        `${where} [${String(offset)}, +${String(length)}] does not continue the previous one at ${covered} inside ${original.size} bytes`,
      );
    }
    covered += length;
    if (typeof layout !== 'string' || !BYTE_LAYOUTS.includes(layout as ByteLayout)) {
      return fail(`${where} has unknown layout ${String(layout)}`);
    }
    if (
      kind === 'tensor' &&
      (typeof name !== 'string' || typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype))
    ) {
      return fail(`${where} is a tensor without a valid name and dtype`);
    }
    if (typeof xor !== 'boolean' || (xor && (kind !== 'tensor' || !base))) {
      return fail(`${where} has an invalid XOR flag`);
    }
    if (xor && (!isSize(baseOffset) || baseOffset + length > base!.size)) {
      return fail(`${where} lies outside the base model`);
    }
    const expectedChunks = Math.ceil(length / chunkBytes);
    if (!Array.isArray(chunks) || chunks.length !== expectedChunks) {
      return fail(`${where} should have ${expectedChunks} chunks`);
    }
    const checked = chunks.map((chunk: unknown, i: number): LlzChunk => {
      if (!Array.isArray(chunk) || chunk.length !== 3 || !chunk.every(isSize)) {
        return fail(`${where}, chunk ${i} is not [offset, length, crc]`);
      }
      const [payloadOffset, payloadLength, crc] = chunk as [number, number, number];
      if (
        payloadOffset < LLZ_HEADER_BYTES ||
        payloadOffset + payloadLength > dataEnd ||
        payloadLength > maxPayload ||
        crc > 0xffffffff
      ) {
        return fail(
          `${where}, chunk ${i} [${payloadOffset}, +${payloadLength}] lies outside the chunk data (${LLZ_HEADER_BYTES}–${dataEnd})`,
        );
      }
      return [payloadOffset, payloadLength, crc];
    });
    return {
      kind,
      offset,
      length,
      ...(kind === 'tensor' ? { name: name as string, dtype: dtype as DType } : {}),
      layout: layout as ByteLayout,
      xor,
      ...(xor ? { baseOffset: baseOffset as number } : {}),
      chunks: checked,
    };
  });
  if (covered !== original.size)
    return fail(`the segments cover ${covered} of ${original.size} bytes`);
  if (original.size > MAX_TENSOR_ELEMENTS) return fail('the original size is too large');
  return {
    version,
    original: { ...original, name: originalObject.name, format: format as ModelFormat },
    base,
    chunkBytes,
    segments,
  };
}

/**
 * Where the base model of a delta container is: the given path, or the one it records,
 * which must stay inside the container's folder (a ModelFileError otherwise, like any path
 * a file names). A recorded base that is missing still gives its path.
 */
export async function basePathOf(container: LlzContainer, given?: string): Promise<string | null> {
  if (!container.index.base) return null;
  if (given) return path.resolve(given);
  return (await confinedPath(container.path, container.index.base.path, 'the base model path'))
    .path;
}

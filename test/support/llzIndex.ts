/**
 * Reads and rewrites the index of a packed (.llz) file as bytes, without the reader under
 * test: the trailer's last 24 bytes hold the index offset and length (u64 little-endian)
 * and a magic; the index is raw-deflated JSON. Tests and the fuzz harness edit it to build
 * hostile containers.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { xxh64Reference } from '../../src/server/lossless/chunkHash';

const TRAILER_BYTES = 24;

/** The index JSON of a packed file, and the bytes before it. */
export function readLlzIndex(file: Uint8Array): { body: Uint8Array; index: unknown } {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const trailer = file.byteLength - TRAILER_BYTES;
  const offset = Number(view.getBigUint64(trailer, true));
  const length = Number(view.getBigUint64(trailer + 8, true));
  const text = inflateRawSync(file.subarray(offset, offset + length)).toString('utf8');
  return { body: file.subarray(0, offset), index: JSON.parse(text) as unknown };
}

/** A packed file of `body` followed by `indexText` (JSON text, deflated here) and its trailer. */
export function withLlzIndexText(
  file: Uint8Array,
  body: Uint8Array,
  indexText: string | Uint8Array,
): Uint8Array {
  const index = deflateRawSync(indexText);
  const out = new Uint8Array(body.byteLength + index.byteLength + TRAILER_BYTES);
  out.set(body, 0);
  out.set(index, body.byteLength);
  // The trailer keeps its magic; only the offset and length change.
  out.set(file.subarray(file.byteLength - TRAILER_BYTES), body.byteLength + index.byteLength);
  const view = new DataView(out.buffer);
  view.setBigUint64(body.byteLength + index.byteLength, BigInt(body.byteLength), true);
  view.setBigUint64(body.byteLength + index.byteLength + 8, BigInt(index.byteLength), true);
  return out;
}

/** `file` with its index replaced by `edit(index)`. */
export function rewriteLlzIndex(
  file: Uint8Array,
  edit: (index: Record<string, unknown>) => unknown,
): Uint8Array {
  const { body, index } = readLlzIndex(file);
  return withLlzIndexText(file, body, JSON.stringify(edit(index as Record<string, unknown>)));
}

/**
 * The chunk digest a version-4 or later packed file should record for `original`, worked
 * out here from the format's definition (docs/llz-format.md), without the packer: the
 * SHA-256 of the hashes of the original's chunks (SHA-256 in version 4; from version 5
 * XXH64 by the BigInt reference, not the kernels the packer runs), segment by segment,
 * each cut every `chunkBytes`.
 */
export function expectedChunkDigest(packed: Uint8Array, original: Uint8Array): string {
  const index = readLlzIndex(packed).index as {
    version: number;
    chunkBytes: number;
    segments: { offset: number; length: number }[];
  };
  const hash = (bytes: Uint8Array) =>
    index.version >= 5 ? xxh64Reference(bytes) : createHash('sha256').update(bytes).digest();
  const root = createHash('sha256');
  for (const { offset, length } of index.segments) {
    for (let at = 0; at < length; at += index.chunkBytes) {
      const end = Math.min(length, at + index.chunkBytes);
      root.update(hash(original.subarray(offset + at, offset + end)));
    }
  }
  return root.digest('hex');
}

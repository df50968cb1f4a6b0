/**
 * Random access into a packed file: any byte range of the original file, decoded from the
 * few chunks that cover it (synchronously, so that it can back a tensor's `load()`).
 */
import * as fs from 'node:fs';
import { readExactlySync } from '../formats/fileRange';
import { ModelFileError } from '../formats/types';
import { chunkHashOf, chunkRawLength, type LlzContainer } from './container';
import { decodeChunkJob } from './decodeJob';

/**
 * Bytes [offset, offset + length) of the container's original file. `basePath` is the base
 * model of a delta container (null when it is not a delta, or the base is missing: reading
 * a delta tensor then fails with a message saying so).
 */
export function readOriginalRange(
  container: LlzContainer,
  basePath: string | null,
  offset: number,
  length: number,
): Uint8Array {
  const { index } = container;
  const out = new Uint8Array(length);
  if (length === 0) return out;
  const end = offset + length;
  if (offset < 0 || end > index.original.size) {
    throw new RangeError(
      `bytes ${offset}–${end} lie outside the original file (${index.original.size} bytes)`,
    );
  }
  let fd: number;
  try {
    fd = fs.openSync(container.path, 'r');
  } catch {
    throw new ModelFileError(container.path, 'the file does not exist or cannot be read');
  }
  let baseFd: number | null = null;
  try {
    for (const segment of index.segments) {
      const segmentEnd = segment.offset + segment.length;
      if (segmentEnd <= offset || segment.offset >= end) continue;
      if (segment.xor && baseFd === null) {
        if (!basePath) {
          throw new ModelFileError(
            container.path,
            `tensor "${segment.name}" is stored as a delta against ${index.base!.path}, which is missing`,
          );
        }
        try {
          baseFd = fs.openSync(basePath, 'r');
        } catch {
          throw new ModelFileError(basePath, 'the base model of this delta cannot be read');
        }
      }
      const first = Math.floor(Math.max(0, offset - segment.offset) / index.chunkBytes);
      const last = Math.floor((Math.min(end, segmentEnd) - 1 - segment.offset) / index.chunkBytes);
      for (let chunk = first; chunk <= last; chunk++) {
        const [payloadOffset, payloadLength, crc] = segment.chunks[chunk]!;
        const rawLength = chunkRawLength(index, segment, chunk);
        const payload = readExactlySync(fd, container.path, payloadOffset, payloadLength);
        const base = segment.xor
          ? readExactlySync(
              baseFd!,
              basePath!,
              segment.baseOffset! + chunk * index.chunkBytes,
              rawLength,
            )
          : undefined;
        const { bytes } = decodeChunkJob({
          op: 'decode',
          layout: segment.layout,
          payload,
          chunks: [
            {
              payloadLength,
              rawLength,
              crc,
              where:
                segment.kind === 'tensor'
                  ? `chunk ${chunk} of tensor "${segment.name}"`
                  : `chunk ${chunk} of the file's structure`,
            },
          ],
          ...(base ? { base } : {}),
          file: container.path,
          digests: chunkHashOf(index.version),
        });
        const chunkStart = segment.offset + chunk * index.chunkBytes;
        const from = Math.max(offset, chunkStart);
        const to = Math.min(end, chunkStart + rawLength);
        out.set(bytes.subarray(from - chunkStart, to - chunkStart), from - offset);
      }
    }
  } finally {
    fs.closeSync(fd);
    if (baseFd !== null) fs.closeSync(baseFd);
  }
  return out;
}

/**
 * Reading an exact byte range of a model file. A file shorter than the range (truncated,
 * or changed while being read) is a ModelFileError naming the file and where it ended.
 */
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ModelFileError } from './modelFileError';

function endedEarly(filePath: string, at: number, end: number): ModelFileError {
  return new ModelFileError(
    filePath,
    `the file ended at byte ${at}, before byte ${end} (truncated, or changed while being read?)`,
  );
}

/** Bytes [position, position + length) of an open file. */
export async function readExactly(
  handle: FileHandle,
  filePath: string,
  position: number,
  length: number,
): Promise<Uint8Array> {
  return readInto(handle, filePath, position, new Uint8Array(length));
}

/** Fill `target` with the bytes at `position` of an open file (a reused buffer); returns it. */
export async function readInto(
  handle: FileHandle,
  filePath: string,
  position: number,
  target: Uint8Array,
): Promise<Uint8Array> {
  const length = target.length;
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(target, filled, length - filled, position + filled);
    if (bytesRead === 0) throw endedEarly(filePath, position + filled, position + length);
    filled += bytesRead;
  }
  return target;
}

/** The same, synchronously, from a file descriptor. */
export function readExactlySync(
  fd: number,
  filePath: string,
  position: number,
  length: number,
): Uint8Array {
  return readIntoSync(fd, filePath, position, new Uint8Array(length));
}

/** Fill `target` with the bytes at `position` of a file descriptor; returns it. */
export function readIntoSync(
  fd: number,
  filePath: string,
  position: number,
  target: Uint8Array,
): Uint8Array {
  const length = target.length;
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, target, filled, length - filled, position + filled);
    if (read === 0) throw endedEarly(filePath, position + filled, position + length);
    filled += read;
  }
  return target;
}

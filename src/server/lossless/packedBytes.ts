/**
 * A packed file's tensor read by a worker thread: the container's index is read once per
 * worker (kept while the file is unchanged) and the tensor's chunks are decoded in order,
 * a piece at a time, so that the main thread neither decodes nor holds the bytes.
 */
import * as fs from 'node:fs';
import type { TensorBytes } from '../analysis/stats';
import type { PackedRange } from '../formats/types';
import { readContainer, type LlzContainer } from './container';
import { readOriginalRange } from './reader';

/** Containers whose index a worker keeps (the few models open at a time). */
const KEPT_CONTAINERS = 8;
const containers = new Map<string, Promise<LlzContainer>>();

/** The container at `filePath`, its index read again when the file's size or time changed. */
function containerAt(filePath: string): Promise<LlzContainer> {
  let key = filePath;
  try {
    const stat = fs.statSync(filePath);
    key = `${filePath}\0${stat.size}\0${stat.mtimeMs}`;
  } catch {
    // readContainer names the file and the problem.
  }
  let container = containers.get(key);
  if (!container) {
    container = readContainer(filePath);
    container.catch(() => containers.delete(key));
    containers.set(key, container);
    if (containers.size > KEPT_CONTAINERS) containers.delete(containers.keys().next().value!);
  }
  return container;
}

/** Bytes [offset, offset + length) of a packed file's original, decoded piece by piece. */
export function packedTensorBytes(range: PackedRange, length: number): TensorBytes {
  return {
    byteLength: length,
    async chunks(chunkBytes, visit) {
      const container = await containerAt(range.container);
      for (let start = 0; start < length; start += chunkBytes) {
        const piece = Math.min(chunkBytes, length - start);
        visit(readOriginalRange(container, range.base, range.offset + start, piece));
      }
    },
  };
}

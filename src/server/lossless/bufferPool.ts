/**
 * Buffers reused from job to job by packing and unpacking: a run of chunks is read into
 * one, moved to a worker, and comes back with the job's result, so that a file of any
 * size is streamed through a fixed set of buffers instead of a fresh allocation (page
 * faults, zeroing, garbage) per job.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  /** Buffers of `capacity` bytes; at most `kept` are held while unused. */
  constructor(
    private readonly capacity: number,
    private readonly kept: number,
  ) {}

  /**
   * A view of `length` bytes on a free buffer or a new one; longer than the capacity, a
   * buffer of its own that `give` will not keep.
   */
  take(length: number): Uint8Array {
    if (length > this.capacity) return new Uint8Array(length);
    return new Uint8Array(this.free.pop() ?? new ArrayBuffer(this.capacity), 0, length);
  }

  /** Hand back the buffer under `view` (one of this pool's, moved back from a worker). */
  give(view: Uint8Array | undefined): void {
    const buffer = view?.buffer;
    if (
      buffer instanceof ArrayBuffer &&
      buffer.byteLength === this.capacity &&
      this.free.length < this.kept &&
      !this.free.includes(buffer)
    ) {
      this.free.push(buffer);
    }
  }
}

/** Scratch buffers above this size are not kept from one job to the next. */
const KEPT_SCRATCH_BYTES = 32 * 1024 * 1024;
const scratch: (Uint8Array | undefined)[] = [];

/**
 * A view of `length` bytes on this thread's scratch buffer number `slot`, reused from job
 * to job (workers that read and write files themselves keep their bytes there); its
 * contents are those of the previous use.
 */
export function threadScratch(slot: number, length: number): Uint8Array {
  const kept = scratch[slot];
  if (kept && kept.length >= length) return kept.subarray(0, length);
  const fresh = new Uint8Array(length);
  scratch[slot] = length <= KEPT_SCRATCH_BYTES ? fresh : undefined;
  return fresh;
}

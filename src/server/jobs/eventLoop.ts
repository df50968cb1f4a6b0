/**
 * Long synchronous work on the server's main thread lets the event loop run now and then,
 * so that other requests (a cancel, another file's summary) are answered meanwhile.
 */

/** Let pending messages (a cancel) through between long synchronous steps. */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Longest stretch of work between two yields, in milliseconds. */
const SLICE_MS = 20;
/** Steps between two looks at the clock. */
const STEPS_PER_CHECK = 256;

/**
 * Paces a long loop: after each item, `if (slicer.due()) await slicer.pause();` yields to
 * the event loop once SLICE_MS have passed since the last yield (the clock is read every
 * STEPS_PER_CHECK steps, so a step costs a counter increment).
 */
export class TimeSlicer {
  private sliceStart = performance.now();
  private steps = 0;

  /** True when the current slice is used up. */
  due(): boolean {
    if (++this.steps % STEPS_PER_CHECK !== 0) return false;
    return performance.now() - this.sliceStart >= SLICE_MS;
  }

  /** True when the current slice is used up (reads the clock: for coarse steps). */
  sliceUsed(): boolean {
    return performance.now() - this.sliceStart >= SLICE_MS;
  }

  /** Yield now and start a new slice. */
  async pause(): Promise<void> {
    await yieldToEvents();
    this.sliceStart = performance.now();
  }
}

/**
 * Jobs started a few at a time and consumed in order (packing's pieces, the CLI's spectra).
 *
 * Run `start(i)` for i = 0…count−1 with at most `window` in flight, handing each result to
 * `consume` in order. Stops at the first failure, once the jobs in flight have settled: a
 * job may read and write through the caller's file descriptors, which must stay open (and
 * not be reused for another file) until no job holds them.
 */
export async function orderedPipeline<T>(
  count: number,
  window: number,
  start: (i: number) => Promise<T>,
  consume: (i: number, result: T) => Promise<void>,
): Promise<void> {
  const inFlight: Promise<T>[] = [];
  let next = 0;
  try {
    for (let done = 0; done < count; done++) {
      while (next < count && inFlight.length < window) {
        const started = start(next++);
        // Awaited in order below; a job failing before its turn must not count as unhandled.
        started.catch(() => {});
        inFlight.push(started);
      }
      await consume(done, await inFlight.shift()!);
    }
  } catch (error) {
    await Promise.allSettled(inFlight);
    throw error;
  }
}

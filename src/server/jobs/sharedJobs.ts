/**
 * Results cached by key, with the computation of a key shared by every request that asks
 * for it while it runs. Each caller may cancel its own wait; the computation itself is
 * aborted only when no caller waits any more. Finished results are kept, least recently
 * used dropped first beyond `capacity`; failures are not kept.
 */
import { JobAbortedError } from './workerPool';

interface Running<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
}

export class SharedJobs<T> {
  private readonly finished = new Map<string, T>();
  private readonly running = new Map<string, Running<T>>();

  constructor(private readonly capacity: number) {}

  /** The cached result of `key`, without computing it. */
  peek(key: string): T | undefined {
    return this.finished.get(key);
  }

  get(key: string, compute: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const known = this.finished.get(key);
    if (known !== undefined) {
      this.finished.delete(key);
      this.finished.set(key, known);
      return Promise.resolve(known);
    }
    if (signal?.aborted) return Promise.reject(new JobAbortedError());
    let running = this.running.get(key);
    if (!running) {
      const controller = new AbortController();
      const started: Running<T> = {
        controller,
        waiters: 0,
        promise: compute(controller.signal).then(
          (result) => {
            // Forgotten or abandoned while it ran: the result is not kept.
            if (this.running.get(key) === started) {
              this.running.delete(key);
              this.remember(key, result);
            }
            return result;
          },
          (error: unknown) => {
            if (this.running.get(key) === started) this.running.delete(key);
            throw error;
          },
        ),
      };
      // Rejections reach the waiters; an abandoned computation's failure goes nowhere.
      started.promise.catch(() => undefined);
      running = started;
      this.running.set(key, running);
    }
    const job = running;
    job.waiters++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        job.waiters--;
        if (job.waiters === 0) {
          job.controller.abort();
          if (this.running.get(key) === job) this.running.delete(key);
        }
        reject(new JobAbortedError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      job.promise.then(
        (result) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        (error: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** Forget results whose key starts with `prefix`; running ones still answer their callers but are not kept. */
  forget(prefix: string): void {
    for (const key of [...this.finished.keys()]) {
      if (key.startsWith(prefix)) this.finished.delete(key);
    }
    for (const key of [...this.running.keys()]) {
      if (key.startsWith(prefix)) this.running.delete(key);
    }
  }

  /** Forget everything and abort what runs. */
  clear(): void {
    for (const job of this.running.values()) job.controller.abort();
    this.running.clear();
    this.finished.clear();
  }

  private remember(key: string, result: T): void {
    this.finished.set(key, result);
    while (this.finished.size > this.capacity) {
      this.finished.delete(this.finished.keys().next().value as string);
    }
  }
}

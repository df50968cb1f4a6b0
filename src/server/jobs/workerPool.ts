/**
 * A fixed-size pool of worker threads with a FIFO queue. Each worker runs one job at a
 * time; a job can be cancelled while queued (it is dropped) or while running (the worker
 * is asked to stop through a shared flag it polls between chunks). A worker that dies
 * fails its job and is replaced by a fresh one on the next dispatch.
 *
 * The worker side of the protocol is `serveJobs`, called by the worker script.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { parentPort, Worker, workerData, type TransferListItem } from 'node:worker_threads';
import { ModelFileError } from '../formats/types';
import type { StatsJob, StatsJobResult } from './statsJob';

/** Most workers a pool starts by default: statistics are memory-bound, more threads stop helping. */
const DEFAULT_MAX_WORKERS = 8;

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(os.availableParallelism(), DEFAULT_MAX_WORKERS));
}

/**
 * The statistics worker script. Bundled, this module is inside dist/server.js (or
 * dist/cli.js) and the worker is the separate bundle dist/statsWorker.js beside it. Run
 * from source under tsx (tests, scripts), `__filename` is this .ts file and the worker is
 * the TypeScript source next to it.
 */
export function statsWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, 'statsWorker.ts')
    : path.join(__dirname, 'statsWorker.js');
}

/**
 * A worker for `script`. Node does not carry tsx's loader hooks into worker threads, so a
 * TypeScript script is started through a one-line bootstrap that registers tsx's
 * require hook first; only source runs (tests) take that path, never the bundle.
 */
function startWorkerThread(script: string, workerData: PoolWorkerData): Worker {
  if (!script.endsWith('.ts')) return new Worker(script, { workerData });
  // tsx is resolved from this source file, inside the project, wherever `script` lies.
  const load = `require('node:module').createRequire(${JSON.stringify(__filename)})`;
  const bootstrap = `const load = ${load}; load('tsx/cjs'); load(${JSON.stringify(script)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** The rejection of a cancelled job. */
export class JobAbortedError extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('The job was cancelled');
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** Set when the worker failed with a ModelFileError, so that it is rebuilt as one. */
  readonly file?: string;
  readonly problem?: string;
}

type ToWorker<Job> = { readonly kind: 'run'; readonly id: number; readonly job: Job };

type FromWorker<Result> =
  | { readonly kind: 'done'; readonly id: number; readonly result: Result }
  | { readonly kind: 'failed'; readonly id: number; readonly error: SerializedError }
  | { readonly kind: 'cancelled'; readonly id: number };

interface PoolWorkerData {
  /** Holds the id of the job the worker should abandon (0: none). */
  readonly cancelFlag: Int32Array;
}

/** What a job handler can ask while it runs. */
export interface JobControl {
  /** True once the pool was told to cancel this job; poll it between chunks of work. */
  isCancelled(): boolean;
}

interface Task<Job, Result> {
  readonly id: number;
  readonly job: Job;
  readonly transfer: readonly TransferListItem[];
  readonly resolve: (result: Result) => void;
  readonly reject: (error: Error) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
}

interface Slot<Job, Result> {
  worker: Worker | null;
  readonly cancelFlag: Int32Array;
  task: Task<Job, Result> | null;
  lastError: Error | null;
}

export class WorkerPool<Job = StatsJob, Result = StatsJobResult> {
  private readonly slots: Slot<Job, Result>[] = [];
  private readonly queue: Task<Job, Result>[] = [];
  private nextId = 1;
  private disposed = false;

  constructor(
    readonly size: number = defaultPoolSize(),
    private readonly script: string = statsWorkerScript(),
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`worker pool size must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      this.slots.push({
        worker: null,
        cancelFlag: new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)),
        task: null,
        lastError: null,
      });
    }
  }

  /** Worker threads started and not stopped (busy or idle). */
  get startedCount(): number {
    return this.slots.filter((slot) => slot.worker !== null).length;
  }

  /** Jobs waiting for a free worker. */
  get queuedCount(): number {
    return this.queue.length;
  }

  /**
   * Queue a job. `transfer` lists buffers moved (not copied) to the worker; they become
   * unusable here. Rejects with an AbortError when `signal` aborts first.
   */
  run(job: Job, signal?: AbortSignal, transfer: readonly TransferListItem[] = []): Promise<Result> {
    if (this.disposed) return Promise.reject(new Error('the worker pool has been shut down'));
    if (signal?.aborted) return Promise.reject(new JobAbortedError());
    return new Promise<Result>((resolve, reject) => {
      const task: Task<Job, Result> = {
        id: this.nextId++,
        job,
        transfer,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        settled: false,
      };
      if (signal) {
        task.onAbort = () => this.abort(task);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.queue.push(task);
      this.dispatch();
    });
  }

  /**
   * Starts every worker that is not running yet, so that their start-up (loading the
   * script, compiling its kernels) overlaps the caller's own work before the first job.
   * Idle, they do not keep the process alive.
   */
  start(): void {
    if (this.disposed) return;
    for (const slot of this.slots) {
      if (!slot.worker) this.startWorker(slot).unref();
    }
  }

  /** Terminate every worker; queued and running jobs reject. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const shutDown = () => new Error('the worker pool was shut down before the job finished');
    for (const task of this.queue.splice(0)) this.settle(task, shutDown());
    for (const slot of this.slots) {
      if (slot.task) this.settle(slot.task, shutDown());
      slot.task = null;
      const worker = slot.worker;
      slot.worker = null;
      void worker?.terminate();
    }
  }

  private settle(task: Task<Job, Result>, outcome: { result: Result } | Error): void {
    if (task.settled) return;
    task.settled = true;
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    if (outcome instanceof Error) task.reject(outcome);
    else task.resolve(outcome.result);
  }

  private abort(task: Task<Job, Result>): void {
    const position = this.queue.indexOf(task);
    if (position >= 0) {
      this.queue.splice(position, 1);
    } else {
      // Running: the worker stops at its next check and reports back; its slot stays
      // busy until then so that no second job shares the thread.
      const slot = this.slots.find((candidate) => candidate.task === task);
      if (slot) Atomics.store(slot.cancelFlag, 0, task.id);
    }
    this.settle(task, new JobAbortedError());
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.disposed || this.queue.length === 0) return;
      if (slot.task) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      try {
        const worker = slot.worker ?? this.startWorker(slot);
        worker.ref();
        const message: ToWorker<Job> = { kind: 'run', id: task.id, job: task.job };
        worker.postMessage(message, task.transfer);
      } catch (error) {
        slot.task = null;
        this.settle(task, error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  private startWorker(slot: Slot<Job, Result>): Worker {
    const data: PoolWorkerData = { cancelFlag: slot.cancelFlag };
    const worker = startWorkerThread(this.script, data);
    slot.worker = worker;
    slot.lastError = null;
    worker.on('message', (message: FromWorker<Result>) => this.onMessage(slot, message));
    worker.on('error', (error) => {
      slot.lastError = error;
    });
    worker.on('exit', (code) => this.onExit(slot, worker, code));
    return worker;
  }

  private onMessage(slot: Slot<Job, Result>, message: FromWorker<Result>): void {
    const task = slot.task;
    if (!task || task.id !== message.id) return;
    slot.task = null;
    // An idle worker must not keep the process alive (e.g. a CLI that forgot dispose()).
    slot.worker?.unref();
    if (message.kind === 'done') this.settle(task, { result: message.result });
    else if (message.kind === 'cancelled') this.settle(task, new JobAbortedError());
    else this.settle(task, deserializeError(message.error));
    this.dispatch();
  }

  private onExit(slot: Slot<Job, Result>, worker: Worker, exitCode: number): void {
    if (slot.worker !== worker) return;
    slot.worker = null;
    const task = slot.task;
    slot.task = null;
    if (task) {
      const cause = slot.lastError ? slot.lastError.message : `exit code ${exitCode}`;
      this.settle(
        task,
        new Error(`the worker thread running the job stopped unexpectedly (${cause})`),
      );
    }
    this.dispatch();
  }
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof ModelFileError) {
    return { name: error.name, message: error.message, file: error.file, problem: error.problem };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

function deserializeError(serialized: SerializedError): Error {
  if (serialized.file !== undefined && serialized.problem !== undefined) {
    return new ModelFileError(serialized.file, serialized.problem);
  }
  const error = new Error(serialized.message);
  error.name = serialized.name;
  return error;
}

/**
 * Worker side: answer the pool's jobs with `handle`, one at a time. `transferOf` lists
 * buffers of a result to move rather than copy back.
 */
export function serveJobs<Job, Result>(
  handle: (job: Job, control: JobControl) => Promise<Result>,
  transferOf: (result: Result) => readonly TransferListItem[] = () => [],
): void {
  const port = parentPort;
  if (!port) throw new Error('serveJobs must run inside a worker thread');
  const { cancelFlag } = workerData as PoolWorkerData;
  port.on('message', (message: ToWorker<Job>) => {
    const control: JobControl = { isCancelled: () => Atomics.load(cancelFlag, 0) === message.id };
    const reply = (answer: FromWorker<Result>, transfer: readonly TransferListItem[] = []) =>
      port.postMessage(answer, transfer);
    handle(message.job, control).then(
      (result) => {
        if (control.isCancelled()) reply({ kind: 'cancelled', id: message.id });
        else reply({ kind: 'done', id: message.id, result }, transferOf(result));
      },
      (error: unknown) => {
        if (control.isCancelled()) reply({ kind: 'cancelled', id: message.id });
        else reply({ kind: 'failed', id: message.id, error: serializeError(error) });
      },
    );
  });
}

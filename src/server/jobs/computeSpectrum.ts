/**
 * Spectra computed in worker threads: the Gram matrix, band reduction and eigen-solver run
 * there, so that the server's event loop only waits. A full or top-k spectrum runs in one
 * worker whose onnxruntime products use every core. The 'fast' method (whole models,
 * hundreds of matrices) runs its matrices side by side instead, one worker per core with
 * single-threaded products: much of its work (reading and widening the values, Lanczos
 * vectors, small factorisations) is single-threaded JavaScript that a second core would
 * otherwise only wait for.
 *
 * A matrix stored as a plain range of a file is read by the worker itself (a
 * MatrixFileSource: path, offset, stored type), so its values never pass through the
 * caller's thread. A matrix of more than MAX_SPECTRUM_HELD_BYTES of values is streamed
 * from the file in row panels instead (streamsSpectrum), so a job holds at most that much
 * of values. Streamed jobs, 'fast' ones included, run in the single worker with every core:
 * what bounds the process then is each worker's own memory (onnxruntime's sessions and
 * buffers, the allocator's arenas: about 100 MB once it has run the products), not the
 * values, so one worker keeps a whole LLM's spectra under 300 MB. The fast workers together
 * hold at most FAST_SPECTRA_MEMORY_BYTES of values (a larger in-memory tensor alone).
 */
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import {
  checkTensorShape,
  spectralMetrics,
  streamsSpectrum,
  throwIfAborted,
  type SpectrumComputation,
  type SpectrumSettings,
} from '../analysis/spectrum';
import type { MatrixFileSource } from '../analysis/tensorMatrix';
import type { Spectrum, SpectrumOptions } from '../../shared/spectrum';
import { MAX_SPECTRUM_HELD_BYTES } from '../../shared/limits';
import { WorkerPool } from './workerPool';
import { Semaphore } from 'async-mutex';

/** Most workers that compute 'fast' spectra side by side (each holds one matrix's values). */
export const MAX_FAST_SPECTRUM_WORKERS = 4;

/** The values of one spectrum job: in memory, or where the worker reads them. */
export type SpectrumInput =
  { readonly values: Float32Array | Float64Array } | { readonly source: MatrixFileSource };

/** One spectrum job as the worker receives it. */
export type SpectrumJob = SpectrumInput & {
  readonly shape: readonly number[];
  readonly options: SpectrumOptions;
  readonly settings: SpectrumSettings;
};

/** The worker script: dist/spectrumWorker.js beside the bundle, or the source under tsx. */
export function spectrumWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, 'spectrumWorker.ts')
    : path.join(__dirname, 'spectrumWorker.js');
}

type SpectrumPool = WorkerPool<SpectrumJob, SpectrumComputation>;
let pool: SpectrumPool | null = null;
let fastPool: SpectrumPool | null = null;

/** Workers for 'fast' spectra: one per core, at most MAX_FAST_SPECTRUM_WORKERS. */
export function fastSpectrumWorkers(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_FAST_SPECTRUM_WORKERS));
}

/**
 * Bytes of matrix values that the 'fast' workers hold at once: two jobs of
 * MAX_SPECTRUM_HELD_BYTES (larger file matrices are streamed); a larger in-memory tensor
 * waits and runs alone.
 */
export const FAST_SPECTRA_MEMORY_BYTES = 2 * MAX_SPECTRUM_HELD_BYTES;
const fastMemory = new Semaphore(FAST_SPECTRA_MEMORY_BYTES);

/** Runs one spectrum in a spectrum worker, starting the pool on first use. */
export function runSpectrumJob(
  input: SpectrumInput,
  shape: readonly number[],
  options: SpectrumOptions,
  settings: SpectrumSettings,
  signal?: AbortSignal,
): Promise<SpectrumComputation> {
  const start = (target: SpectrumPool, jobSettings: SpectrumSettings) => {
    const common = { shape: [...shape], options: { ...options }, settings: jobSettings };
    if ('source' in input) return target.run({ source: input.source, ...common }, signal);
    // A private copy: the caller keeps its array, and the copy's buffer can be moved.
    const copy = input.values.slice();
    return target.run({ values: copy, ...common }, signal, [copy.buffer]);
  };
  if (options.method !== 'fast' || ('source' in input && streamsSpectrum(shape, options))) {
    pool ??= new WorkerPool<SpectrumJob, SpectrumComputation>(1, spectrumWorkerScript());
    return start(pool, settings);
  }
  const workers = fastSpectrumWorkers();
  fastPool ??= new WorkerPool<SpectrumJob, SpectrumComputation>(workers, spectrumWorkerScript());
  const fastWorkers = fastPool;
  // The cores are shared out between the workers, and the memory budget between the jobs.
  const threads = Math.max(1, Math.floor(availableParallelism() / workers));
  const elementBytes = options.precision === 'float64' ? 8 : 4;
  const bytes = shape.reduce((product, side) => product * side, elementBytes);
  return fastMemory.runExclusive(
    () => start(fastWorkers, { ...settings, threads }),
    Math.max(1, Math.min(FAST_SPECTRA_MEMORY_BYTES, bytes)),
  );
}

/**
 * The singular spectrum of a tensor, computed in the spectrum worker thread so that the
 * caller's event loop stays free. Values are the tensor's, row-major (copied, not taken),
 * `shape` its dimensions (at least two). Rejects with an AbortError when `signal` aborts.
 */
export async function computeTensorSpectrum(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  options: SpectrumOptions = {},
  signal?: AbortSignal,
  settings: SpectrumSettings = {},
): Promise<SpectrumComputation> {
  throwIfAborted(signal);
  // Shape errors are reported here, before any copy or thread hop.
  checkTensorShape(values, shape);
  return runSpectrumJob({ values }, shape, options, settings, signal);
}

/**
 * The spectrum of a matrix as the webview shows it: singular values from a spectrum worker
 * and their metrics; `index` names the tensor it belongs to. `input` holds row-major
 * values, or names a matrix stored as one range of a file (`shape` its dimensions, which
 * fill the stored bytes: tensorMatrixShape checked them) that the worker reads itself.
 */
export async function spectrumOf(
  input: SpectrumInput,
  shape: readonly number[],
  index: number,
  options: SpectrumOptions = {},
  settings: SpectrumSettings = {},
  signal?: AbortSignal,
): Promise<Spectrum> {
  const started = performance.now();
  let result: SpectrumComputation;
  if ('values' in input) {
    result = await computeTensorSpectrum(input.values, shape, options, signal, settings);
  } else {
    throwIfAborted(signal);
    result = await runSpectrumJob(input, shape, options, settings, signal);
  }
  return {
    index,
    rows: result.rows,
    cols: result.cols,
    method: result.method,
    precision: result.precision,
    conv: result.conv,
    singularValues: Array.from(result.singularValues),
    frobeniusSquared: result.frobeniusSquared,
    metrics: spectralMetrics(
      result.singularValues,
      result.rows,
      result.cols,
      result.frobeniusSquared,
      result.sums,
    ),
    backend: result.backend,
    elapsedMs: performance.now() - started,
  };
}

/** Stops the spectrum workers (a later job starts fresh ones). */
export function disposeSpectrumWorker(): void {
  pool?.dispose();
  pool = null;
  fastPool?.dispose();
  fastPool = null;
}

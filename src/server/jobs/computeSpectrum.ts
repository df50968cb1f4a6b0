/**
 * Spectra computed in a dedicated worker thread: the Gram matrix, band reduction and
 * eigen-solver run there (onnxruntime's own threads do the matrix products), so that the
 * server's event loop only waits. One worker is enough: onnxruntime already uses every
 * core, and a second spectrum at the same time would only compete for them.
 */
import * as path from 'node:path';
import {
  checkTensorShape,
  spectralMetrics,
  throwIfAborted,
  type SpectrumComputation,
  type SpectrumSettings,
} from '../analysis/spectrum';
import type { Spectrum, SpectrumOptions } from '../../shared/spectrum';
import { WorkerPool } from './workerPool';

/** One spectrum job as the worker receives it. */
export interface SpectrumJob {
  /** The tensor's values (transferred, not copied). */
  readonly values: Float32Array | Float64Array;
  readonly shape: readonly number[];
  readonly options: SpectrumOptions;
  readonly settings: SpectrumSettings;
}

/** The worker script: dist/spectrumWorker.js beside the bundle, or the source under tsx. */
export function spectrumWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, 'spectrumWorker.ts')
    : path.join(__dirname, 'spectrumWorker.js');
}

let pool: WorkerPool<SpectrumJob, SpectrumComputation> | null = null;

/** Runs one spectrum in the worker, starting it on first use. */
export function runSpectrumJob(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  options: SpectrumOptions,
  settings: SpectrumSettings,
  signal?: AbortSignal,
): Promise<SpectrumComputation> {
  pool ??= new WorkerPool<SpectrumJob, SpectrumComputation>(1, spectrumWorkerScript());
  // A private copy: the caller keeps its array, and the copy's buffer can be moved.
  const copy = values.slice();
  const job: SpectrumJob = { values: copy, shape: [...shape], options: { ...options }, settings };
  return pool.run(job, signal, [copy.buffer]);
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
  return runSpectrumJob(values, shape, options, settings, signal);
}

/**
 * The spectrum of row-major `values` as the webview shows it: singular values from the
 * spectrum worker and their metrics; `index` names the tensor it belongs to.
 */
export async function spectrumOfValues(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  index: number,
  options: SpectrumOptions = {},
  settings: SpectrumSettings = {},
  signal?: AbortSignal,
): Promise<Spectrum> {
  const started = performance.now();
  const result = await computeTensorSpectrum(values, shape, options, signal, settings);
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

/** Stops the spectrum worker (a later job starts a fresh one). */
export function disposeSpectrumWorker(): void {
  pool?.dispose();
  pool = null;
}

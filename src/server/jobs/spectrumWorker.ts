/**
 * Worker-thread entry point (bundled as dist/spectrumWorker.js): computes one tensor's
 * singular spectrum per job (reading the values from the file when the job names one, or
 * streaming them in row panels when streamsSpectrum says so) and hands the values back
 * without copying them.
 */
import { fileMatrixPanels } from '../analysis/matrixOperand';
import {
  computeSpectrumInThread,
  computeStreamedSpectrum,
  streamsSpectrum,
  type SpectrumComputation,
} from '../analysis/spectrum';
import { readMatrixFromFile } from '../analysis/tensorMatrix';
import type { SpectrumJob } from './computeSpectrum';
import { serveJobs } from './workerPool';

/** Idle milliseconds after which the worker lets go of its values buffer. */
const KEEP_VALUES_MS = 2000;
/**
 * The float32 buffer the last matrix was read into, reused by the next one while jobs follow
 * each other (a whole model's matrices): no fresh allocation per matrix, and no garbage
 * buffers of earlier matrices waiting for collection beside the current one.
 */
let kept: Float32Array | null = null;
let release: ReturnType<typeof setTimeout> | undefined;

async function valuesOf(job: SpectrumJob): Promise<Float32Array | Float64Array> {
  if (!('source' in job)) return job.values;
  clearTimeout(release);
  const values = await readMatrixFromFile(job.source, undefined, kept ?? undefined);
  if (values instanceof Float32Array && values.buffer !== kept?.buffer) {
    kept = new Float32Array(values.buffer);
  }
  return values;
}

serveJobs<SpectrumJob, SpectrumComputation>(
  async (job, control) => {
    const isCancelled = () => control.isCancelled();
    if ('source' in job && streamsSpectrum(job.shape, job.options)) {
      const Element = job.options.precision === 'float64' ? Float64Array : Float32Array;
      const panels = fileMatrixPanels<Float32Array | Float64Array>(job.source, Element);
      try {
        return await computeStreamedSpectrum(panels, job.options, isCancelled, job.settings);
      } finally {
        panels.close();
      }
    }
    try {
      return await computeSpectrumInThread(
        await valuesOf(job),
        job.shape,
        job.options,
        isCancelled,
        job.settings,
      );
    } finally {
      clearTimeout(release);
      release = setTimeout(() => (kept = null), KEEP_VALUES_MS);
      release.unref();
    }
  },
  // The values own their buffer (the solvers allocate them), so it can be moved.
  (result) => [result.singularValues.buffer as ArrayBuffer],
);

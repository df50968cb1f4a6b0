/**
 * Worker-thread entry point (bundled as dist/spectrumWorker.js): computes one tensor's
 * singular spectrum per job (reading the values from the file when the job names one) and
 * hands the values back without copying them.
 */
import { computeSpectrumInThread, type SpectrumComputation } from '../analysis/spectrum';
import { readMatrixFromFile } from '../analysis/tensorMatrix';
import type { SpectrumJob } from './computeSpectrum';
import { serveJobs } from './workerPool';

serveJobs<SpectrumJob, SpectrumComputation>(
  async (job, control) =>
    computeSpectrumInThread(
      'source' in job ? await readMatrixFromFile(job.source) : job.values,
      job.shape,
      job.options,
      () => control.isCancelled(),
      job.settings,
    ),
  // The values own their buffer (the solvers allocate them), so it can be moved.
  (result) => [result.singularValues.buffer as ArrayBuffer],
);

/**
 * Worker-thread entry point (bundled as dist/losslessWorker.js): codes or decodes one
 * chunk of a packed file per job, or measures how well one tensor packs.
 */
import {
  runLosslessJob,
  transferOfResult,
  type LosslessJob,
  type LosslessResult,
} from '../lossless/jobs';
import { losslessKernels } from '../lossless/losslessWasm';
import { serveJobs } from './workerPool';

serveJobs<LosslessJob, LosslessResult>(
  (job, control) => runLosslessJob(job, () => control.isCancelled()),
  transferOfResult,
);
// The kernels compiled now, while the pool's first job may still be on its way (a pool
// started ahead of its jobs: losslessPool), rather than at its start.
losslessKernels();

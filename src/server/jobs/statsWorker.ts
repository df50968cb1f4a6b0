/**
 * Worker-thread entry point (bundled as dist/statsWorker.js): computes the statistics of
 * one tensor per job, reading its byte range from the file itself or using the bytes the
 * pool transferred.
 */
import {
  computeStats,
  fileTensorBytes,
  memoryTensorBytes,
  type TensorStatsValues,
} from '../analysis/stats';
import type { StatsJob } from './computeStats';
import { serveJobs } from './workerPool';

serveJobs<StatsJob, TensorStatsValues>(async (job, control) => {
  const source =
    job.source.kind === 'file'
      ? fileTensorBytes(job.source.path, job.source.offset, job.source.length)
      : memoryTensorBytes(job.source.bytes);
  return computeStats(job.dtype, job.elementCount, source, {
    chunkBytes: job.chunkBytes,
    isCancelled: () => control.isCancelled(),
  });
});

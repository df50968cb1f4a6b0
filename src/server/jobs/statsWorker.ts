/**
 * Worker-thread entry point (bundled as dist/statsWorker.js): computes the statistics of
 * one tensor per job, reading its byte range from the file itself or using the bytes the
 * pool transferred.
 */
import { computeStats, fileTensorBytes, memoryTensorBytes } from '../analysis/stats';
import { computeHistogramPart, computeMomentsPart } from '../analysis/statsParts';
import type { StatsJob, StatsJobResult } from './computeStats';
import { serveJobs } from './workerPool';

serveJobs<StatsJob, StatsJobResult>(async (job, control) => {
  const source =
    job.source.kind === 'file'
      ? fileTensorBytes(job.source.path, job.source.offset, job.source.length)
      : memoryTensorBytes(job.source.bytes);
  const options = { chunkBytes: job.chunkBytes, isCancelled: () => control.isCancelled() };
  if (job.part?.kind === 'moments') {
    return computeMomentsPart(job.dtype, job.elementCount, source, options);
  }
  if (job.part?.kind === 'histogram') {
    return computeHistogramPart(job.dtype, job.elementCount, source, job.part, options);
  }
  return computeStats(job.dtype, job.elementCount, source, options);
});

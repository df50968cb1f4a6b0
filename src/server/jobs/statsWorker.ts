/**
 * Worker-thread entry point (bundled as dist/statsWorker.js): computes the statistics of
 * one tensor per job, reading its byte range from the file itself, decoding it from a
 * packed file, or using the bytes the pool transferred.
 */
import { computeStats, countPatternsOf } from '../analysis/stats';
import {
  computeHistogramPart,
  computeMomentsPart,
  computeOnePassPart,
} from '../analysis/statsParts';
import type { StatsJob, StatsJobResult } from './statsJob';
import { valueBytesOf } from './tensorSource';
import { serveJobs } from './workerPool';

serveJobs<StatsJob, StatsJobResult>(async (job, control) => {
  const source = valueBytesOf(job.source, job.blocks);
  const options = { chunkBytes: job.chunkBytes, isCancelled: () => control.isCancelled() };
  if (job.part?.kind === 'moments') {
    return computeMomentsPart(job.dtype, job.elementCount, source, options);
  }
  if (job.part?.kind === 'onePass') {
    return computeOnePassPart(job.dtype, job.elementCount, source, options);
  }
  if (job.part?.kind === 'patterns') {
    return countPatternsOf(job.dtype, job.elementCount, source, options);
  }
  if (job.part?.kind === 'histogram') {
    return computeHistogramPart(job.dtype, job.elementCount, source, job.part, options);
  }
  return computeStats(job.dtype, job.elementCount, source, options);
});

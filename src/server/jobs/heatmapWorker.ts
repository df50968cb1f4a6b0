/**
 * Worker-thread entry point (bundled as dist/heatmapWorker.js): one pass over a matrix
 * builds the base level of a heatmap pyramid, with the value range and the structured
 * sparsity counts.
 */
import { decodeValues } from '../analysis/decode';
import { buildPyramidBase, memoryMatrix, type PyramidBase } from '../analysis/heatmap';
import { fileMatrix } from '../analysis/tensorMatrix';
import type { PyramidJob } from './heatmapJobs';
import { JobAbortedError, serveJobs } from './workerPool';

serveJobs<PyramidJob, PyramidBase>(
  async (job, control) => {
    const { matrix } = job;
    const checkCancelled = () => {
      if (control.isCancelled()) throw new JobAbortedError();
    };
    const options = { shape: job.shape, maxPixels: job.maxPixels, checkCancelled };
    if (job.source.kind === 'memory') {
      const values = decodeValues(matrix.dtype, job.source.bytes, matrix.rows * matrix.cols);
      const reader = memoryMatrix(values, matrix.rows, matrix.cols);
      return buildPyramidBase(reader, job.layer, options);
    }
    const reader = fileMatrix(job.source.path, job.source.offset, matrix);
    try {
      return buildPyramidBase(reader, job.layer, options);
    } finally {
      reader.close();
    }
  },
  (result) => [result.sums.sums.buffer as ArrayBuffer],
);

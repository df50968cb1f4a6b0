/**
 * Worker-thread entry point (bundled as dist/heatmapWorker.js): one pass over a range of
 * rows of a matrix builds those rows of a heatmap pyramid's base, with their value range
 * and structured-sparsity counts.
 */
import {
  buildPyramidPart,
  memoryMatrix,
  type MatrixReader,
  type PyramidPart,
} from '../analysis/heatmap';
import { fileMatrix, matrixValues } from '../analysis/tensorMatrix';
import type { PyramidJob } from './heatmapJobs';
import { JobAbortedError, serveJobs } from './workerPool';

serveJobs<PyramidJob, PyramidPart>(
  async (job, control) => {
    const { matrix } = job;
    const checkCancelled = () => {
      if (control.isCancelled()) throw new JobAbortedError();
    };
    const options = { shape: job.shape, maxPixels: job.maxPixels, checkCancelled };
    const { rowStart, rowEnd } = job;
    if (job.source.kind === 'memory') {
      // The bytes hold only this job's rows: row indices are shifted onto them.
      const count = (rowEnd - rowStart) * matrix.cols;
      const values = matrixValues(matrix, job.source.bytes, count);
      const slice = memoryMatrix(values, rowEnd - rowStart, matrix.cols);
      const reader: MatrixReader = {
        rows: matrix.rows,
        cols: matrix.cols,
        read: (start, end, colStart, colEnd) =>
          slice.read(start - rowStart, end - rowStart, colStart, colEnd),
      };
      return buildPyramidPart(reader, job.layer, rowStart, rowEnd, options);
    }
    const reader = fileMatrix(job.source.path, job.source.offset, matrix);
    try {
      return buildPyramidPart(reader, job.layer, rowStart, rowEnd, options);
    } finally {
      reader.close();
    }
  },
  (result) => [result.sums.sums.buffer as ArrayBuffer, result.nonzeroColumns.buffer as ArrayBuffer],
);

/**
 * Worker-thread entry point (bundled as dist/compressWorker.js): compresses one tensor of a
 * safetensors model per job and moves the resulting bytes back.
 */
import {
  compressTensorJob,
  resultBuffers,
  type TensorJob,
  type TensorJobResult,
} from '../compress/safetensorsTensor';
import { serveJobs } from './workerPool';

serveJobs<TensorJob, TensorJobResult>(
  (job, control) => compressTensorJob(job, () => control.isCancelled()),
  resultBuffers,
);

/**
 * Worker-thread entry point (bundled as dist/ggmlWorker.js): quantizes a tensor to a ggml
 * type, or measures every type's error on a sample of its rows, one job at a time.
 */
import type { GgmlJob, GgmlJobResult } from './ggmlJob';
import { ggmlResultBuffers, runGgmlJob } from './ggmlRun';
import { serveJobs } from './workerPool';

serveJobs<GgmlJob, GgmlJobResult>(
  async (job, control) => runGgmlJob(job, () => control.isCancelled()),
  ggmlResultBuffers,
);

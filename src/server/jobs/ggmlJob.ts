/**
 * ggml quantization in the worker threads: a whole tensor quantized to one type (the
 * re-typing writer, the Sensitivity tab's ggml levels), or the proxy error of every type
 * on a sample of its rows (the plan). The jobs and the pool that runs them are here; the
 * work itself (ggmlRun.ts, in the worker) runs the WebAssembly quantizers in pieces of
 * whole rows, polling for a cancel between pieces and between types.
 */
import * as path from 'node:path';
import type { GgmlQuantType } from '../../shared/compressMethods';
import type { ProxyPoint } from '../../shared/sensitivity';
import { WorkerPool, defaultPoolSize } from './workerPool';

/** Weights quantized between two checks for a cancel (whole rows, at least one). */
export const GGML_PIECE_WEIGHTS = 1 << 20;

export type GgmlJob =
  | {
      readonly kind: 'quantize';
      readonly type: string;
      readonly values: Float32Array;
      readonly importance?: Float32Array;
    }
  | {
      readonly kind: 'errors';
      /** Whole rows of `rowLength` weights (the sample the plan measures). */
      readonly values: Float32Array;
      readonly rowLength: number;
      readonly types: readonly GgmlQuantType[];
      readonly importance?: Float32Array;
    };

export type GgmlJobResult =
  | { readonly kind: 'quantize'; readonly bytes: Uint8Array; readonly relativeError: number }
  | { readonly kind: 'errors'; readonly points: readonly [GgmlQuantType, ProxyPoint][] };

/** The worker script: dist/ggmlWorker.js beside the bundle, or the .ts source in tests. */
export function ggmlWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, 'ggmlWorker.ts')
    : path.join(__dirname, 'ggmlWorker.js');
}

/** A pool of ggml workers, started on first use; dispose() when the job is over. */
export class GgmlWorkers {
  private pool: WorkerPool<GgmlJob, GgmlJobResult> | undefined;

  constructor(readonly size = defaultPoolSize()) {}

  private run(job: GgmlJob, signal?: AbortSignal): Promise<GgmlJobResult> {
    this.pool ??= new WorkerPool<GgmlJob, GgmlJobResult>(this.size, ggmlWorkerScript());
    // The values are the job's own (read for it): they move to the worker, not copied.
    const buffer = job.values.buffer as ArrayBuffer;
    const whole = job.values.byteOffset === 0 && job.values.byteLength === buffer.byteLength;
    return this.pool.run(job, signal, whole ? [buffer] : []);
  }

  /** `values` quantized to `type` in a worker, with the relative error of the result. */
  async quantize(
    type: string,
    values: Float32Array,
    importance: Float32Array | undefined,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array; relativeError: number }> {
    const result = await this.run(
      { kind: 'quantize', type, values, ...(importance ? { importance } : {}) },
      signal,
    );
    if (result.kind !== 'quantize') throw new Error('a ggml worker answered another job');
    return result;
  }

  /** The proxy point of each of `types` on the rows `values` (ggmlTypeErrors, in a worker). */
  async typeErrors(
    values: Float32Array,
    rowLength: number,
    types: readonly GgmlQuantType[],
    importance: Float32Array | undefined,
    signal?: AbortSignal,
  ): Promise<Map<GgmlQuantType, ProxyPoint>> {
    const result = await this.run(
      { kind: 'errors', values, rowLength, types, ...(importance ? { importance } : {}) },
      signal,
    );
    if (result.kind !== 'errors') throw new Error('a ggml worker answered another job');
    return new Map(result.points);
  }

  /** Stop the workers (one still busy with a cancelled job included). */
  dispose(): void {
    this.pool?.dispose();
    this.pool = undefined;
  }
}

let shared: GgmlWorkers | undefined;

/**
 * The process's ggml workers for short jobs that come one tensor at a time (the
 * Sensitivity tab's ggml levels): started on first use, idle workers do not keep the
 * process alive.
 */
export function sharedGgmlWorkers(): GgmlWorkers {
  shared ??= new GgmlWorkers();
  return shared;
}

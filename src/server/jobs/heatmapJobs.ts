/**
 * Heatmap pyramids built in worker threads: the job a worker receives (one range of rows
 * of a matrix; a large matrix is split over the pool's workers) and where its script is.
 */
import * as path from 'node:path';
import type { HeatmapLayer } from '../../shared/heatmap';
import type { PyramidPart } from '../analysis/heatmap';
import type { TensorMatrixShape } from '../analysis/tensorMatrix';
import { WorkerPool } from './workerPool';

export interface PyramidJob {
  readonly matrix: TensorMatrixShape;
  readonly shape: readonly number[];
  readonly layer: HeatmapLayer;
  /** Pixel budget of the pyramid's base (PYRAMID_MAX_PIXELS when absent). */
  readonly maxPixels?: number;
  /** The rows this job passes over (several jobs share a large matrix). */
  readonly rowStart: number;
  readonly rowEnd: number;
  readonly source:
    | { readonly kind: 'file'; readonly path: string; readonly offset: number }
    /** The bytes of rows [rowStart, rowEnd), moved to the worker (transferred, not copied). */
    | { readonly kind: 'memory'; readonly bytes: Uint8Array };
}

/** The worker script: the bundle dist/heatmapWorker.js, or the TypeScript source under tsx. */
export function heatmapWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, 'heatmapWorker.ts')
    : path.join(__dirname, 'heatmapWorker.js');
}

export function createPyramidPool(size: number): WorkerPool<PyramidJob, PyramidPart> {
  return new WorkerPool<PyramidJob, PyramidPart>(size, heatmapWorkerScript());
}

/**
 * LayerLens settings: typed once, with their defaults. package.json's
 * `contributes.configuration` mirrors this table (a unit test checks they agree).
 */
export type ComputeBackend = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';

export interface LayerLensSettings {
  /** Where compute kernels run; falls back to `cpu` with a message when unavailable. */
  'compute.backend': ComputeBackend;
  /** Worker threads for statistics; 0 picks one per CPU core (at most 8). */
  'stats.workerCount': number;
}

export const SETTINGS_SECTION = 'layerlens';

export const DEFAULT_SETTINGS: Readonly<LayerLensSettings> = {
  'compute.backend': 'cpu',
  'stats.workerCount': 0,
};

export const COMPUTE_BACKENDS: readonly ComputeBackend[] = [
  'cpu',
  'cuda',
  'dml',
  'coreml',
  'webgpu',
];

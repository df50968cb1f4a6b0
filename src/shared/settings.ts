/**
 * LayerLens settings: typed once, with their defaults. package.json's
 * `contributes.configuration` mirrors this table (a unit test checks they agree).
 */
import type { DeviationMetric } from './sensitivity';

export type ComputeBackend = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';

export interface LayerLensSettings {
  /** Where compute kernels run; falls back to `cpu` with a message when unavailable. */
  'compute.backend': ComputeBackend;
  /** Worker threads for statistics; 0 picks one per CPU core (at most 8). */
  'stats.workerCount': number;
  /** Folder of sample inputs for validating compressed ONNX models (`<input>.npy|.json`, or `.npz`); empty: generated. */
  'validation.inputsFolder': string;
  /** Sizes of named symbolic input dimensions for generated sample inputs. */
  'validation.dimensions': Record<string, number>;
  /** Shapes of generated sample inputs by input name (take precedence over dimensions). */
  'validation.shapes': Record<string, number[]>;
  /** Constant values of generated sample inputs by input name (e.g. a sample rate). */
  'validation.inputValues': Record<string, number>;
  /** How a compressed model's output deviation is measured (sensitivity and plans). */
  'sensitivity.metric': DeviationMetric;
}

export const SETTINGS_SECTION = 'layerlens';

export const DEFAULT_SETTINGS: Readonly<LayerLensSettings> = {
  'compute.backend': 'cpu',
  'stats.workerCount': 0,
  'validation.inputsFolder': '',
  'validation.dimensions': { batch: 1, sequence: 512 },
  'validation.shapes': {},
  'validation.inputValues': { sr: 16000 },
  'sensitivity.metric': 'relativeL2',
};

export const COMPUTE_BACKENDS: readonly ComputeBackend[] = [
  'cpu',
  'cuda',
  'dml',
  'coreml',
  'webgpu',
];

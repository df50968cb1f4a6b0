/**
 * LayerLens settings: typed once, with their defaults. package.json's
 * `contributes.configuration` mirrors this table (a unit test checks they agree).
 */
import type { DeviationMetric } from './sensitivity';

export type ComputeBackend = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';

/** `layerlens.spectrum.method`: the SpectrumOptions methods a setting may choose. */
export type SpectrumMethodSetting = 'auto' | 'fast';

export const SPECTRUM_METHOD_SETTINGS: readonly SpectrumMethodSetting[] = ['auto', 'fast'];

/** Axis order of an image input: `auto` guesses it from the input's shape. */
export type ImageLayoutSetting = 'auto' | 'NCHW' | 'NHWC';

/** Colour channel order an image input expects. */
export type ChannelOrder = 'RGB' | 'BGR';

export interface LayerLensSettings {
  /** Where compute kernels run; falls back to `cpu` with a message when unavailable. */
  'compute.backend': ComputeBackend;
  /**
   * What the `auto` spectrum method computes (the Spectrum tab's default, table columns, code
   * lenses, `inspect --spectra`): `auto`, or `fast` (top values and an estimated effective
   * rank, for whole large models).
   */
  'spectrum.method': SpectrumMethodSetting;
  /** Worker threads for statistics; 0 picks one per CPU core (at most 8). */
  'stats.workerCount': number;
  /**
   * Folder of sample inputs for validating compressed ONNX models (`<input>.npy|.json`,
   * `.npz`, or PNG/JPEG images and WAV audio); empty: generated.
   */
  'validation.inputsFolder': string;
  /** Sample inputs per validation run. */
  'validation.samples': number;
  /** Axis order of image inputs; `auto` guesses it from the input's shape. */
  'validation.imageLayout': ImageLayoutSetting;
  /** [height, width] images are resized to when the model does not fix them; empty: automatic. */
  'validation.imageSize': number[];
  /** Per-channel mean subtracted from pixel values scaled to [0, 1]. */
  'validation.imageMean': number[];
  /** Per-channel standard deviation pixel values are divided by, after the mean. */
  'validation.imageStd': number[];
  /** Channel order of image inputs. */
  'validation.channelOrder': ChannelOrder;
  /** Sample rate (Hz) WAV audio is resampled to for audio inputs. */
  'validation.audioSampleRate': number;
  /** Sizes of named symbolic input dimensions for generated sample inputs. */
  'validation.dimensions': Record<string, number>;
  /** Shapes of generated sample inputs by input name (take precedence over dimensions). */
  'validation.shapes': Record<string, number[]>;
  /** Constant values of generated sample inputs by input name (e.g. a sample rate). */
  'validation.inputValues': Record<string, number>;
  /** How a compressed model's output deviation is measured (sensitivity and plans). */
  'sensitivity.metric': DeviationMetric;
  /**
   * Folder new models (compressed, packed, unpacked) are written to, with their reports in
   * `<model>.layerlens/` there; empty: beside the model. Relative paths start at the model's folder.
   */
  'output.folder': string;
  /**
   * llama-imatrix's importance matrix (.dat or GGUF form) the ggml method and GGUF plans
   * weight their errors by, unless a job names its own; empty: none. Relative paths start
   * at the model's folder.
   */
  'compress.importanceMatrix': string;
  /** A model file (relative to the workspace folder) opened in LayerLens when the workspace opens. */
  openOnStartup: string;
}

export const SETTINGS_SECTION = 'layerlens';

export const DEFAULT_SETTINGS: Readonly<LayerLensSettings> = {
  'compute.backend': 'cpu',
  'spectrum.method': 'auto',
  'stats.workerCount': 0,
  'validation.inputsFolder': '',
  'validation.samples': 8,
  'validation.imageLayout': 'auto',
  'validation.imageSize': [],
  'validation.imageMean': [0, 0, 0],
  'validation.imageStd': [1, 1, 1],
  'validation.channelOrder': 'RGB',
  'validation.audioSampleRate': 16000,
  'validation.dimensions': { batch: 1, sequence: 512 },
  'validation.shapes': {},
  'validation.inputValues': { sr: 16000 },
  'sensitivity.metric': 'relativeL2',
  'output.folder': '',
  'compress.importanceMatrix': '',
  openOnStartup: '',
};

export const COMPUTE_BACKENDS: readonly ComputeBackend[] = [
  'cpu',
  'cuda',
  'dml',
  'coreml',
  'webgpu',
];

export const IMAGE_LAYOUTS: readonly ImageLayoutSetting[] = ['auto', 'NCHW', 'NHWC'];

export const CHANNEL_ORDERS: readonly ChannelOrder[] = ['RGB', 'BGR'];

/**
 * Per-layer sensitivity: how far a model's output (measured) or a weight (data-free proxy)
 * moves when one layer alone is compressed at one level. Shared by the server, the CLI,
 * the planner and the webview.
 */
import type { CompressionMethod, CompressionOptions } from './compress';

/** How the deviation of the compressed model's outputs from the original is measured. */
export type DeviationMetric = 'relativeL2' | 'cosine' | 'kl';

export const DEVIATION_METRICS: readonly DeviationMetric[] = ['relativeL2', 'cosine', 'kl'];

/** One point of a sweep: one method at one level. */
export interface SweepLevel {
  /** Stable key, e.g. "prune:0.5", "nm:2:4", "int8", "int4:32", "lowrank:e0.9". */
  readonly key: string;
  /** Short label for charts and tables, e.g. "prune 50%". */
  readonly label: string;
  readonly method: CompressionMethod;
  readonly options: CompressionOptions;
  /**
   * Position on the curve's x axis within its method: the sparsity for prune, kept energy
   * for lowrank, bits per weight for int8/int4, 0.5 for 2:4.
   */
  readonly x: number;
}

/** The data-free proxy of one level on one tensor. */
export interface ProxyPoint {
  readonly key: string;
  /** ‖W − Ŵ‖_F / ‖W‖_F. */
  readonly relativeError: number;
  /** Signal-to-quantization-noise ratio in dB: −20·log10(relativeError). */
  readonly sqnrDb: number;
}

/** The measured output deviation of one level on one tensor (others uncompressed). */
export interface MeasuredPoint {
  readonly key: string;
  /** In the request's metric, the worst over the model's outputs. */
  readonly deviation: number;
  /** ‖W − Ŵ‖_F / ‖W‖_F of the values fed in. */
  readonly relativeError: number;
}

export interface LayerSensitivity {
  /** Index into the model's tensor list. */
  readonly index: number;
  readonly name: string;
  readonly proxy: readonly ProxyPoint[];
  /** Absent when only the proxy was asked for, or when the tensor could not be swept. */
  readonly measured?: readonly MeasuredPoint[];
  /** Why the tensor was left out of the measured sweep (e.g. "not a weight of a node"). */
  readonly note?: string;
  /** Levels the tensor cannot take (the compressor would skip it), with the reason. */
  readonly skipped?: readonly { readonly key: string; readonly reason: string }[];
  /**
   * Measured, but the outputs did not move at any level although the weight did: the sample
   * inputs never reach the layer (e.g. an If branch they do not take). Its measured zeros say
   * nothing about other inputs.
   */
  readonly unreached?: boolean;
}

export interface SensitivityRequest {
  /** Tensor indices; empty = every tensor a compression method applies to. */
  readonly indices: readonly number[];
  /** Levels to sweep; absent = DEFAULT sweep chosen by the server (sent back in the result). */
  readonly levels?: readonly SweepLevel[];
  /** Also run the model (ONNX only); false = data-free proxy alone (instant). */
  readonly measured: boolean;
  /** Absent = the `sensitivity.metric` setting. */
  readonly metric?: DeviationMetric;
}

export interface SensitivityResult {
  readonly source: string;
  readonly levels: readonly SweepLevel[];
  readonly metric: DeviationMetric;
  readonly layers: readonly LayerSensitivity[];
  /** How the sample inputs were obtained (as in the compression report); "" when not measured. */
  readonly inputs: string;
  /**
   * Why the measured deviations cannot be trusted: the outputs do not vary across the
   * sample inputs, or sit pinned at a bound. Absent when they can (or nothing was measured).
   */
  readonly inputProblems?: readonly string[];
  /** The onnxruntime execution provider used, with any fallback message; "" when not measured. */
  readonly backend: string;
  /** Sample inputs each measured deviation is the worst of (0 when not measured). */
  readonly samples: number;
  /** Inference runs made, and onnxruntime sessions built for them (1 for a whole sweep). */
  readonly runs: number;
  readonly sessions: number;
  readonly elapsedMs: number;
  /** True when answered from the cache (same file identity, inputs and settings). */
  readonly cached: boolean;
}

/**
 * The value a layer is ranked by at level `key`: its measured deviation when the result
 * has one, else the proxy's relative weight error; undefined when the level was not
 * applied to the layer.
 */
export function sensitivityAt(layer: LayerSensitivity, key: string): number | undefined {
  if (layer.measured) return layer.measured.find((point) => point.key === key)?.deviation;
  return layer.proxy.find((point) => point.key === key)?.relativeError;
}

/** Swept layers, most sensitive first at `key`; those without a value at `key` last. */
export function rankLayers(result: SensitivityResult, key: string): LayerSensitivity[] {
  const score = (layer: LayerSensitivity): number => sensitivityAt(layer, key) ?? -1;
  return result.layers
    .filter((layer) => layer.proxy.length > 0)
    .sort((a, b) => score(b) - score(a) || a.index - b.index);
}

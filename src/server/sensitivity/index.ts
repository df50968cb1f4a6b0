/**
 * Per-layer sensitivity: for every swept tensor and level, the data-free proxy (Ŵ's
 * relative error and SQNR) and, where the format runs and it is asked, the measured deviation of
 * the model's outputs with that tensor alone compressed (sweep.ts, one onnxruntime
 * session). Results are cached per file identity (path, size, modification time), the
 * settings that shape the inputs and the backend, the metric, the levels and the tensors.
 */
import { stat } from 'node:fs/promises';
import type {
  LayerSensitivity,
  MeasuredPoint,
  ProxyPoint,
  SensitivityRequest,
  SensitivityResult,
  SweepLevel,
} from '../../shared/sensitivity';
import { DEVIATION_METRICS } from '../../shared/sensitivity';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../../shared/settings';
import { loadTensorValues, tensorMatrixShape } from '../analysis/tensorMatrix';
import type { CompressContext } from '../compress/index';
import { openModelFile, sweepOf } from '../formats/registry';
import type { OpenedModel, TensorEntry } from '../formats/types';
import { yieldToEvents } from '../jobs/eventLoop';
import { checkLevels, DEFAULT_SWEEP } from './levels';
import { sweepLevels } from './proxy';
import type { MeasuredSweep } from './sweep';
import { sweepTensors, type SweepTensor } from './tensors';

/** Results kept (the oldest is dropped first). */
const CACHE_ENTRIES = 32;

const cache = new Map<string, SensitivityResult>();

/** Forget every cached result (tests, and a changed file is a different key anyway). */
export function clearSensitivityCache(): void {
  cache.clear();
}

async function cacheKey(
  path: string,
  request: SensitivityRequest,
  settings: LayerLensSettings,
  metric: string,
  measured: boolean,
): Promise<string> {
  const info = await stat(path);
  return JSON.stringify({
    path,
    size: info.size,
    mtime: info.mtimeMs,
    indices: [...request.indices].sort((a, b) => a - b),
    levels: request.levels ?? null,
    metric,
    measured,
    ...(measured
      ? {
          backend: settings['compute.backend'],
          inputsFolder: settings['validation.inputsFolder'],
          dimensions: settings['validation.dimensions'],
          shapes: settings['validation.shapes'],
          values: settings['validation.inputValues'],
        }
      : {}),
  });
}

async function float32Values(entry: TensorEntry): Promise<Float32Array> {
  const values = await loadTensorValues(entry, tensorMatrixShape(entry, true));
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

function remember(key: string, result: SensitivityResult): void {
  cache.delete(key);
  cache.set(key, result);
  while (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
}

/**
 * The sensitivity of the model at `path` for `request`. Throws ModelFileError for a file
 * that cannot be read, RangeError for a bad request, and an AbortError when
 * `context.signal` fires. `opened`: the model already opened from `path` (its decoded
 * ONNX model is then reused).
 */
export async function computeSensitivity(
  path: string,
  request: SensitivityRequest,
  context: CompressContext = {},
  opened?: OpenedModel,
): Promise<SensitivityResult> {
  const started = performance.now();
  const { signal, onProgress } = context;
  signal?.throwIfAborted();
  const settings: LayerLensSettings = { ...DEFAULT_SETTINGS, ...context.settings };
  const metric = request.metric ?? settings['sensitivity.metric'];
  if (!DEVIATION_METRICS.includes(metric)) {
    throw new RangeError(`unknown deviation metric ${String(metric)}`);
  }
  if (request.levels) checkLevels(request.levels);
  const model = opened ?? (await openModelFile(path));
  const compression = sweepOf(model);
  const levels = request.levels ?? compression.levels ?? DEFAULT_SWEEP;
  const measured = request.measured && compression.measure !== undefined;
  const key = await cacheKey(model.path, request, settings, metric, measured);
  const hit = cache.get(key);
  if (hit) {
    onProgress?.(1, 1, 'cached');
    return { ...hit, cached: true, elapsedMs: performance.now() - started };
  }
  const decoded = await compression.decode(model);
  const { tensors, leftOut } = sweepTensors(model, request.indices, decoded);
  const values = new Map<number, Float32Array>();
  for (const tensor of tensors) {
    signal?.throwIfAborted();
    values.set(tensor.entry.info.index, await float32Values(tensor.entry));
  }
  let sweep: MeasuredSweep | undefined;
  let notRunnable: string | undefined;
  if (measured && tensors.length > 0) {
    onProgress?.(0, 1, 'preparing the model');
    const opened = await compression.measure!(model, decoded, tensors, values, settings, signal);
    if (typeof opened === 'string') notRunnable = opened;
    else sweep = opened;
  }
  const layers: LayerSensitivity[] = [];
  try {
    // One step per (tensor, level), levels a tensor cannot take included.
    const total = tensors.length * levels.length;
    let done = 0;
    for (const tensor of tensors) {
      layers.push(
        await sweepTensor(tensor, values.get(tensor.entry.info.index)!, sweep, notRunnable, {
          levels,
          metric,
          signal,
          progress: () => {
            done++;
            onProgress?.(done, total, tensor.entry.info.name);
          },
        }),
      );
    }
  } finally {
    await sweep?.release();
  }
  for (const { entry, note } of leftOut) {
    layers.push({ index: entry.info.index, name: entry.info.name, proxy: [], note });
  }
  layers.sort((a, b) => a.index - b.index);
  const result: SensitivityResult = {
    source: model.path,
    levels,
    metric,
    layers,
    inputs: sweep?.inputs ?? (notRunnable ? 'none' : ''),
    ...(sweep && sweep.problems.length > 0 ? { inputProblems: sweep.problems } : {}),
    backend: sweep?.backend ?? '',
    samples: sweep?.samples.length ?? 0,
    runs: sweep?.runs ?? 0,
    sessions: sweep ? sweep.sessions : 0,
    elapsedMs: performance.now() - started,
    cached: false,
  };
  remember(key, result);
  return result;
}

interface TensorSweepOptions {
  readonly levels: readonly SweepLevel[];
  readonly metric: SensitivityResult['metric'];
  readonly signal?: AbortSignal;
  readonly progress: () => void;
}

async function sweepTensor(
  tensor: SweepTensor,
  values: Float32Array,
  sweep: MeasuredSweep | undefined,
  notRunnable: string | undefined,
  options: TensorSweepOptions,
): Promise<LayerSensitivity> {
  const proxy: ProxyPoint[] = [];
  const measured: MeasuredPoint[] = [];
  const skipped: { key: string; reason: string }[] = [];
  await sweepLevels(
    values,
    tensor,
    options.levels,
    async (outcome) => {
      if ('skipped' in outcome) {
        skipped.push({ key: outcome.level.key, reason: outcome.skipped });
        options.progress();
        return;
      }
      proxy.push(outcome.point);
      if (sweep) {
        const deviation = await sweep.deviation(
          tensor.entry.info.index,
          outcome.restored,
          options.metric,
        );
        measured.push({
          key: outcome.level.key,
          deviation,
          relativeError: outcome.point.relativeError,
        });
      } else {
        await yieldToEvents();
      }
      options.progress();
    },
    options.signal,
  );
  const info = tensor.entry.info;
  const unreached =
    measured.length > 0 &&
    measured.every((point) => point.deviation === 0) &&
    measured.some((point) => point.relativeError > 0);
  return {
    index: info.index,
    name: info.name,
    proxy,
    ...(sweep ? { measured } : {}),
    ...(notRunnable ? { note: notRunnable } : {}),
    ...(unreached
      ? {
          unreached,
          note: 'the outputs did not move at any level: the sample inputs do not reach it, or its result is masked away',
        }
      : {}),
    ...(skipped.length > 0 ? { skipped } : {}),
  };
}

/**
 * The whole-model compression planner: per-tensor sensitivity (measured output deviation
 * where the model runs and it is asked for, the data-free proxy otherwise) and predicted
 * file bytes for each option, then one option per tensor (or keep) chosen by the
 * knapsack solver to meet a size, ratio or deviation target.
 *
 * Deviations are summed over tensors as the objective. Where only some (tensor, option)
 * pairs were measured, the proxy ‖W − Ŵ‖/‖W‖ of the others is scaled by the median ratio
 * measured/proxy of the pairs that have both, so that the two kinds add up. Layers the
 * sample inputs never reach (measured zero at every level) are planned by that scaled proxy
 * too, so that they are not compressed on the strength of zeros that say nothing.
 */
import type { CompressionOptions } from '../../shared/compress';
import type { Plan, PlanRequest, PlanStep, PlanTarget } from '../../shared/plan';
import type {
  DeviationMetric,
  LayerSensitivity,
  SensitivityResult,
  SweepLevel,
} from '../../shared/sensitivity';
import { DTYPES } from '../../shared/dtypes';
import type { TensorInfo } from '../../shared/model';
import { maxFileBytes } from '../../shared/planTarget';
import { DEFAULT_SETTINGS } from '../../shared/settings';
import type { CompressContext } from '../compress';
import { moduleOf, openModelFile } from '../formats/registry';
import type { OpenedModel } from '../formats/types';
import { computeSensitivity } from '../sensitivity';
import { PLAN_LEVELS } from '../compress/methods';
import { droppedReasons, predictSizes, type SizePrediction } from './predict';
import { recipeModel } from './recipe';
import { solveKnapsack, type Solution, type SolveBudget, type SolveItem } from './solve';

export { FP16_LEVEL } from '../compress/methods/fp16';

/** Share of the byte budget kept free for what the size prediction misses. */
const PREDICTION_MARGIN = 0.002;

/**
 * The levels a plan chooses from: each method's `planLevels` (those that make a file
 * smaller in some format; pruning stores dense zeros and is left out), in table order.
 */
export function planLevels(): SweepLevel[] {
  return [...PLAN_LEVELS];
}

/** One tensor's options with predicted bytes and deviation (keep first). */
export interface PlanItem {
  readonly index: number;
  readonly name: string;
  readonly bytesBefore: number;
  readonly options: readonly {
    readonly key: string;
    readonly label: string;
    readonly options?: CompressionOptions;
    readonly bytes: number;
    readonly deviation: number;
    /** Whether the deviation was measured (false: the scaled proxy). */
    readonly measured: boolean;
  }[];
}

/** What a plan is solved from, kept so that refinement can solve again. */
export interface PlanProblem {
  readonly model: OpenedModel;
  readonly metric: DeviationMetric;
  readonly measured: boolean;
  readonly sensitivity: SensitivityResult;
  readonly prediction: SizePrediction;
  readonly items: readonly PlanItem[];
  /** measured / proxy scale applied to proxy-only deviations (1 when nothing was measured). */
  readonly proxyScale: number;
  /** What is wrong with the measured sensitivities (see Plan.warnings). */
  readonly warnings: readonly string[];
}

/**
 * What is wrong with the measured sensitivities a plan rests on: `warnings` for the plan
 * (and its verdict), and `useProxy` when the measurements say nothing at all (every one
 * 0), so that the data-free proxy must stand in for all of them. Inputs that cannot show
 * a deviation fully (flat or pinned outputs) still rank the layers: their measurements
 * are kept, with the warning.
 */
export function measurementWarnings(sensitivity: SensitivityResult): {
  warnings: string[];
  useProxy: boolean;
} {
  const measuredPoints = sensitivity.layers.flatMap((layer) => layer.measured ?? []);
  if (measuredPoints.length === 0) return { warnings: [], useProxy: false };
  if (measuredPoints.every((point) => point.deviation === 0)) {
    return {
      warnings: [
        'every measured sensitivity is 0: the sample inputs do not exercise the model, so this is not a measured plan; the data-free proxy stood in',
      ],
      useProxy: true,
    };
  }
  if (sensitivity.inputProblems && sensitivity.inputProblems.length > 0) {
    return {
      warnings: [
        `the sample inputs cannot fully show a deviation (${sensitivity.inputProblems.join('; ')}): the measured sensitivities may understate it; give real inputs (Choose Sample Inputs…)`,
      ],
      useProxy: false,
    };
  }
  return { warnings: [], useProxy: false };
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The sweep a plan is solved from: every level, measured when asked and the model runs. */
async function planSensitivity(
  model: OpenedModel,
  levels: readonly SweepLevel[],
  measured: boolean,
  metric: DeviationMetric,
  context: CompressContext,
): Promise<SensitivityResult> {
  return computeSensitivity(model.path, { indices: [], levels, measured, metric }, context, model);
}

/** Floating-point tensors and matrices of any dtype (quantized weights), not shape vectors. */
function mayHoldWeights(info: TensorInfo): boolean {
  return (DTYPES[info.dtype]?.isFloat ?? false) || info.shape.length >= 2;
}

/** Sensitivity and predicted sizes of every tensor a plan may change. */
export async function planProblem(
  path: string,
  request: Pick<PlanRequest, 'measured' | 'metric'>,
  context: CompressContext = {},
  opened?: OpenedModel,
): Promise<PlanProblem> {
  const model = opened ?? (await openModelFile(path));
  const settings = { ...DEFAULT_SETTINGS, ...context.settings };
  const metric = request.metric ?? settings['sensitivity.metric'];
  const levels = planLevels();
  const sensitivity = await planSensitivity(model, levels, request.measured, metric, context);
  const { warnings, useProxy } = measurementWarnings(sensitivity);
  // Measured points are used only where the inputs could show a deviation.
  const usable = (layer: LayerSensitivity): boolean => !useProxy && !layer.unreached;
  // Every tensor that could hold weights is sized, swept or not, so that the plan's limits
  // name what kept the others out (biases and vectors, other dtypes…).
  const swept = new Set(sensitivity.layers.map((layer) => layer.index));
  const prediction = await predictSizes(
    model,
    model.tensors
      .map((entry) => entry.info)
      .filter((info) => swept.has(info.index) || mayHoldWeights(info))
      .map((info) => info.index),
    levels,
    context.signal,
  );
  const ratios: number[] = [];
  for (const layer of sensitivity.layers) {
    if (!usable(layer)) continue;
    for (const point of layer.measured ?? []) {
      const proxy = layer.proxy.find((p) => p.key === point.key);
      if (proxy && proxy.relativeError > 0 && Number.isFinite(point.deviation))
        ratios.push(point.deviation / proxy.relativeError);
    }
  }
  const proxyScale = median(ratios) ?? 1;
  const byIndex = new Map(prediction.tensors.map((t) => [t.index, t]));
  const items: PlanItem[] = [];
  for (const layer of sensitivity.layers) {
    const sized = byIndex.get(layer.index);
    if (!sized || sized.options.length === 0) continue;
    const options: PlanItem['options'][number][] = [
      { key: 'keep', label: 'keep', bytes: sized.bytesBefore, deviation: 0, measured: true },
    ];
    for (const option of sized.options) {
      // A layer the sample inputs never reach measured zero everywhere: its proxy stands in.
      const measured = usable(layer)
        ? layer.measured?.find((p) => p.key === option.key)
        : undefined;
      const proxy = layer.proxy.find((p) => p.key === option.key);
      if (!measured && !proxy) continue;
      options.push({
        key: option.key,
        label: option.label,
        options: option.options,
        bytes: option.bytes,
        deviation: measured ? measured.deviation : proxy!.relativeError * proxyScale,
        measured: measured !== undefined,
      });
    }
    if (options.length > 1)
      items.push({ index: layer.index, name: layer.name, bytesBefore: sized.bytesBefore, options });
  }
  return {
    model,
    metric,
    measured: sensitivity.layers.some((layer) => layer.measured !== undefined),
    sensitivity,
    prediction,
    items,
    proxyScale,
    warnings,
  };
}

/** The predicted file size of the choice `picks` (option index per item, 0 = keep). */
export function predictedFileBytes(problem: PlanProblem, picks: readonly number[]): number {
  return (
    fixedBytes(problem) +
    problem.items.reduce((sum, item, i) => sum + item.options[picks[i] ?? 0]!.bytes, 0)
  );
}

/** Bytes of the file that no option changes (everything but the items' tensors). */
function fixedBytes(problem: PlanProblem): number {
  const itemBytes = problem.items.reduce((sum, item) => sum + item.bytesBefore, 0);
  return problem.prediction.fileBytesBefore - itemBytes + problem.prediction.fileOverhead;
}

/**
 * The solver's budget for `target`: the file's limit less a `margin` share for what the
 * prediction misses, less `tighten` bytes found missing by an earlier attempt (negative:
 * room an attempt left unused).
 */
export function solveBudget(
  problem: PlanProblem,
  target: PlanTarget,
  tighten = 0,
  margin = PREDICTION_MARGIN,
): SolveBudget {
  const max = maxFileBytes(target, problem.prediction.fileBytesBefore);
  if (max === undefined) return { kind: 'deviation', maxDeviation: target.value };
  return {
    kind: 'bytes',
    maxBytes: Math.floor(max * (1 - margin)) - fixedBytes(problem) - tighten,
  };
}

/** Solve with some options of some items ruled out (`allowed(item, option index)`). */
export function solveProblem(
  problem: PlanProblem,
  budget: SolveBudget,
  allowed: (item: number, option: number) => boolean = () => true,
): Solution {
  const items: SolveItem[] = problem.items.map((item, i) => ({
    options: item.options.map((option, j) => ({
      bytes: option.bytes,
      deviation: j === 0 || allowed(i, j) ? option.deviation : Infinity,
    })),
  }));
  return solveKnapsack(items, budget);
}

/** The plan of one solution. */
export async function planOf(
  problem: PlanProblem,
  target: PlanTarget,
  picks: readonly number[],
): Promise<Plan> {
  const steps: PlanStep[] = problem.items.map((item, i) => {
    const option = item.options[picks[i]!]!;
    return {
      tensor: item.name,
      ...(option.options ? { options: option.options } : {}),
      label: option.label,
      bytesBefore: item.bytesBefore,
      predictedBytes: option.bytes,
      predictedDeviation: option.deviation,
    };
  });
  const changed = steps.filter((step) => step.options);
  const { fileBytesBefore, fileOverhead } = problem.prediction;
  const predictedFileBytes =
    changed.length === 0
      ? fileBytesBefore
      : fileBytesBefore +
        fileOverhead +
        changed.reduce((sum, step) => sum + step.predictedBytes - step.bytesBefore, 0);
  const predictedDeviation = steps.reduce((sum, step) => sum + step.predictedDeviation, 0);
  const max = maxFileBytes(target, fileBytesBefore);
  const feasible =
    max === undefined ? predictedDeviation <= target.value : predictedFileBytes <= max;
  return {
    source: problem.model.path,
    target,
    metric: problem.metric,
    steps,
    fileBytesBefore,
    predictedFileBytes,
    feasible,
    warnings: problem.warnings,
    limits: [...(feasible ? [] : reachLimit(problem, max)), ...planLimits(problem)],
    recipe: {
      format: 'layerlens-recipe',
      version: 1,
      model: await recipeModel(problem.model.path),
      target,
      metric: problem.metric,
      steps: changed.map((step) => ({ tensor: step.tensor, options: step.options! })),
      measured: problem.measured,
    },
  };
}

/** For a size limit out of reach: the smallest file the offered options can write. */
function reachLimit(problem: PlanProblem, max: number | undefined): string[] {
  if (max === undefined) return [];
  const smallest = predictedFileBytes(
    problem,
    problem.items.map((item) =>
      item.options.reduce(
        (best, option, j) => (option.bytes < item.options[best]!.bytes ? j : best),
        0,
      ),
    ),
  );
  return [
    `the smallest file the methods can write is ${smallest} bytes (predicted), over the ${max}-byte limit`,
  ];
}

/** Why options were left out of `problem` (Plan.limits). */
export function planLimits(problem: PlanProblem): string[] {
  return droppedReasons(problem.prediction);
}

/** Check a target's value; RangeError naming it when unusable. */
export function checkTarget(target: PlanTarget): void {
  if (!['sizeMB', 'ratio', 'deviation', 'bpw'].includes(target.kind))
    throw new RangeError(`unknown target kind ${String(target.kind)}`);
  if (!(Number.isFinite(target.value) && target.value > 0))
    throw new RangeError(
      `the ${target.kind} target must be a positive number, got ${target.value}`,
    );
}

/** Propose a plan for the model at `path` (already opened: `opened`) meeting `request.target`. */
export async function planModel(
  path: string,
  request: PlanRequest,
  context: CompressContext = {},
  opened?: OpenedModel,
): Promise<Plan> {
  checkTarget(request.target);
  const model = opened ?? (await openModelFile(path));
  const own = moduleOf(model).compression?.planTypes;
  if (own) return own(model, request.target, context);
  const problem = await planProblem(path, request, context, model);
  const solution = solveProblem(problem, solveBudget(problem, request.target));
  return planOf(problem, request.target, solution.picks);
}

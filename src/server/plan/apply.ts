/**
 * Applying a recipe: compress every tensor with its own options in one go, validate the
 * whole compressed model on the sample inputs (the deviation of all layers compressed at
 * once, which the per-layer sweep does not predict), and refine when the target is missed:
 *
 * - file over the size budget: the budget is tightened by what the prediction missed and
 *   the plan solved again;
 * - deviation over the target: the deviation budget is scaled by how far the whole model
 *   moved compared with the summed prediction, the tensor contributing most is backed off
 *   (its current option and any more aggressive one ruled out), and the plan solved again;
 *   under the target, the budget is once scaled up the same way to make the file smaller;
 * - a size target met: candidates near the budget are measured too — the plan solved again
 *   with the room the first file left unused, and the best uniform plan (one method for
 *   every tensor) that fits — and the best file that meets the target is kept.
 *
 * Each attempt is written into a private folder under the operating system's temporary
 * folder (never beside the model, where an editor's file explorer would show it), which
 * is removed when the apply ends; the kept recipe is then written to the output name
 * (never overwriting a file), with its report and its recipe (`<model>.layerlens/<output>.recipe.json`,
 * outputPaths.ts).
 * The original is never modified. A missed target comes back with why (`missedBecause`).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CompressionReport, ValidationVerdict } from '../../shared/compress';
import type { ApplyPlanResult, CompressionRecipe, PlanAttempt } from '../../shared/plan';
import { maxFileBytes } from '../../shared/planTarget';
import type { CompressContext } from '../compress';
import { compressPerTensor, type TensorStep } from '../compress/perTensor';
import { compressionOf, openModelFile } from '../formats/registry';
import { ModelFileError, type OpenedModel } from '../formats/types';
import { outputDeviation } from '../sensitivity/deviation';
import {
  checkTarget,
  planLimits,
  planProblem,
  predictedFileBytes,
  solveBudget,
  solveProblem,
  type PlanProblem,
} from './index';
import { artifactPath } from '../outputPaths';
import { checkRecipeModel, writeRecipe } from './recipe';

/** Most compressions of one apply (first attempt and refinements). */
export const MAX_PLAN_ATTEMPTS = 6;

/**
 * Share of the size limit a uniform candidate's prediction may exceed and still be
 * measured (the size predictions are within about 0.3% of the files written).
 */
const UNIFORM_TOLERANCE = 0.005;

export interface ApplyOptions {
  /** Refine and re-apply when the target is missed. */
  readonly refine: boolean;
  /** Output path (default `<stem>.plan<ext>` in the output folder). */
  readonly outPath?: string;
  /** The problem the recipe was solved from, when the caller has it (saves a sweep). */
  readonly problem?: PlanProblem;
}

interface Measured {
  readonly steps: readonly TensorStep[];
  readonly attempt: PlanAttempt;
  readonly fileBytes: number;
  readonly deviation: number;
}

/** Prefix of the private temporary folder each apply writes its attempts into. */
export const ATTEMPTS_FOLDER_PREFIX = 'layerlens-plan-';

function attemptPath(folder: string, model: OpenedModel, attempt: number): string {
  const sourceExt = path.extname(model.path);
  const base = path.basename(model.path, sourceExt);
  const ext = compressionOf(model).output?.extension ?? sourceExt;
  return path.join(folder, `${base}.attempt${attempt}${ext}`);
}

/** Lines that count `items` by `key`, most first: "3 tensors …". */
function countedLines<T>(items: readonly T[], key: (item: T) => string): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

/** Compress with `steps`, measure the whole model's deviation in `metric`, and report. */
async function compressAndMeasure(
  model: OpenedModel,
  steps: readonly TensorStep[],
  recipe: CompressionRecipe,
  context: CompressContext,
  outPath: string | undefined,
): Promise<{ report: CompressionReport; deviation: number }> {
  let deviation = NaN;
  const report = await compressPerTensor(
    model.path,
    steps,
    {
      ...context,
      // Called once per sample input: the worst sample counts.
      onValidationOutputs: (reference, result) => {
        const sample = outputDeviation(recipe.metric, reference, result);
        if (Number.isNaN(deviation) || !(sample <= deviation)) deviation = sample;
      },
    },
    outPath,
    model,
  );
  return { report, deviation };
}

/** The kept file's verdict, with the plan's warnings among its reasons. */
function planVerdict(verdict: ValidationVerdict, warnings: readonly string[]): ValidationVerdict {
  const reasons = [...verdict.reasons, ...warnings.filter((w) => !verdict.reasons.includes(w))];
  return { ...verdict, validated: verdict.validated && warnings.length === 0, reasons };
}

function meetsTarget(recipe: CompressionRecipe, fileBytesBefore: number, m: Measured): boolean {
  const max = maxFileBytes(recipe.target, fileBytesBefore);
  if (max !== undefined) return m.fileBytes <= max;
  return Number.isFinite(m.deviation) && m.deviation <= recipe.target.value;
}

/** a better than b for the recipe's target (target met first, then the other quantity). */
function betterThan(
  recipe: CompressionRecipe,
  fileBytesBefore: number,
  a: Measured,
  b: Measured | undefined,
): boolean {
  if (!b) return true;
  const metA = meetsTarget(recipe, fileBytesBefore, a);
  const metB = meetsTarget(recipe, fileBytesBefore, b);
  if (metA !== metB) return metA;
  const deviationA = Number.isFinite(a.deviation) ? a.deviation : Infinity;
  const deviationB = Number.isFinite(b.deviation) ? b.deviation : Infinity;
  if (recipe.target.kind === 'deviation') {
    return metA ? a.fileBytes < b.fileBytes : deviationA < deviationB;
  }
  return metA ? deviationA < deviationB : a.fileBytes < b.fileBytes;
}

/** Why the kept file misses the recipe's target: by how much, what the writer skipped, what the plan left out. */
function missedReasons(
  recipe: CompressionRecipe,
  fileBytesBefore: number,
  kept: Measured,
  report: CompressionReport,
  limits: readonly string[],
): string[] {
  const max = maxFileBytes(recipe.target, fileBytesBefore);
  const lines: string[] = [];
  if (max !== undefined) {
    lines.push(
      `the best file written is ${kept.fileBytes} bytes, ${kept.fileBytes - max} over the ${max}-byte limit`,
    );
  } else {
    lines.push(
      Number.isFinite(kept.deviation)
        ? `the best file written deviates by ${kept.deviation.toPrecision(3)}, over ${recipe.target.value}`
        : 'the deviation of the files written could not be measured',
    );
  }
  const skipped = report.tensors.filter((t) => t.skipped);
  for (const [detail, count] of countedLines(skipped, (t) => t.detail)) {
    lines.push(
      `${count} ${count === 1 ? 'tensor was' : 'tensors were'} skipped when written: ${detail}`,
    );
  }
  return [...lines, ...limits];
}

function stepsOf(problem: PlanProblem, picks: readonly number[]): TensorStep[] {
  const steps: TensorStep[] = [];
  problem.items.forEach((item, i) => {
    const option = item.options[picks[i]!]!;
    if (option.options) steps.push({ tensor: item.name, options: option.options });
  });
  return steps;
}

function sameSteps(a: readonly TensorStep[], b: readonly TensorStep[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The uniform plan (one sweep level on every tensor it applies to) predicted best within `maxBytes`. */
function bestUniform(problem: PlanProblem, maxBytes: number): TensorStep[] | undefined {
  const keys = new Set(problem.items.flatMap((item) => item.options.slice(1).map((o) => o.key)));
  let best: { steps: TensorStep[]; deviation: number } | undefined;
  for (const key of keys) {
    let bytes = 0;
    let deviation = 0;
    const steps: TensorStep[] = [];
    for (const item of problem.items) {
      const option = item.options.find((o) => o.key === key) ?? item.options[0]!;
      bytes += option.bytes;
      deviation += option.deviation;
      if (option.options) steps.push({ tensor: item.name, options: option.options });
    }
    if (bytes <= maxBytes && steps.length > 0 && (!best || deviation < best.deviation))
      best = { steps, deviation };
  }
  return best?.steps;
}

/** Where the steps' summed predicted deviation comes from, per tensor (largest first). */
function contributions(problem: PlanProblem, steps: readonly TensorStep[]) {
  const byName = new Map(steps.map((s) => [s.tensor, s]));
  return problem.items
    .map((item, i) => {
      const step = byName.get(item.name);
      const j = step
        ? item.options.findIndex((o) => JSON.stringify(o.options) === JSON.stringify(step.options))
        : 0;
      return { i, j: Math.max(j, 0), deviation: item.options[Math.max(j, 0)]!.deviation };
    })
    .sort((a, b) => b.deviation - a.deviation);
}

/**
 * Apply `recipe` to the model at `modelPath` (see the module comment) and return the kept
 * file's report, every attempt, and the recipe applied.
 */
export async function applyRecipe(
  modelPath: string,
  recipe: CompressionRecipe,
  options: ApplyOptions,
  context: CompressContext = {},
  opened?: OpenedModel,
): Promise<ApplyPlanResult> {
  checkTarget(recipe.target);
  const model = opened ?? (await openModelFile(modelPath));
  await checkRecipeModel(recipe, model.path);
  if (recipe.steps.length === 0) {
    throw new ModelFileError(model.path, 'the recipe changes no tensor: nothing to apply');
  }
  const fileBytesBefore = compressionOf(model).modelBytes(model.summary);
  const measuredAttempts: Measured[] = [];
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), ATTEMPTS_FOLDER_PREFIX));
  let problem = options.problem;
  const getProblem = async (): Promise<PlanProblem> => {
    problem ??= await planProblem(
      model.path,
      { measured: recipe.measured ?? false, metric: recipe.metric },
      context,
      model,
    );
    return problem;
  };
  const attempt = async (steps: readonly TensorStep[], refinement?: string): Promise<Measured> => {
    const { report, deviation } = await compressAndMeasure(
      model,
      steps,
      recipe,
      context,
      attemptPath(folder, model, measuredAttempts.length + 1),
    );
    const measured: Measured = {
      steps,
      fileBytes: report.fileBytesAfter,
      deviation,
      attempt: {
        output: report.output,
        fileBytes: report.fileBytesAfter,
        deviation,
        ...(refinement ? { refinement } : {}),
      },
    };
    measuredAttempts.push(measured);
    return measured;
  };
  try {
    let current = await attempt(recipe.steps, undefined);
    let tighten = 0;
    let deviationScale = 1;
    const ruledOut = new Set<string>();
    let triedSlack = false;
    let triedUniform = false;
    while (options.refine && measuredAttempts.length < MAX_PLAN_ATTEMPTS) {
      context.signal?.throwIfAborted();
      const max = maxFileBytes(recipe.target, fileBytesBefore);
      const p = await getProblem();
      let next: TensorStep[] | undefined;
      let why = '';
      if (max !== undefined && current.fileBytes > max) {
        tighten += current.fileBytes - max + Math.ceil(max * 0.001);
        next = stepsOf(p, solveProblem(p, solveBudget(p, recipe.target, tighten)).picks);
        why = `${current.fileBytes - max} bytes over the budget: budget tightened by ${tighten} bytes and solved again`;
      } else if (max !== undefined && !triedSlack) {
        // Under the budget: solve again with the room the prediction left unused.
        triedSlack = true;
        const slack = max - current.fileBytes;
        // What the prediction missed on this file, kept free; no margin beyond it.
        const picks = contributions(p, current.steps)
          .sort((a, b) => a.i - b.i)
          .map((c) => c.j);
        const missed = Math.max(0, current.fileBytes - predictedFileBytes(p, picks));
        const loosened = stepsOf(
          p,
          solveProblem(p, solveBudget(p, recipe.target, missed + Math.ceil(max * 0.0005), 0)).picks,
        );
        if (measuredAttempts.some((m) => sameSteps(m.steps, loosened))) continue;
        next = loosened;
        why = `${slack} bytes under the budget: solved again with them`;
      } else if (max !== undefined && !triedUniform) {
        triedUniform = true;
        // Predicted within the prediction's error of the limit: measuring it tells.
        const budget = solveBudget(p, recipe.target, -Math.ceil(max * UNIFORM_TOLERANCE), 0);
        const uniform = budget.kind === 'bytes' ? bestUniform(p, budget.maxBytes) : undefined;
        if (!uniform || measuredAttempts.some((m) => sameSteps(m.steps, uniform))) continue;
        next = uniform;
        why = `measuring the best uniform plan within the same budget (${uniform[0]!.options.method}) to compare`;
      } else if (
        max === undefined &&
        Number.isFinite(current.deviation) &&
        current.deviation > recipe.target.value
      ) {
        const parts = contributions(p, current.steps);
        const predicted = parts.reduce((sum, c) => sum + c.deviation, 0);
        if (predicted > 0) deviationScale = Math.max(deviationScale, current.deviation / predicted);
        const top = parts.find((c) => c.j > 0);
        if (!top) break;
        const item = p.items[top.i]!;
        const limit = item.options[top.j]!.deviation;
        item.options.forEach((o, j) => {
          if (j > 0 && o.deviation >= limit) ruledOut.add(`${top.i}:${j}`);
        });
        const solution = solveProblem(
          p,
          { kind: 'deviation', maxDeviation: recipe.target.value / deviationScale },
          (i, j) => !ruledOut.has(`${i}:${j}`),
        );
        next = stepsOf(p, solution.picks);
        why = `deviation ${current.deviation.toPrecision(3)} over ${recipe.target.value}: backed off ${item.name} (${item.options[top.j]!.label}) and scaled the budget by 1/${deviationScale.toPrecision(3)}`;
      } else if (
        max === undefined &&
        !triedSlack &&
        Number.isFinite(current.deviation) &&
        current.deviation > 0 &&
        current.deviation < recipe.target.value
      ) {
        // Under the deviation target: the summed prediction was pessimistic; use the room.
        triedSlack = true;
        const parts = contributions(p, current.steps);
        const predicted = parts.reduce((sum, c) => sum + c.deviation, 0);
        const scale = Math.min(predicted / current.deviation, 4);
        if (!(scale > 1)) break;
        next = stepsOf(
          p,
          solveProblem(
            p,
            { kind: 'deviation', maxDeviation: recipe.target.value * scale },
            (i, j) => !ruledOut.has(`${i}:${j}`),
          ).picks,
        );
        why = `deviation ${current.deviation.toPrecision(3)} under ${recipe.target.value}: budget scaled by ${scale.toPrecision(3)} and solved again`;
      } else {
        break;
      }
      if (next.length === 0 || measuredAttempts.some((m) => sameSteps(m.steps, next))) break;
      const made = await attempt(next, why);
      // Refinement goes on from the better of the two.
      if (betterThan(recipe, fileBytesBefore, made, current)) current = made;
    }
    let kept: Measured | undefined;
    for (const m of measuredAttempts) if (betterThan(recipe, fileBytesBefore, m, kept)) kept = m;
    // The kept steps, written to the output name (the attempts' files are removed below).
    const final = await compressAndMeasure(model, kept!.steps, recipe, context, options.outPath);
    const keptRecipe: CompressionRecipe = { ...recipe, steps: kept!.steps };
    const recipePath = await writeRecipe(
      artifactPath(model.path, final.report.output, 'recipe'),
      keptRecipe,
    );
    const targetMet = meetsTarget(recipe, fileBytesBefore, kept!);
    const missedBecause = targetMet
      ? []
      : missedReasons(recipe, fileBytesBefore, kept!, final.report, planLimits(await getProblem()));
    return {
      report: final.report,
      attempts: measuredAttempts.map((m) =>
        m === kept ? { ...m.attempt, output: final.report.output } : m.attempt,
      ),
      recipe: keptRecipe,
      recipePath,
      targetMet,
      verdict: planVerdict(final.report.verdict, problem?.warnings ?? []),
      missedBecause,
    };
  } finally {
    await fs.rm(folder, { recursive: true, force: true });
  }
}

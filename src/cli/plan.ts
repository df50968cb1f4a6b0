/**
 * `layerlens plan FILE (--target-mb N | --ratio R | --max-deviation D) [--measured]
 *  [--metric M] [--out RECIPE] [--json]` and `layerlens apply FILE RECIPE [--out OUT]
 *  [--no-refine] [--json]`.
 */
import { resolve } from 'node:path';
import { describeDeviation, NOT_VALIDATED_EXIT_CODE, verdictLine } from '../shared/compressText';
import { formatBytes, formatStat } from '../shared/format';
import type { ApplyPlanResult, Plan, PlanTarget } from '../shared/plan';
import { describePlanTarget as describeTarget } from '../shared/planTarget';
import { DEVIATION_METRICS, type DeviationMetric } from '../shared/sensitivity';
import { planModel } from '../server/plan';
import { writeRetypedGguf } from '../server/compress/ggml/ggufWriter';
import { importanceOf, readImportanceMatrix } from '../server/compress/ggml/importance';
import { llamaQuantizeCommand, planGguf, type GgufPlan } from '../server/plan/gguf';
import { applyRecipe } from '../server/plan/apply';
import { artifactPath } from '../server/outputPaths';
import { readRecipe, writeRecipe } from '../server/plan/recipe';
import { UsageError } from './compress';
import { printTable } from './table';

export const PLAN_USAGE = `Usage: layerlens plan FILE (--target-mb N | --ratio R | --max-deviation D)
                      [--measured] [--metric relativeL2|cosine|kl] [--out RECIPE] [--json]
       layerlens plan FILE.gguf --target-bpw B --llama-quantize [--imatrix FILE]
                      [--write [--out OUT]] [--json]
       layerlens apply FILE RECIPE [--out OUT] [--no-refine] [--json]

  plan       Choose a compression method per tensor (or keep it) to meet a target: output
             size in MB (10^6 bytes), a ratio original/compressed, or a largest output
             deviation; print the plan and write the recipe (default
             <FILE>.layerlens/<FILE>.recipe.json)
  --measured Use measured sensitivity (ONNX: each layer compressed alone, model run on the
             sample inputs) instead of the data-free proxy alone
  apply      Apply a recipe: write <name>.plan.<ext>, validate the whole model, refine
             when the target is missed (unless --no-refine), print every attempt and the
             kept file's verdict ("validated", or "NOT validated" and why: outputs that
             cannot show a difference on the sample inputs, or the plan's own warnings);
             exits with 1 when the kept file misses the target, else ${NOT_VALIDATED_EXIT_CODE} when it
             is written but NOT validated, else 0
  A plan whose measured sensitivities cannot be trusted prints each reason as a warning.
  --target-bpw  (an F32/F16/BF16 GGUF) Choose a llama.cpp type per tensor (Q8_0 … Q2_K,
             IQ4_NL) for B bits per weight over all tensors, from each type's proxy error;
             print the type table, the predicted GGUF size and the llama-quantize
             arguments (--llama-quantize); --write also writes that GGUF
             (<name>.plan.gguf, or --out)
  --imatrix  llama-imatrix's importance matrix (.dat or GGUF form): the errors and the
             written types' scales are weighted by it, and llama-quantize is given it`;

function valueOf(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
  return value;
}

function positiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!(Number.isFinite(value) && value > 0))
    throw new UsageError(`${flag} ${text} is not a positive number`);
  return value;
}

const PLAN_FLAGS = new Set([
  '--target-mb',
  '--ratio',
  '--max-deviation',
  '--metric',
  '--out',
  '--target-bpw',
  '--imatrix',
]);
const PLAN_SWITCHES = new Set(['--measured', '--json', '--llama-quantize', '--write']);
const APPLY_FLAGS = new Set(['--out']);
const APPLY_SWITCHES = new Set(['--no-refine', '--json']);

/** Positional arguments, refusing unknown flags. */
function positionals(
  args: readonly string[],
  flags: ReadonlySet<string>,
  switches: ReadonlySet<string>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (flags.has(arg)) i++;
    else if (switches.has(arg)) continue;
    else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else out.push(arg);
  }
  return out;
}

function parseTarget(args: readonly string[]): PlanTarget {
  const given: PlanTarget[] = [];
  const mb = valueOf(args, '--target-mb');
  const ratio = valueOf(args, '--ratio');
  const deviation = valueOf(args, '--max-deviation');
  if (mb !== undefined) given.push({ kind: 'sizeMB', value: positiveNumber('--target-mb', mb) });
  if (ratio !== undefined) given.push({ kind: 'ratio', value: positiveNumber('--ratio', ratio) });
  if (deviation !== undefined)
    given.push({ kind: 'deviation', value: positiveNumber('--max-deviation', deviation) });
  if (given.length !== 1)
    throw new UsageError('give exactly one of --target-mb, --ratio or --max-deviation');
  return given[0]!;
}

function printPlan(plan: Plan): void {
  const rows = plan.steps.map((step) => [
    step.tensor,
    step.label,
    formatBytes(step.bytesBefore),
    formatBytes(step.predictedBytes),
    formatStat(step.predictedDeviation, 3),
  ]);
  printTable([['TENSOR', 'CHOICE', 'BYTES', 'PREDICTED', 'DEVIATION'], ...rows]);
  const deviation = plan.steps.reduce((sum, step) => sum + step.predictedDeviation, 0);
  console.log('');
  console.log(
    `target ${describeTarget(plan.target)}: ${formatBytes(plan.fileBytesBefore)} → ${formatBytes(plan.predictedFileBytes)} predicted (${plan.predictedFileBytes} bytes), summed ${plan.metric} deviation ${formatStat(deviation, 3)}${plan.feasible ? '' : ' — the target cannot be met with these methods'}`,
  );
  for (const warning of plan.warnings) console.log(`warning: ${warning}`);
  if (!plan.feasible) for (const limit of plan.limits) console.log(`  ${limit}`);
}

function printApplied(result: ApplyPlanResult): void {
  const rows = result.attempts.map((attempt, i) => [
    String(i + 1),
    String(attempt.fileBytes),
    formatBytes(attempt.fileBytes),
    Number.isFinite(attempt.deviation) ? formatStat(attempt.deviation, 4) : '—',
    attempt.refinement ?? 'first application',
  ]);
  printTable([['ATTEMPT', 'BYTES', 'SIZE', 'DEVIATION', 'WHY'], ...rows]);
  const { report } = result;
  console.log('');
  console.log(
    `wrote ${report.output}: ${formatBytes(report.fileBytesBefore)} → ${formatBytes(report.fileBytesAfter)} (${report.fileBytesAfter} bytes), ${report.tensors.filter((t) => !t.skipped).length} tensors compressed; target ${describeTarget(result.recipe.target)} ${result.targetMet ? 'met' : 'NOT met'}`,
  );
  for (const reason of result.missedBecause) console.log(`  ${reason}`);
  console.log(`verdict: ${verdictLine(result.verdict)}`);
  for (const output of report.outputs)
    console.log(`  output ${output.output}: ${describeDeviation(output)}`);
  console.log(`inputs: ${report.inputs}`);
  console.log(`recipe: ${result.recipePath}`);
  console.log(`report: ${report.reportPath}`);
}

/** A shell word as typed: single-quoted when it holds anything but safe characters. */

export function printGgufPlan(plan: GgufPlan, llamaQuantize: boolean): void {
  const rows = plan.rows.map((row) => [
    row.name,
    row.from,
    row.type,
    String(row.bytes),
    row.type === row.from ? '—' : formatStat(row.relativeError, 4),
    row.fixed ?? '',
  ]);
  printTable([['TENSOR', 'FROM', 'TYPE', 'BYTES', 'REL. ERROR', 'NOTE'], ...rows]);
  console.log('');
  console.log(
    `target ${plan.targetBpw} bpw: ${plan.bpw.toFixed(4)} bpw planned (${plan.tensorBytes} tensor bytes for ${plan.weights} weights)${plan.feasible ? '' : ' — the target cannot be met'}`,
  );
  console.log(
    `GGUF size: ${formatBytes(plan.fileBytesBefore)} → ${formatBytes(plan.predictedFileBytes)} predicted (${plan.predictedFileBytes} bytes, metadata and alignment counted)`,
  );
  if (llamaQuantize) {
    console.log('');
    console.log(llamaQuantizeCommand(plan));
  }
}

/** `layerlens plan FILE.gguf --target-bpw B …`; returns the exit code. */
async function planGgufCommand(file: string, args: readonly string[]): Promise<number> {
  const bpw = positiveNumber('--target-bpw', valueOf(args, '--target-bpw')!);
  const imatrixFile = valueOf(args, '--imatrix');
  const imatrixPath = imatrixFile === undefined ? undefined : resolve(imatrixFile);
  const plan = await planGguf(file, bpw, {}, imatrixPath);
  const matrix = imatrixPath === undefined ? undefined : readImportanceMatrix(imatrixPath);
  const out = valueOf(args, '--out');
  const written = args.includes('--write')
    ? await writeRetypedGguf(file, plan.choices, {
        label: 'plan',
        importance: (info) => importanceOf(matrix, file, info.name, info.ne[0] ?? 1),
        ...(out ? { outPath: resolve(out) } : {}),
      })
    : undefined;
  if (args.includes('--json')) {
    console.log(
      JSON.stringify({ ...plan, choices: Object.fromEntries(plan.choices), written }, null, 2),
    );
  } else {
    printGgufPlan(plan, args.includes('--llama-quantize'));
    if (written) console.log(`wrote ${written.path}: ${written.bytes} bytes`);
  }
  return plan.feasible ? 0 : 1;
}

/** `layerlens plan …`; returns the exit code. */
export async function planCommand(args: readonly string[]): Promise<number> {
  const files = positionals(args, PLAN_FLAGS, PLAN_SWITCHES);
  if (files.length !== 1) throw new UsageError('plan takes one model file');
  const file = resolve(files[0]!);
  if (valueOf(args, '--target-bpw') !== undefined) return planGgufCommand(file, args);
  if (args.includes('--llama-quantize') || args.includes('--write'))
    throw new UsageError('--llama-quantize and --write go with --target-bpw');
  if (valueOf(args, '--imatrix') !== undefined)
    throw new UsageError('--imatrix goes with --target-bpw');
  const target = parseTarget(args);
  const metric = valueOf(args, '--metric');
  if (metric !== undefined && !DEVIATION_METRICS.includes(metric as DeviationMetric))
    throw new UsageError(`--metric must be one of ${DEVIATION_METRICS.join(', ')}`);
  const plan = await planModel(file, {
    target,
    measured: args.includes('--measured'),
    ...(metric ? { metric: metric as DeviationMetric } : {}),
  });
  const out = resolve(valueOf(args, '--out') ?? artifactPath(file, file, 'recipe'));
  const recipePath = await writeRecipe(out, plan.recipe);
  if (args.includes('--json')) console.log(JSON.stringify({ ...plan, recipePath }, null, 2));
  else {
    printPlan(plan);
    console.log(`recipe: ${recipePath}`);
  }
  return 0;
}

/**
 * `layerlens apply …`; returns the exit code: 1 when the target was not met, else 3 when
 * the kept file is not validated, else 0.
 */
export async function applyCommand(args: readonly string[]): Promise<number> {
  const files = positionals(args, APPLY_FLAGS, APPLY_SWITCHES);
  if (files.length !== 2) throw new UsageError('apply takes a model file and a recipe');
  const file = resolve(files[0]!);
  const recipe = await readRecipe(resolve(files[1]!));
  const out = valueOf(args, '--out');
  const result = await applyRecipe(file, recipe, {
    refine: !args.includes('--no-refine'),
    ...(out ? { outPath: resolve(out) } : {}),
  });
  if (args.includes('--json')) console.log(JSON.stringify(result, null, 2));
  else printApplied(result);
  if (!result.targetMet) return 1;
  return result.verdict.validated ? 0 : NOT_VALIDATED_EXIT_CODE;
}

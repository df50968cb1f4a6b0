/**
 * `layerlens sensitivity FILE [--measured] [--metric relativeL2|cosine|kl] [--level KEY]
 * [--json]`: per-layer sensitivity as a ranking table, most sensitive first at one level.
 */
import { resolve } from 'node:path';
import {
  DEVIATION_METRICS,
  rankLayers,
  sensitivityAt,
  type DeviationMetric,
  type SensitivityResult,
} from '../shared/sensitivity';
import { computeSensitivity } from '../server/sensitivity';
import { UsageError } from './compress';
import { printTable } from './table';

const DEFAULT_LEVEL = 'prune:0.5';

export const SENSITIVITY_USAGE = `Usage: layerlens sensitivity FILE [--measured] [--metric relativeL2|cosine|kl]
                             [--level KEY] [--json]

  sensitivity  Rank the layers by how much compressing each one alone changes the model:
               the data-free proxy (relative weight error ‖W − Ŵ‖/‖W‖) for every level of
               the default sweep (prune 25–90%, 2:4, int8, int4 blocks 32/128, low-rank at
               99/95/90% energy; a GGUF: the llama.cpp types Q8_0 … Q2_K, IQ4_NL), or with --measured (ONNX) the output deviation on sample
               inputs, all levels run in one onnxruntime session; when the sample
               inputs cannot show a deviation (outputs that do not vary across them, or
               sit pinned at a bound) each reason is printed as "NOT trustworthy: …"
  --metric     Output deviation metric (default relativeL2)
  --level      Level key to rank by (default prune:0.5; a GGUF: ggml:Q8_0), e.g. int4:32,
               lowrank:e0.9, ggml:Q4_K
  --json       Print the whole result as JSON`;

interface SensitivityArgs {
  readonly file: string;
  readonly measured: boolean;
  readonly metric?: DeviationMetric;
  /** Absent: prune:0.5, or the sweep's first level when it has no prune:0.5 (GGUF). */
  readonly level?: string;
  readonly json: boolean;
}

export function parseSensitivityArgs(args: readonly string[]): SensitivityArgs {
  const files: string[] = [];
  let measured = false;
  let json = false;
  let metric: DeviationMetric | undefined;
  let level: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) files.push(arg);
    else if (arg === '--measured') measured = true;
    else if (arg === '--json') json = true;
    else if (arg === '--metric' || arg === '--level') {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      if (arg === '--level') level = value;
      else if (DEVIATION_METRICS.includes(value as DeviationMetric))
        metric = value as DeviationMetric;
      else throw new UsageError(`--metric must be one of ${DEVIATION_METRICS.join(', ')}`);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  if (files.length !== 1) throw new UsageError('sensitivity takes one model file');
  return {
    file: files[0]!,
    measured,
    json,
    ...(level ? { level } : {}),
    ...(metric ? { metric } : {}),
  };
}

function formatValue(value: number | undefined): string {
  if (value === undefined) return '—';
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4
    ? value.toPrecision(3)
    : value.toExponential(2);
}

export function printSensitivity(result: SensitivityResult, key: string): void {
  const measured = result.layers.some((layer) => layer.measured);
  console.log(result.source);
  console.log(
    measured
      ? `  measured: output deviation (${result.metric}, worst output) with one layer compressed at a time`
      : '  proxy: relative weight error ‖W − Ŵ‖/‖W‖ (data-free; no model run)',
  );
  if (measured) {
    console.log(`  inputs: ${result.inputs}`);
    console.log(
      `  backend: ${result.backend}; ${result.runs} runs in ${result.sessions} session${result.sessions === 1 ? '' : 's'}`,
    );
  }
  for (const problem of result.inputProblems ?? []) console.log(`  NOT trustworthy: ${problem}`);
  console.log(`  ${(result.elapsedMs / 1000).toFixed(2)} s${result.cached ? ' (cached)' : ''}`);
  console.log(`  ranked by ${key}`);
  console.log('');
  const rows = [['#', 'TENSOR', ...result.levels.map((level) => level.key)]];
  rankLayers(result, key).forEach((layer, rank) => {
    rows.push([
      String(rank + 1),
      layer.name,
      ...result.levels.map((level) => formatValue(sensitivityAt(layer, level.key))),
    ]);
  });
  printTable(rows);
  for (const layer of result.layers) {
    if (layer.note) console.log(`  ${layer.name}: ${layer.note}`);
  }
  const reasons = new Map<string, number>();
  for (const layer of result.layers) {
    for (const s of layer.skipped ?? []) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  }
  if (reasons.size > 0) console.log('  — not applicable:');
  for (const [reason, count] of reasons) console.log(`    ${count} × ${reason}`);
}

/** Run `layerlens sensitivity …`; returns the exit code. */
export async function sensitivityCommand(args: readonly string[]): Promise<number> {
  let parsed: SensitivityArgs;
  try {
    parsed = parseSensitivityArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`layerlens: ${error.message}\n\n${SENSITIVITY_USAGE}`);
    return 2;
  }
  const result = await computeSensitivity(resolve(parsed.file), {
    indices: [],
    measured: parsed.measured,
    ...(parsed.metric ? { metric: parsed.metric } : {}),
  });
  const has = (key: string) => result.levels.some((level) => level.key === key);
  const key = parsed.level ?? (has(DEFAULT_LEVEL) ? DEFAULT_LEVEL : result.levels[0]!.key);
  if (!has(key)) {
    console.error(
      `layerlens: no level ${key}; the sweep has ${result.levels.map((l) => l.key).join(', ')}`,
    );
    return 2;
  }
  if (parsed.json) console.log(JSON.stringify(result, null, 2));
  else printSensitivity(result, key);
  return 0;
}

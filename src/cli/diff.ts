/**
 * `layerlens diff A B [--json] [--outputs]`: what changed between two models (before and
 * after compression, a base and its fine-tune), from src/server/diff.
 */
import { resolve } from 'node:path';
import { DELTA_ENERGY_RANKS, type DeltaSpectrum, type ModelDiff } from '../shared/diff';
import {
  dtypeChangeText,
  pairingText,
  shapeChangeText,
  structureChangeText,
} from '../shared/diffText';
import type { DType } from '../shared/dtypes';
import { formatBytes, formatCount, formatPercent, formatShape, formatStat } from '../shared/format';
import { diffModels } from '../server/diff';
import { extractLora } from '../server/diff/finetune';
import { UsageError, validationFlags } from './compress';
import { printTable } from './table';

export const DIFF_USAGE = `Usage: layerlens diff A B [--json] [--outputs] [--changed] [--delta]
                      [--inputs DIR] [--dim NAME=N] [--shape NAME=AxB] [--value NAME=X]

  diff       Compare two models (any formats LayerLens reads): sizes, parameters and bytes
             by dtype; tensors paired by name, else by the node that reads them (a weight
             renamed by compression) or as the two factors a low-rank split left, each
             with its shape, dtype, bytes, ‖ΔW‖/‖W‖, cosine, max |Δ| and share of
             identical values; tensors that could not be paired; for ONNX the nodes
             added, removed, changed and split
  --outputs  Also run both ONNX models on the sample inputs of the compression's
             validation (same flags) and compare each output
  --changed  List only the pairs that differ
  --delta    Fine-tune analysis: for each changed float matrix the spectrum of
             ΔW = B − A, its stable and effective rank, and the energy of ΔW that a
             rank r keeps for r = 4, 8, 16, 32, 64
  --json     Print the whole diff as JSON

Usage: layerlens extract-lora BASE TUNED (--rank R | --energy E [--max-rank M]) --out DIR [--json]

  extract-lora  Write the fine-tune's update of every changed 2-D float matrix as a
                LoRA adapter PEFT loads: DIR/adapter_model.safetensors
                (base_model.model.<module>.lora_A.weight [r, in], lora_B.weight
                [out, r]) and DIR/adapter_config.json (lora_alpha = r); prints per
                matrix the energy kept, ‖ΔW − B·A‖/‖ΔW‖ and ‖base + B·A − tuned‖/‖tuned‖
  --rank R      The same rank R for every matrix
  --energy E    Per matrix the smallest rank keeping the share E (0 < E ≤ 1) of
                ‖ΔW‖²; the config's r is the rank most matrices got, the others are
                listed in rank_pattern and alpha_pattern
  --max-rank M  With --energy: no matrix gets a rank above M`;

interface DiffArgs {
  readonly a: string;
  readonly b: string;
  readonly json: boolean;
  readonly outputs: boolean;
  readonly changedOnly: boolean;
  readonly deltas: boolean;
  readonly settings: ReturnType<ReturnType<typeof validationFlags>['settings']>;
}

export function parseDiffArgs(args: readonly string[]): DiffArgs {
  const files: string[] = [];
  const validation = validationFlags();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) files.push(arg);
    else if (['--json', '--outputs', '--changed', '--delta'].includes(arg)) flags.add(arg);
    else {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      if (!validation.take(arg, value)) throw new UsageError(`unknown option ${arg}`);
    }
  }
  if (files.length !== 2) throw new UsageError('diff takes two model files');
  return {
    a: resolve(files[0]!),
    b: resolve(files[1]!),
    json: flags.has('--json'),
    outputs: flags.has('--outputs'),
    changedOnly: flags.has('--changed'),
    deltas: flags.has('--delta'),
    settings: validation.settings(),
  };
}

function ratio(before: number, after: number): string {
  return after > 0 ? ` (${(before / after).toFixed(2)}×)` : '';
}

export function printDiff(diff: ModelDiff, changedOnly: boolean): void {
  const { a, b } = diff;
  console.log(`A: ${a.path} (${a.format})`);
  console.log(`B: ${b.path} (${b.format})`);
  console.log(
    `  size: ${formatBytes(a.totalBytes)} → ${formatBytes(b.totalBytes)}${ratio(a.totalBytes, b.totalBytes)}`,
  );
  console.log(
    `  parameters: ${formatCount(a.parameterCount)} → ${formatCount(b.parameterCount)}; tensors: ${formatCount(a.tensorCount)} → ${formatCount(b.tensorCount)}`,
  );
  const dtypes = new Set([...Object.keys(a.bytesByDType), ...Object.keys(b.bytesByDType)]);
  const byDType = [...dtypes].map(
    (d) =>
      `${d} ${formatBytes(a.bytesByDType[d as DType] ?? 0)} → ${formatBytes(b.bytesByDType[d as DType] ?? 0)}`,
  );
  console.log(`  bytes by dtype: ${byDType.join('; ')}`);
  const changed = diff.pairs.filter((p) => p.changed).length;
  console.log(
    `  paired: ${diff.pairs.length} (by name ${diff.pairedBy.name}, by node ${diff.pairedBy.node}, as factors ${diff.pairedBy.factors}); changed ${changed}`,
  );
  console.log('');
  const rows = [
    ['TENSOR', 'IN B', 'SHAPE', 'DTYPE', 'BYTES', '‖ΔW‖/‖W‖', 'COSINE', 'MAX |Δ|', 'IDENTICAL'],
  ];
  for (const pair of diff.pairs) {
    if (changedOnly && !pair.changed) continue;
    const v = pair.values;
    rows.push([
      pair.name,
      pairingText(pair),
      shapeChangeText(pair),
      dtypeChangeText(pair),
      pair.bytesA === pair.bytesB
        ? formatBytes(pair.bytesA)
        : `${formatBytes(pair.bytesA)} → ${formatBytes(pair.bytesB)}`,
      v ? formatStat(v.relativeError, 3) : '—',
      v ? formatStat(v.cosine, 6) : '—',
      v ? formatStat(v.maxAbsDiff, 3) : '—',
      v ? formatPercent(v.identical) : '—',
    ]);
  }
  printTable(rows);
  for (const pair of diff.pairs) {
    if (pair.valuesSkipped)
      console.log(`  ${pair.name}: values not compared: ${pair.valuesSkipped}`);
    if (pair.companionsB.length > 0 && !changedOnly)
      console.log(`  ${pair.name}: B also stores ${pair.companionsB.join(', ')}`);
  }
  const unpaired = (label: string, list: ModelDiff['onlyA']) => {
    if (list.length === 0) return;
    console.log(`\nOnly in ${label} (${list.length}):`);
    for (const t of list)
      console.log(
        `  ${t.name} ${formatShape(t.shape)} ${t.dtype} ${formatBytes(t.bytes)} (${t.node})`,
      );
  };
  unpaired('A', diff.onlyA);
  unpaired('B', diff.onlyB);
  if (diff.structure) {
    const s = diff.structure;
    const ops = Object.entries(s.opCountChanges).map(([op, d]) => `${op} ${d > 0 ? '+' : ''}${d}`);
    console.log(
      `\nStructure: ${formatCount(s.nodesA)} → ${formatCount(s.nodesB)} nodes; added ${s.counts.added}, removed ${s.counts.removed}, changed ${s.counts.changed}, split ${s.counts.split}${ops.length > 0 ? `; ops ${ops.join(', ')}` : ''}`,
    );
    for (const change of s.changes) console.log(`  ${structureChangeText(change)}`);
    if (s.unlisted > 0) console.log(`  … and ${formatCount(s.unlisted)} more`);
  }
  if (diff.outputs) {
    console.log(`\nOutputs${diff.outputs.inputs ? ` on ${diff.outputs.inputs}` : ''}:`);
    if (diff.outputs.outputs.length > 0) {
      printTable([
        ['OUTPUT', 'REL. L2', 'COSINE', 'MAX ABS DIFF'],
        ...diff.outputs.outputs.map((o) => [
          o.output,
          formatStat(o.relativeL2, 3),
          formatStat(o.cosine, 6),
          formatStat(o.maxAbsDiff, 3),
        ]),
      ]);
    }
    for (const note of diff.outputs.notes) console.log(`  ${note}`);
  }
  if (diff.deltas) printDeltas(diff.deltas);
  if (diff.notes.length > 0) console.log('');
  for (const note of diff.notes) console.log(`Note: ${note}`);
}

/** Run `layerlens diff …`; returns the exit code. */
export async function diffCommand(args: readonly string[]): Promise<number> {
  let parsed: DiffArgs;
  try {
    parsed = parseDiffArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`layerlens: ${error.message}\n\n${DIFF_USAGE}`);
    return 2;
  }
  const diff = await diffModels(parsed.a, parsed.b, {
    outputs: parsed.outputs,
    deltas: parsed.deltas,
    settings: parsed.settings,
  });
  if (parsed.json) console.log(JSON.stringify(diff, null, 2));
  else printDiff(diff, parsed.changedOnly);
  return 0;
}

function printDeltas(deltas: readonly DeltaSpectrum[]): void {
  console.log(`\nFine-tune analysis (ΔW = B − A of ${deltas.length} changed matrices):`);
  printTable([
    [
      'TENSOR',
      'SHAPE',
      '‖ΔW‖/‖W‖',
      'σ₁',
      'STABLE RANK',
      'EFF. RANK',
      ...DELTA_ENERGY_RANKS.map((r) => `E@${r}`),
    ],
    ...deltas.map((d) => [
      d.name,
      `${d.rows} × ${d.cols}`,
      formatStat(d.relativeChange, 3),
      formatStat(d.singularValues[0] ?? 0, 3),
      formatStat(d.stableRank, 3),
      formatStat(d.effectiveRank, 3),
      ...DELTA_ENERGY_RANKS.map((r) => {
        const at = d.energyAt.find((e) => e.rank === r);
        return at ? formatPercent(at.energy) : '—';
      }),
    ]),
  ]);
}

export function parseLoraArgs(args: readonly string[]): {
  base: string;
  tuned: string;
  rank?: number;
  energy?: number;
  maxRank?: number;
  out: string;
  json: boolean;
} {
  const files: string[] = [];
  const values: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) files.push(arg);
    else if (arg === '--json') json = true;
    else if (['--rank', '--energy', '--max-rank', '--out'].includes(arg)) {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      values[arg] = value;
    } else throw new UsageError(`unknown option ${arg}`);
  }
  if (files.length !== 2) throw new UsageError('extract-lora takes the base and the tuned model');
  const positive = (flag: string) => {
    const value = Number(values[flag]);
    if (!Number.isInteger(value) || value < 1)
      throw new UsageError(`${flag} must be a positive integer`);
    return value;
  };
  const choice: { rank?: number; energy?: number; maxRank?: number } = {};
  if (values['--energy'] !== undefined) {
    if (values['--rank'] !== undefined)
      throw new UsageError('extract-lora takes --rank or --energy, not both');
    const energy = Number(values['--energy']);
    if (!(energy > 0 && energy <= 1)) throw new UsageError('--energy must be in (0, 1]');
    choice.energy = energy;
    if (values['--max-rank'] !== undefined) choice.maxRank = positive('--max-rank');
  } else {
    if (values['--max-rank'] !== undefined) throw new UsageError('--max-rank goes with --energy');
    choice.rank = positive('--rank');
  }
  if (!values['--out']) throw new UsageError('extract-lora needs --out DIR');
  return {
    base: resolve(files[0]!),
    tuned: resolve(files[1]!),
    ...choice,
    out: resolve(values['--out']),
    json,
  };
}

/** Run `layerlens extract-lora …`; returns the exit code. */
export async function extractLoraCommand(args: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseLoraArgs>;
  try {
    parsed = parseLoraArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`layerlens: ${error.message}\n\n${DIFF_USAGE}`);
    return 2;
  }
  const { rank, energy, maxRank } = parsed;
  const result = await extractLora(parsed.base, parsed.tuned, {
    rank,
    energy,
    maxRank,
    outDir: parsed.out,
  });
  if (parsed.json) {
    console.log(JSON.stringify(result, null, 2));
    return 0;
  }
  console.log(`Wrote ${result.adapterPath}`);
  const patterned = result.modules.filter((m) => m.rank !== result.rank).length;
  console.log(
    `  and ${result.configPath} (r = ${result.rank}, lora_alpha = ${result.rank}${
      patterned > 0 ? `; ${patterned} matrices with another rank in rank_pattern` : ''
    })`,
  );
  printTable([
    [
      'TENSOR',
      'MODULE',
      'SHAPE',
      'RANK',
      'ENERGY',
      '‖ΔW − BA‖/‖ΔW‖',
      '‖base + BA − tuned‖/‖tuned‖',
    ],
    ...result.modules.map((m) => [
      m.name,
      m.module,
      `${m.rows} × ${m.cols}`,
      String(m.rank),
      formatPercent(m.energy),
      formatStat(m.updateError, 3),
      formatStat(m.tunedError, 3),
    ]),
  ]);
  for (const s of result.skipped) console.log(`  not in the adapter: ${s.name}: ${s.reason}`);
  return 0;
}

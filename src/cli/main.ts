/**
 * `layerlens`: the server's core, headless, for terminals and CI pipelines.
 *
 *   layerlens inspect FILE [--json] [--stats] [--spectra | --fast-spectra] [--sparsity]
 *   layerlens compress FILE --method M [--level L] [--layers REGEX] [--out FILE] [--json]
 *   layerlens inspect FILE [--json] [--stats]
 *   layerlens pack|unpack|compressibility|delta … (see cli/lossless.ts)
 *   layerlens diff A B [--json] [--outputs] [--delta], extract-lora (see cli/diff.ts)
 *   layerlens report MODEL [--compare OTHER] --html OUT.html (see cli/report.ts)
 */
import { resolve } from 'node:path';
import {
  formatBytes,
  formatCompactCount,
  formatCount,
  formatPercent,
  formatShape,
  formatStat,
} from '../shared/format';
import {
  isStatsError,
  type ModelSummary,
  type TensorInfo,
  type TensorStatsResult,
} from '../shared/model';
import { MAX_PAGE_SIZE, MAX_STATS_BATCH } from '../shared/limits';
import { DTYPES } from '../shared/dtypes';
import { matrixShape } from '../shared/heatmap';
import { ModelFileError } from '../server/formats/types';
import { ModelService } from '../server/modelService';
import { AnalysisService } from '../server/analysisService';
import { fastSpectrumWorkers } from '../server/jobs/computeSpectrum';
import { orderedPipeline } from '../server/jobs/orderedPipeline';
import type { StructuredSparsity } from '../shared/heatmap';
import type { Spectrum } from '../shared/spectrum';
import { compressCommand, COMPRESS_USAGE } from './compress';
import { LOSSLESS_COMMANDS, LOSSLESS_USAGE, losslessMain } from './lossless';
import type { LosslessPool } from '../server/lossless/jobs';
import { printTable } from './table';
import { applyCommand, PLAN_USAGE, planCommand } from './plan';
import { UsageError } from './compress';
import { sensitivityCommand, SENSITIVITY_USAGE } from './sensitivity';
import { diffCommand, DIFF_USAGE, extractLoraCommand } from './diff';
import { reportCommand, REPORT_USAGE } from './report';

const USAGE = `Usage: layerlens inspect FILE [--json] [--stats] [--spectra | --fast-spectra] [--sparsity]

  inspect    Summarise a model file (.onnx, .safetensors, *.safetensors.index.json, .gguf)
  --json     Print JSON: format, fileBytes, parameterCount, tensors (name, dtype, shape,
             parameterCount, node, op, …) and the rest of the summary
  --stats    Also compute per-tensor statistics (min, max, mean, std, sparsity, L2 norm)
  --spectra  Also compute the spectral metrics of every 2-D+ floating-point tensor (stable
             and effective rank, ranks for 90/99% energy, spectral norm, power-law alpha,
             Marchenko–Pastur soft rank and spikes)
  --fast-spectra  The same metrics for whole large models (an LLM's hundreds of 4096-wide
             matrices in minutes): the top 128 singular values by randomized SVD give the
             spectral norm, stable rank and power-law alpha, and the effective rank is
             estimated over all values by Lanczos quadrature; the ranks for 90/99% energy
             count the top values only (the layerlens.spectrum.method setting \`fast\`)
  --sparsity Also count structured sparsity: all-zero rows, columns and conv channels,
             share of 2:4-compliant groups

${COMPRESS_USAGE}

${LOSSLESS_USAGE}

${SENSITIVITY_USAGE}

${PLAN_USAGE}

${DIFF_USAGE}

${REPORT_USAGE}`;

/** Spectral metrics of a tensor in the report (the singular values themselves are left out). */
type SpectrumReport = Omit<Spectrum, 'singularValues' | 'index'> | { readonly error: string };

type SparsityReport = StructuredSparsity | { readonly error: string };

interface InspectExtras {
  readonly analysis?: AnalysisService;
  readonly spectra?: boolean;
  readonly sparsity?: boolean;
}

interface InspectReport extends ModelSummary {
  readonly file: string;
  readonly tensors: (TensorInfo & {
    stats?: TensorStatsResult;
    spectrum?: SpectrumReport;
    structuredSparsity?: SparsityReport;
  })[];
}

async function inspect(
  service: ModelService,
  file: string,
  withStats: boolean,
  extras: InspectExtras = {},
): Promise<InspectReport> {
  const path = resolve(file);
  if (withStats) service.startStatsWorkers();
  const summary = await service.openModel(path);
  const tensors: TensorInfo[] = [];
  while (tensors.length < summary.tensorCount) {
    const page = await service.tensors(path, tensors.length, MAX_PAGE_SIZE);
    tensors.push(...page.tensors);
  }
  const stats = new Map<number, TensorStatsResult>();
  if (withStats) {
    for (let start = 0; start < tensors.length; start += MAX_STATS_BATCH) {
      const indices = tensors.slice(start, start + MAX_STATS_BATCH).map((tensor) => tensor.index);
      for (const result of await service.tensorStats(path, indices))
        stats.set(result.index, result);
    }
  }
  const analysed = await analyseTensors(path, tensors, extras);
  return {
    file: path,
    ...summary,
    tensors: tensors.map((tensor) => ({
      ...(withStats ? { ...tensor, stats: stats.get(tensor.index) } : tensor),
      ...analysed.get(tensor.index),
    })),
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Spectral metrics and structured sparsity of the tensors that have a matrix view. */
async function analyseTensors(
  path: string,
  tensors: readonly TensorInfo[],
  { analysis, spectra, sparsity }: InspectExtras,
): Promise<Map<number, { spectrum?: SpectrumReport; structuredSparsity?: SparsityReport }>> {
  const results = new Map<
    number,
    { spectrum?: SpectrumReport; structuredSparsity?: SparsityReport }
  >();
  if (!analysis) return results;
  const entryOf = (index: number) => {
    let entry = results.get(index);
    if (!entry) {
      entry = {};
      results.set(index, entry);
    }
    return entry;
  };
  const matrices = tensors.filter((tensor) => matrixShape(tensor.shape));
  if (spectra) {
    // Several matrices in flight: the 'fast' method computes them side by side.
    const floats = matrices.filter(
      (tensor) => DTYPES[tensor.dtype].isFloat && DTYPES[tensor.dtype].numeric,
    );
    await orderedPipeline(
      floats.length,
      fastSpectrumWorkers(),
      (i) => spectrumReport(analysis, path, floats[i]!.index),
      async (i, spectrum) => {
        entryOf(floats[i]!.index).spectrum = spectrum;
      },
    );
  }
  for (const tensor of matrices) {
    const entry = entryOf(tensor.index);
    if (sparsity && DTYPES[tensor.dtype].numeric) {
      try {
        entry.structuredSparsity = (
          await analysis.heatmapInfo(path, tensor.index, { kind: 'zeros' })
        ).structured;
      } catch (error) {
        if (error instanceof ModelFileError) throw error;
        entry.structuredSparsity = { error: errorText(error) };
      }
    }
  }
  return results;
}

/** The spectrum report of one tensor: its metrics, or the error that kept it from having them. */
async function spectrumReport(
  analysis: AnalysisService,
  path: string,
  index: number,
): Promise<SpectrumReport> {
  try {
    const spectrum = await analysis.spectrum(path, index);
    return {
      rows: spectrum.rows,
      cols: spectrum.cols,
      method: spectrum.method,
      precision: spectrum.precision,
      conv: spectrum.conv,
      frobeniusSquared: spectrum.frobeniusSquared,
      metrics: spectrum.metrics,
      backend: spectrum.backend,
      elapsedMs: spectrum.elapsedMs,
    };
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    return { error: errorText(error) };
  }
}

function spectrumCells(spectrum: SpectrumReport | undefined): string[] {
  if (!spectrum) return ['', '', '', '', ''];
  if ('error' in spectrum) return [`(${spectrum.error})`, '', '', '', ''];
  const { metrics } = spectrum;
  return [
    formatStat(metrics.stableRank, 3),
    formatStat(metrics.effectiveRank, 3),
    `${metrics.rank90}/${metrics.rank99}`,
    formatStat(metrics.spectralNorm, 3),
    formatStat(metrics.alpha, 3),
  ];
}

function sparsityCells(sparsity: SparsityReport | undefined): string[] {
  if (!sparsity) return ['', '', ''];
  if ('error' in sparsity) return [`(${sparsity.error})`, '', ''];
  return [
    `${sparsity.zeroRows}/${sparsity.rows}`,
    `${sparsity.zeroCols}/${sparsity.cols}`,
    formatPercent(sparsity.groups > 0 ? sparsity.compliantGroups / sparsity.groups : 0),
  ];
}

function printReport(report: InspectReport, withStats: boolean, extras: InspectExtras = {}): void {
  console.log(
    `${report.fileName}  ${report.format.toUpperCase()} · ${formatBytes(report.totalBytes)} · ` +
      `${formatCount(report.parameterCount)} parameters (${formatCompactCount(report.parameterCount)}) · ` +
      `${report.tensorCount} tensors`,
  );
  for (const { key, value } of report.metadata) console.log(`  ${key}: ${value}`);
  for (const warning of report.warnings) console.log(`  warning: ${warning}`);
  console.log('');
  const header = ['TENSOR', 'LAYER', 'OP', 'SHAPE', 'DTYPE', 'PARAMS', 'BYTES'];
  if (withStats) header.push('SPARSITY', 'MEAN', 'STD', 'MIN', 'MAX');
  if (extras.spectra) header.push('STABLE RANK', 'EFF RANK', 'R90/R99', 'SIGMA1', 'ALPHA');
  if (extras.sparsity) header.push('ZERO ROWS', 'ZERO COLS', '2:4 OK');
  const rows = report.tensors.map((tensor) => {
    const row = [
      tensor.name,
      tensor.node,
      tensor.op ?? '',
      formatShape(tensor.shape),
      tensor.encoding?.scheme ?? tensor.dtype,
      formatCount(tensor.parameterCount),
      formatBytes(tensor.byteLength),
    ];
    const stats = tensor.stats;
    if (stats && isStatsError(stats)) row.push(`(${stats.error})`, '', '', '', '');
    else if (stats) {
      row.push(
        formatPercent(stats.sparsity),
        formatStat(stats.mean),
        formatStat(stats.std),
        formatStat(stats.min),
        formatStat(stats.max),
      );
    }
    if (extras.spectra) row.push(...spectrumCells(tensor.spectrum));
    if (extras.sparsity) row.push(...sparsityCells(tensor.structuredSparsity));
    return row;
  });
  printTable([header, ...rows]);
}

/**
 * Run the command `argv`. `losslessPool`: lossless workers the caller started early
 * (bin.ts, for pack and unpack), handed to the lossless commands.
 */
export async function main(argv: readonly string[], losslessPool?: LosslessPool): Promise<number> {
  const [command, ...rest] = argv;
  const flags = new Set(rest.filter((arg) => arg.startsWith('--')));
  const files = rest.filter((arg) => !arg.startsWith('--'));
  const known = new Set(['--json', '--stats', '--spectra', '--fast-spectra', '--sparsity']);
  const unknown = [...flags].filter((flag) => !known.has(flag));
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'compress') {
    try {
      return await compressCommand(rest);
    } catch (error) {
      if (error instanceof ModelFileError || error instanceof RangeError) {
        console.error(`layerlens: ${error.message}`);
        return 1;
      }
      throw error;
    }
  }
  if (command === 'plan' || command === 'apply') return runPlan(command, rest);
  const lossless = LOSSLESS_COMMANDS.find((name) => name === command);
  if (lossless) return runLossless(lossless, rest, losslessPool);
  const commands: Record<string, (args: readonly string[]) => Promise<number>> = {
    sensitivity: sensitivityCommand,
    diff: diffCommand,
    'extract-lora': extractLoraCommand,
    report: (args) => reportCommand(args),
  };
  const run = Object.hasOwn(commands, command ?? '') ? commands[command!] : undefined;
  if (run) {
    try {
      return await run(rest);
    } catch (error) {
      if (error instanceof ModelFileError || error instanceof RangeError) {
        console.error(`layerlens: ${error.message}`);
        return 1;
      }
      throw error;
    }
  }
  if (command !== 'inspect' || files.length !== 1 || unknown.length > 0) {
    console.error(USAGE);
    return 2;
  }
  const service = new ModelService();
  const extras: InspectExtras = {
    analysis: new AnalysisService(service, {
      spectrumMethod: flags.has('--fast-spectra') ? 'fast' : 'auto',
    }),
    spectra: flags.has('--spectra') || flags.has('--fast-spectra'),
    sparsity: flags.has('--sparsity'),
  };
  try {
    const report = await inspect(service, files[0]!, flags.has('--stats'), extras);
    if (flags.has('--json')) console.log(JSON.stringify(report, null, 2));
    else printReport(report, flags.has('--stats'), extras);
    // Data that cannot be read (corrupt chunks, refused sizes) is a failure, not a note.
    let unreadable = 0;
    for (const { name, stats } of report.tensors) {
      if (!stats || !isStatsError(stats) || !stats.file) continue;
      console.error(`layerlens: tensor "${name}": ${stats.error}`);
      unreadable++;
    }
    return unreadable > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof ModelFileError) {
      console.error(`layerlens: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    extras.analysis?.dispose();
    service.dispose();
  }
}

async function runLossless(
  command: (typeof LOSSLESS_COMMANDS)[number],
  args: readonly string[],
  pool: LosslessPool | undefined,
): Promise<number> {
  const service = new ModelService();
  try {
    return await losslessMain(command, args, service, pool);
  } catch (error) {
    if (error instanceof ModelFileError) {
      console.error(`layerlens: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    service.dispose();
  }
}

async function runPlan(command: 'plan' | 'apply', args: readonly string[]): Promise<number> {
  try {
    return command === 'plan' ? await planCommand(args) : await applyCommand(args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`layerlens: ${error.message}\n\n${PLAN_USAGE}`);
      return 2;
    }
    if (error instanceof ModelFileError || error instanceof RangeError) {
      console.error(`layerlens: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

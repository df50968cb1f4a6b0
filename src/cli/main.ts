/**
 * `layerlens`: the server's core, headless, for terminals and CI pipelines.
 *
 *   layerlens inspect FILE [--json] [--stats]
 *   layerlens pack|unpack|compressibility|delta … (see cli/lossless.ts)
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
import { ModelFileError } from '../server/formats/types';
import { ModelService } from '../server/modelService';
import { LOSSLESS_COMMANDS, LOSSLESS_USAGE, losslessMain } from './lossless';

const USAGE = `Usage: layerlens inspect FILE [--json] [--stats]

  inspect    Summarise a model file (.onnx, .safetensors, *.safetensors.index.json)
  --json     Print JSON: format, fileBytes, parameterCount, tensors (name, dtype, shape,
             parameterCount, node, op, …) and the rest of the summary
  --stats    Also compute per-tensor statistics (min, max, mean, std, sparsity, L2 norm)
${LOSSLESS_USAGE}`;

interface InspectReport extends ModelSummary {
  readonly file: string;
  readonly tensors: (TensorInfo & { stats?: TensorStatsResult })[];
}

async function inspect(
  service: ModelService,
  file: string,
  withStats: boolean,
): Promise<InspectReport> {
  const path = resolve(file);
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
  return {
    file: path,
    ...summary,
    tensors: tensors.map((tensor) =>
      withStats ? { ...tensor, stats: stats.get(tensor.index) } : tensor,
    ),
  };
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) {
    console.log(
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    );
  }
}

function printReport(report: InspectReport, withStats: boolean): void {
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
  const rows = report.tensors.map((tensor) => {
    const row = [
      tensor.name,
      tensor.node,
      tensor.op ?? '',
      formatShape(tensor.shape),
      tensor.dtype,
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
    return row;
  });
  printTable([header, ...rows]);
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flags = new Set(rest.filter((arg) => arg.startsWith('--')));
  const files = rest.filter((arg) => !arg.startsWith('--'));
  const unknown = [...flags].filter((flag) => flag !== '--json' && flag !== '--stats');
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  const lossless = LOSSLESS_COMMANDS.find((name) => name === command);
  if (lossless) return runLossless(lossless, rest);
  if (command !== 'inspect' || files.length !== 1 || unknown.length > 0) {
    console.error(USAGE);
    return 2;
  }
  const service = new ModelService();
  try {
    const report = await inspect(service, files[0]!, flags.has('--stats'));
    if (flags.has('--json')) console.log(JSON.stringify(report, null, 2));
    else printReport(report, flags.has('--stats'));
    return 0;
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

async function runLossless(
  command: (typeof LOSSLESS_COMMANDS)[number],
  args: readonly string[],
): Promise<number> {
  const service = new ModelService();
  try {
    return await losslessMain(command, args, service);
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

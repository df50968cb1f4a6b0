/** Compression settings in words, for the report view, messages and the CLI. */
import type {
  CompressionOptions,
  CompressionReport,
  MethodShare,
  OutputDeviation,
  ValidationVerdict,
} from './compress';
import { formatBytes, formatCount, formatStat } from './format';

/** Exit status of `layerlens compress` / `apply` when the file was written but NOT validated. */
export const NOT_VALIDATED_EXIT_CODE = 3;

/** "validated", or "NOT validated: <reasons>" (the CLI's verdict line). */
export function verdictLine(verdict: ValidationVerdict): string {
  if (verdict.validated) return 'validated';
  return verdict.reasons.length > 0
    ? `NOT validated: ${verdict.reasons.join('; ')}`
    : 'NOT validated';
}

/** What an output's deviation figures were measured on: "worst of 8 samples". */
export function samplesLabel(output: OutputDeviation): string {
  return output.samples === undefined
    ? 'on the sample input'
    : `worst of ${output.samples} sample${output.samples === 1 ? '' : 's'}`;
}

/**
 * One output's deviation in words: the worst sample and the mean over the samples, e.g.
 * "cosine 0.9981 worst of 8 samples, 0.9995 mean; relative L2 0.061 worst, 0.031 mean".
 */
export function describeDeviation(output: OutputDeviation): string {
  const mean = (value: number | undefined, digits: number) =>
    value === undefined ? '' : `, ${formatStat(value, digits)} mean`;
  return (
    `cosine ${formatStat(output.cosine, 6)} ${samplesLabel(output)}${mean(output.meanCosine, 6)}; ` +
    `relative L2 ${formatStat(output.relativeL2, 4)} worst${mean(output.meanRelativeL2, 4)}`
  );
}

/** The method and its level in words: `int4, block 32`, `prune to 50% sparsity`. */
export function describeOptions(options: CompressionOptions): string {
  switch (options.method) {
    case 'prune':
      return `prune to ${Math.round((options.sparsity ?? 0.5) * 100)}% sparsity`;
    case 'nm':
      return `${options.n ?? 2}:${options.m ?? 4} semi-structured pruning`;
    case 'int8':
      return options.storeQuantized
        ? 'int8 per channel, stored as int8 + scales'
        : 'int8 per channel';
    case 'int4':
      return `int4, block ${options.blockSize ?? 32}${options.int4Format ? ` (${options.int4Format})` : ''}`;
    case 'lowrank':
      return options.rank !== undefined
        ? `low rank, rank ${options.rank}`
        : `low rank, ${Math.round((options.energy ?? 0.95) * 1000) / 10}% energy`;
    case 'fp16':
      return 'float16 weights';
    case 'bf16':
      return 'bfloat16 weights';
    case 'ggml':
      return `llama.cpp ${options.ggmlType ?? 'Q8_0'} blocks`;
  }
}

/** The settings of a report: a per-tensor compression's several, or its one. */
function sharesOf(report: Pick<CompressionReport, 'options' | 'methods'>): readonly MethodShare[] {
  return report.methods && report.methods.length > 0
    ? report.methods
    : [{ options: report.options, tensors: 0, bytesBefore: 0 }];
}

/** What a report's compression used, in a few words: `int4, block 32`, or `mixed (3 methods)`. */
export function methodsHeadline(report: Pick<CompressionReport, 'options' | 'methods'>): string {
  const shares = sharesOf(report);
  return shares.length > 1
    ? `mixed (${shares.length} methods)`
    : describeOptions(shares[0]!.options);
}

/**
 * Each setting of a mixed compression with its share: `int4, block 128: 12 tensors, 1.2 MB`,
 * the most bytes first; empty for a compression with one method.
 */
export function methodShareLines(report: Pick<CompressionReport, 'options' | 'methods'>): string[] {
  const shares = sharesOf(report);
  if (shares.length < 2) return [];
  return shares.map(
    (share) =>
      `${describeOptions(share.options)}: ${formatCount(share.tensors)} tensor${share.tensors === 1 ? '' : 's'}, ${formatBytes(share.bytesBefore)}`,
  );
}

/** The method(s) on one line, for messages and the CLI: `mixed (2 methods: int4, block 32: 3 tensors, …; …)`. */
export function describeMethods(report: Pick<CompressionReport, 'options' | 'methods'>): string {
  const lines = methodShareLines(report);
  return lines.length > 0
    ? `${methodsHeadline(report).slice(0, -1)}: ${lines.join('; ')})`
    : methodsHeadline(report);
}

/**
 * The words on LayerLens code lenses and hovers in Python scripts. Metrics are listed in
 * one table (LAYER_METRICS): a new per-layer number is a field of LayerMetrics and one row.
 */
import {
  formatBytes,
  formatCompactCount,
  formatCount,
  formatPercent,
  formatShape,
  formatStat,
} from '../../shared/format';
import type { ModelSummary, TensorInfo, TensorStats } from '../../shared/model';
import type { Dim } from './layerTypes';
import type { LayerInstance, ShapeCheck } from './layerMapping';

export const LENS_PREFIX = 'LayerLens';

/** `[256, 784]` → `256×784`; a scalar is `scalar`; unknown dimensions are `?`. */
export function formatDims(dims: readonly Dim[]): string {
  return dims.length === 0 ? 'scalar' : dims.map((dim) => dim ?? '?').join('×');
}

/** `✓ 256×784`, `✗ declared 128×784, file 256×784`, or the file's shape alone when the arguments are not known. */
export function shapeCheckText(check: ShapeCheck): string {
  const file = formatDims(check.file);
  const subject = check.parameter === 'weight' ? '' : `${check.parameter} `;
  switch (check.status) {
    case 'match':
      return `✓ ${subject}${file}`;
    case 'mismatch':
      return `✗ ${subject}declared ${formatDims(check.declared ?? [])}, file ${file}`;
    case 'unknown':
      return `${subject}${file}`;
  }
}

/**
 * Per-layer numbers computed by the server. Each is optional: a lens shows what is known.
 */
export interface LayerMetrics {
  /** Fraction of exact zeros in the layer's main tensor. */
  readonly sparsity?: number;
  /** Effective rank of that tensor (for matrices small enough to compute unasked). */
  readonly effectiveRank?: number;
}

const LAYER_METRICS: readonly {
  readonly key: keyof LayerMetrics;
  readonly text: (value: number) => string;
}[] = [
  { key: 'sparsity', text: (value) => `sparsity ${formatPercent(value)}` },
  { key: 'effectiveRank', text: (value) => `eff. rank ${formatStat(value, 3)}` },
];

export interface LayerLensFacts {
  readonly check: ShapeCheck | null;
  /** Parameters of every tensor of the instance. */
  readonly parameterCount: number;
}

/** `LayerLens: ✓ 256×784 · 201K params · sparsity 0.0%`. */
export function layerLensTitle(facts: LayerLensFacts, metrics: LayerMetrics = {}): string {
  const parts: string[] = [];
  if (facts.check) parts.push(shapeCheckText(facts.check));
  parts.push(`${formatCompactCount(facts.parameterCount)} params`);
  for (const metric of LAYER_METRICS) {
    const value = metrics[metric.key];
    if (value !== undefined) parts.push(metric.text(value));
  }
  return `${LENS_PREFIX}: ${parts.join(' · ')}`;
}

/**
 * `LayerLens: 8 matches in silero_vad_v5.onnx · 7 ✓ · 1 ✗`: a layer found in several places
 * (a class used more than once, or names that do not tell); each place gets its own lens.
 */
export function candidatesTitle(fileName: string, checks: readonly (ShapeCheck | null)[]): string {
  const count = (status: ShapeCheck['status']): number =>
    checks.filter((check) => check?.status === status).length;
  const parts = [`${LENS_PREFIX}: ${checks.length} matches in ${fileName}`];
  if (count('match') > 0) parts.push(`${count('match')} ✓`);
  if (count('mismatch') > 0) parts.push(`${count('mismatch')} ✗`);
  return parts.join(' · ');
}

/** A candidate's own lens: `If_0_then_branch__decoder.rnn ✓ 512×128`. */
export function candidateTitle(instance: LayerInstance, check: ShapeCheck | null): string {
  return check ? `${instance.modulePath} ${shapeCheckText(check)}` : instance.modulePath;
}

/** Layers of a model for its lens: the distinct nodes (ONNX) or name prefixes (safetensors) holding floating-point weights. */
export function countLayers(
  tensors: readonly TensorInfo[],
  isFloat: (tensor: TensorInfo) => boolean,
): number {
  return new Set(tensors.filter(isFloat).map((tensor) => tensor.node)).size;
}

/** `LayerLens: 1.2M params · 4.6 MB · 24 layers · Open`. */
export function modelLensTitle(summary: ModelSummary, layerCount: number): string {
  return `${LENS_PREFIX}: ${formatCompactCount(summary.parameterCount)} params · ${formatBytes(summary.totalBytes)} · ${formatCount(layerCount)} layers · Open`;
}

export const NOT_WRITTEN_TITLE = `${LENS_PREFIX}: not written yet`;

export function notFoundTitle(what: string): string {
  return `${LENS_PREFIX}: ${what}`;
}

export function modelProblemTitle(fileName: string, problem: string): string {
  return `${LENS_PREFIX}: ${fileName}: ${problem}`;
}

/** Markdown table rows of tensors with their statistics, for hovers. */
export function tensorTable(
  rows: readonly {
    readonly tensor: TensorInfo;
    readonly stats: TensorStats | string | undefined;
  }[],
): string {
  const lines = [
    '| tensor | shape | dtype | params | min | max | mean | std | sparsity | L2 norm |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const { tensor, stats } of rows) {
    const cells = [
      `\`${tensor.name}\``,
      formatShape(tensor.shape),
      tensor.dtype,
      formatCount(tensor.parameterCount),
    ];
    if (stats === undefined || typeof stats === 'string') {
      cells.push(stats ?? '…', '', '', '', '', '');
    } else {
      cells.push(
        formatStat(stats.min),
        formatStat(stats.max),
        formatStat(stats.mean),
        formatStat(stats.std),
        formatPercent(stats.sparsity),
        formatStat(stats.l2Norm),
      );
    }
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|');
}

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
import { GLUED_PREFIX_SEPARATOR, type ShapeCheck } from './layerMapping';

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

/** Longest lens title: several short lenses in a row rather than one that runs off screen. */
export const MAX_LENS_TITLE = 80;

/** `text` cut in the middle to at most `max` characters (`abc…xyz`); the full text goes in a tooltip. */
export function shortenMiddle(text: string, max = MAX_LENS_TITLE): string {
  if (text.length <= max) return text;
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/**
 * `LayerLens: 8 matches in silero_vad_v5.onnx · 7 ✓ · 1 ✗`: a layer found in several places
 * (a class used more than once, or names that do not tell); each place gets its own lens.
 */
export function candidatesTitle(fileName: string, checks: readonly (ShapeCheck | null)[]): string {
  const count = (status: ShapeCheck['status']): number =>
    checks.filter((check) => check?.status === status).length;
  const parts = [`${LENS_PREFIX}: ${checks.length} matches in ${shortenMiddle(fileName, 40)}`];
  if (count('match') > 0) parts.push(`${count('match')} ✓`);
  if (count('mismatch') > 0) parts.push(`${count('mismatch')} ✗`);
  return parts.join(' · ');
}

/**
 * A candidate's module path split at the prefix the script does not show:
 * `If_0_else_branch__Inline_0__encoder.0.conv` → `If_0_else_branch__Inline_0__` and `encoder.0.conv`.
 */
function splitGluedPrefix(modulePath: string): { prefix: string; path: string } {
  const firstDot = modulePath.indexOf('.');
  const firstSegment = firstDot < 0 ? modulePath : modulePath.slice(0, firstDot);
  const cut = firstSegment.lastIndexOf(GLUED_PREFIX_SEPARATOR);
  if (cut <= 0) return { prefix: '', path: modulePath };
  const end = cut + GLUED_PREFIX_SEPARATOR.length;
  return { prefix: modulePath.slice(0, end), path: modulePath.slice(end) };
}

/** `If_0_else_branch__Inline_0__` among others → `else branch`: its parts that differ, readable. */
function prefixLabel(prefix: string, others: readonly string[]): string {
  const parts = prefix.split(GLUED_PREFIX_SEPARATOR).filter(Boolean);
  const differing = parts.filter((part, i) =>
    others.some((other) => other.split(GLUED_PREFIX_SEPARATOR).filter(Boolean)[i] !== part),
  );
  return (differing.length > 0 ? differing : parts)
    .map((part) => part.replace(/^If_\d+_/, '').replaceAll('_', ' '))
    .join('/');
}

/** One candidate of an ambiguous layer, named for its lens. */
export interface CandidateName {
  /** Short: the distinguishing prefix as words, then the path without what every candidate ends with. */
  readonly short: string;
  /** The path without its prefix: candidates with the same one are twins (e.g. two branches of an If). */
  readonly twinKey: string;
}

/**
 * Short names for the candidates of one layer: `If_0_else_branch__Inline_0__encoder.0.conv`
 * and `If_0_then_branch__Inline_0__encoder.1.conv` → `else branch encoder.0`, `then branch encoder.1`.
 */
export function candidateNames(modulePaths: readonly string[]): CandidateName[] {
  const split = modulePaths.map(splitGluedPrefix);
  const prefixes = [...new Set(split.map((part) => part.prefix))];
  // Trailing segments every candidate shares (the layer's own attribute, named on the line).
  const segments = split.map((part) => part.path.split('.'));
  let shared = 0;
  const shortest = Math.min(...segments.map((s) => s.length));
  // Twins alone (the same path in each branch) keep their whole path.
  const allSame = split.every((part) => part.path === split[0]!.path);
  while (
    !allSame &&
    shared < shortest - 1 &&
    segments.every(
      (s) => s[s.length - 1 - shared] === segments[0]![segments[0]!.length - 1 - shared],
    )
  ) {
    shared++;
  }
  return split.map((part, i) => {
    const kept = segments[i]!.slice(0, segments[i]!.length - shared).join('.');
    const label =
      prefixes.length > 1 && part.prefix !== ''
        ? prefixLabel(
            part.prefix,
            prefixes.filter((p) => p !== part.prefix),
          )
        : '';
    return { short: label ? `${label} ${kept}` : kept, twinKey: part.path };
  });
}

/**
 * A candidate's own lens, at most MAX_LENS_TITLE long: `then branch decoder.rnn ✓ weight_ih 512×128`.
 * A mismatch whose twin (the same module in another branch) matches says so: the model holds
 * the layer twice with different shapes, and the script declares the twin's.
 */
export function candidateTitle(
  name: string,
  check: ShapeCheck | null,
  twin?: { readonly name: string; readonly check: ShapeCheck },
): string {
  if (!check) return shortenMiddle(name);
  if (check.status === 'mismatch' && twin?.check.status === 'match') {
    const subject = check.parameter === 'weight' ? '' : `${check.parameter} `;
    const words = (own: string, other: string): string =>
      `${own} ✗ ${subject}${formatDims(check.file)}: branches differ, ${other} ✓`;
    const full = words(name, twin.name);
    if (full.length <= MAX_LENS_TITLE) return full;
    const each = Math.max(8, Math.floor((MAX_LENS_TITLE - words('', '').length) / 2));
    return words(shortenMiddle(name, each), shortenMiddle(twin.name, each));
  }
  const text = ` ${shapeCheckText(check)}`;
  return `${shortenMiddle(name, Math.max(12, MAX_LENS_TITLE - text.length))}${text}`;
}

/** The tooltip of a candidate's lens: the full module path, its check, and the twin's. */
export function candidateTooltip(
  modulePath: string,
  check: ShapeCheck | null,
  twin?: { readonly modulePath: string; readonly check: ShapeCheck },
): string {
  const lines = [check ? `${modulePath}: ${shapeCheckText(check)}` : modulePath];
  if (check?.status === 'mismatch' && twin?.check.status === 'match') {
    lines.push(
      `The model holds this layer twice, in two branches with different shapes; ${twin.modulePath} is ${formatDims(twin.check.file)}, as the script declares.`,
    );
  }
  return lines.join('\n');
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

/**
 * The layer table's data: one row per tensor, filled in as pages and statistics arrive,
 * and the filtered, sorted order in which the table shows them.
 */
import type { TensorCompressibility, TensorDeltaStats } from '../../../src/shared/lossless';
import type { TensorInfo, TensorStats } from '../../../src/shared/model';
import type { SpectralMetrics } from '../../../src/shared/spectrum';
import type { ShortName } from '../../../src/shared/names';
import type { SortColumn, SortOrder } from '../viewState';

export interface TensorRow {
  readonly info: TensorInfo;
  stats: TensorStats | null;
  /** Why this tensor has no statistics (e.g. a string tensor). */
  statsError: string | null;
  /** Lower-cased name, node, op and dtype, for the filter. */
  readonly searchText: string;
  /** The name as the table shows it (src/shared/names.ts), once every row is in. */
  shortName?: ShortName;
  /** The node's name, shortened by the same rule among the nodes the view shows. */
  shortNode?: ShortName;
  /** Whether compression methods act on it (the Weights view); undefined until known. */
  weight?: boolean;
  /** Spectral metrics (default options), once computed. */
  spectrum?: SpectralMetrics | null;
  /** Why the tensor has no spectral metrics, or that they wait for the user (large matrices). */
  spectrumNote?: { readonly text: string; readonly state: 'pending' | 'error' | 'skipped' };
  /** Lossless compressibility (exponent entropy, packed ratio), fetched after the statistics. */
  compressibility?: TensorCompressibility | null;
  compressibilityError?: string | null;
  /** For a fine-tune delta (.llz with a base model): the difference from the base tensor. */
  delta?: TensorDeltaStats | null;
  deltaError?: string | null;
  /** Sensitivity at the level the Sensitivity tab ranks by, and its colour heat in [0, 1]. */
  sensitivity?: { readonly value: number; readonly heat: number; readonly title: string } | null;
}

export function createRow(info: TensorInfo): TensorRow {
  const searchText = [info.name, info.node, info.op ?? '', info.dtype].join('\n').toLowerCase();
  return { info, stats: null, statsError: null, searchText };
}

/** Statistics columns: a row without them yet sorts after every row that has them. */
const STAT_COLUMNS: ReadonlySet<SortColumn> = new Set([
  'sparsity',
  'std',
  'mean',
  'min',
  'max',
  'stableRank',
  'effectiveRank',
  'rank90',
  'rank99',
  'spectralNorm',
  'alpha',
  'mpSoftRank',
  'mpSpikes',
]);
/** Lossless columns, filled in after the statistics. */
const COMPRESSIBILITY_COLUMNS: ReadonlySet<SortColumn> = new Set([
  'expEntropy',
  'packRatio',
  'deltaRel',
  'sameBits',
  'sensitivity',
]);

export function isStatColumn(column: SortColumn): boolean {
  return STAT_COLUMNS.has(column) || COMPRESSIBILITY_COLUMNS.has(column);
}

type SortValue = string | number | null;

function sortValue(row: TensorRow, column: SortColumn): SortValue {
  const { info, stats } = row;
  switch (column) {
    case 'name':
      return info.name;
    case 'node':
      return info.node;
    case 'op':
      return info.op;
    case 'shape':
    case 'params':
      return info.parameterCount;
    case 'dtype':
      return info.dtype;
    case 'bytes':
      return info.byteLength;
    case 'sparsity':
      return stats ? stats.sparsity : null;
    case 'std':
      return stats?.std ?? null;
    case 'mean':
      return stats?.mean ?? null;
    case 'min':
      return stats?.min ?? null;
    case 'max':
      return stats?.max ?? null;
    case 'stableRank':
    case 'effectiveRank':
    case 'rank90':
    case 'rank99':
    case 'spectralNorm':
    case 'alpha':
    case 'mpSoftRank':
    case 'mpSpikes':
      return row.spectrum?.[column] ?? null;
    case 'expEntropy':
      return row.compressibility?.exponentEntropyBits ?? null;
    case 'packRatio':
      return row.compressibility?.ratio ?? null;
    case 'deltaRel':
      return row.delta?.relativeDelta ?? null;
    case 'sameBits':
      return row.delta?.identicalFraction ?? null;
    case 'sensitivity':
      return row.sensitivity?.value ?? null;
  }
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * Compare two rows for a column. Missing values go last in both directions, and ties keep
 * the file's order, so the table never shuffles rows that compare equal.
 */
function compareRows(a: TensorRow, b: TensorRow, order: SortOrder): number {
  const left = sortValue(a, order.column);
  const right = sortValue(b, order.column);
  if (left === null || right === null) {
    if (left === right) return a.info.index - b.info.index;
    return left === null ? 1 : -1;
  }
  const sign = order.direction === 'ascending' ? 1 : -1;
  const compared =
    typeof left === 'number' && typeof right === 'number'
      ? left - right
      : collator.compare(String(left), String(right));
  return compared !== 0 ? sign * compared : a.info.index - b.info.index;
}

/**
 * Tensor indices of the rows that match `filter`, in `order` (file order when null); with
 * `weightsOnly`, without the rows known not to be weights.
 */
export function visibleOrder(
  rows: readonly (TensorRow | undefined)[],
  filter: string,
  order: SortOrder | null,
  weightsOnly = false,
): number[] {
  const needle = filter.trim().toLowerCase();
  const matching: TensorRow[] = [];
  for (const row of rows) {
    if (!row || (weightsOnly && row.weight === false)) continue;
    if (needle === '' || row.searchText.includes(needle)) matching.push(row);
  }
  if (order) matching.sort((a, b) => compareRows(a, b, order));
  return matching.map((row) => row.info.index);
}

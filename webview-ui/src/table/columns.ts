/** The layer table's columns: header, alignment, first sort direction and cell text. */
import {
  formatBytes,
  formatCount,
  formatPercent,
  formatShape,
  formatStat,
  MISSING,
} from '../../../src/shared/format';
import type { CellContent, Column } from './columnTypes';
import { SPECTRAL_COLUMNS } from './spectralColumns';
import type { TensorRow } from './tensorRows';
import type { SortColumn } from '../viewState';

/** Part of this module's interface: the layer table imports them from here. */
export type { CellContent, Column };

/** Significant digits of statistics in the table; the detail panel shows more. */
const TABLE_DIGITS = 3;

function statCell(
  row: TensorRow,
  value: (stats: NonNullable<TensorRow['stats']>) => string,
): CellContent {
  if (row.stats) return { text: value(row.stats) };
  if (row.statsError !== null) return { text: MISSING, title: row.statsError, state: 'error' };
  return { text: '…', title: 'Computing statistics…', state: 'pending' };
}

function compressibilityCell(
  row: TensorRow,
  value: (result: NonNullable<TensorRow['compressibility']>) => string,
): CellContent {
  const result = row.compressibility;
  if (result) {
    const bound =
      result.boundRatio === null
        ? ''
        : `; bound ${result.boundRatio.toFixed(3)} at the exponent's entropy`;
    return {
      text: value(result),
      title: `${formatBytes(result.rawBytes)} → ${formatBytes(result.packedBytes)}${bound}`,
    };
  }
  if (row.compressibilityError) {
    return { text: MISSING, title: row.compressibilityError, state: 'error' };
  }
  // Not marked pending: these fill in after the statistics, once the panel is ready.
  return { text: '…', title: 'Measuring compressibility…' };
}

function deltaCell(
  row: TensorRow,
  value: (delta: NonNullable<TensorRow['delta']>) => string,
): CellContent {
  if (row.delta) {
    return { text: value(row.delta), title: `‖Δ‖_F = ${formatStat(row.delta.deltaNorm)}` };
  }
  if (row.deltaError) return { text: MISSING, title: row.deltaError, state: 'error' };
  return { text: '…', title: 'Comparing with the base model…' };
}

/** The element type, or the scheme of quantized weights with its details in the tooltip. */
function dtypeCell(info: TensorRow['info']): CellContent {
  const encoding = info.encoding;
  if (!encoding) return { text: info.dtype, title: info.dtype };
  const block = encoding.blockSize === undefined ? '' : ` of ${encoding.blockSize}`;
  const symmetry =
    encoding.symmetric === undefined ? '' : encoding.symmetric ? ', symmetric' : ', asymmetric';
  const decoded = encoding.notDecoded ?? `values shown decoded to ${info.dtype}`;
  return {
    text: encoding.scheme,
    title: `${encoding.scheme}: ${encoding.bitsPerWeight.toFixed(2)} bits per weight, per ${encoding.granularity}${block}${symmetry}; ${decoded}`,
  };
}

function textColumn(
  id: SortColumn,
  label: string,
  description: string,
  text: (row: TensorRow) => string,
): Column {
  return {
    id,
    label,
    description,
    numeric: false,
    firstDirection: 'ascending',
    width: 100,
    cell: (row) => {
      const value = text(row);
      return { text: value, title: value };
    },
  };
}

function numberColumn(
  id: SortColumn,
  label: string,
  description: string,
  cell: (row: TensorRow) => CellContent,
): Column {
  return { id, label, description, numeric: true, firstDirection: 'descending', width: 72, cell };
}

/** The width a column takes: the user's (`widths`), else its own least width. */
export function columnWidth(
  column: Column,
  widths: Readonly<Partial<Record<SortColumn, number>>>,
): number {
  return widths[column.id] ?? column.width;
}

/**
 * The CSS grid tracks of these columns (one per column, in order). A column the user sized
 * keeps that width; the others keep theirs, growing ones sharing the spare width.
 */
export function gridTracks(
  columns: readonly Column[],
  widths: Readonly<Partial<Record<SortColumn, number>>> = {},
): string {
  return columns
    .map((column) => {
      const sized = widths[column.id];
      if (sized !== undefined) return `${sized}px`;
      return column.grow === undefined
        ? `${column.width}px`
        : `minmax(${column.width}px, ${column.grow}fr)`;
    })
    .join(' ');
}

/** Sensitivity at the level the Sensitivity tab ranks by, coloured by its rank among layers. */
const sensitivityColumn: Column = numberColumn(
  'sensitivity',
  'Sens.',
  'Sensitivity at the level chosen in the Sensitivity tab: measured output deviation, or the data-free proxy (weight error)',
  (row) =>
    row.sensitivity
      ? {
          text: formatStat(row.sensitivity.value, TABLE_DIGITS),
          title: row.sensitivity.title,
          heat: row.sensitivity.heat,
        }
      : { text: MISSING, title: 'Not swept (no compression method applies, or not at this level)' },
);

export const COLUMNS: readonly Column[] = [
  {
    ...textColumn(
      'name',
      'Name',
      'Tensor name (the prefix all names share shows above the table)',
      (row) => row.info.name,
    ),
    // The short name (src/shared/names.ts): its lead stays whole, the rest is cut at its
    // start; the tooltip has the full name.
    cell: (row) =>
      row.shortName
        ? { lead: row.shortName.lead, text: row.shortName.rest, title: row.info.name }
        : { text: row.info.name, title: row.info.name },
    truncateStart: true,
    width: 300,
    grow: 2,
  },
  {
    ...textColumn(
      'node',
      'Node',
      'Layer (graph node) that uses the tensor',
      (row) => row.info.node,
    ),
    cell: (row) =>
      row.shortNode
        ? { lead: row.shortNode.lead, text: row.shortNode.rest, title: row.info.node }
        : { text: row.info.node, title: row.info.node },
    truncateStart: true,
    width: 190,
    grow: 1.3,
  },
  {
    ...textColumn('op', 'Op', 'Operator type of the node', (row) => row.info.op ?? MISSING),
    width: 80,
  },
  {
    ...textColumn('shape', 'Shape', 'Dimensions (sorted by element count)', (row) =>
      formatShape(row.info.shape),
    ),
    cell: (row) => {
      const text = formatShape(row.info.shape);
      const stored = row.info.fileShape;
      return { text, title: stored ? `${text}; stored as ne ${formatShape(stored)}` : text };
    },
    firstDirection: 'descending',
  },
  {
    id: 'dtype',
    label: 'DType',
    description: 'Element type, or the quantization scheme of quantized weights',
    numeric: false,
    firstDirection: 'ascending',
    width: 70,
    cell: (row) => dtypeCell(row.info),
  },
  {
    ...numberColumn('params', 'Params', 'Number of elements', (row) => ({
      text: formatCount(row.info.parameterCount),
    })),
    width: 80,
  },
  numberColumn('bytes', 'Bytes', 'Stored size', (row) => ({
    text: formatBytes(row.info.byteLength),
    title: `${formatCount(row.info.byteLength)} bytes`,
  })),
  {
    ...numberColumn('sparsity', 'Sparsity', 'Fraction of exact zeros', (row) =>
      statCell(row, (stats) => formatPercent(stats.sparsity)),
    ),
    width: 84,
  },
  numberColumn('std', 'Std', 'Standard deviation of the finite values', (row) =>
    statCell(row, (stats) => formatStat(stats.std, TABLE_DIGITS)),
  ),
  numberColumn('mean', 'Mean', 'Mean of the finite values', (row) =>
    statCell(row, (stats) => formatStat(stats.mean, TABLE_DIGITS)),
  ),
  numberColumn('min', 'Min', 'Smallest finite value', (row) =>
    statCell(row, (stats) => formatStat(stats.min, TABLE_DIGITS)),
  ),
  numberColumn('max', 'Max', 'Largest finite value', (row) =>
    statCell(row, (stats) => formatStat(stats.max, TABLE_DIGITS)),
  ),
  ...SPECTRAL_COLUMNS,
  {
    ...numberColumn(
      'expEntropy',
      'Exp. H',
      'Entropy of the exponent byte stream, bits per value: the bound of lossless packing',
      (row) =>
        compressibilityCell(row, (result) =>
          result.exponentEntropyBits === null ? MISSING : result.exponentEntropyBits.toFixed(2),
        ),
    ),
    width: 64,
  },
  numberColumn(
    'packRatio',
    'Packed',
    'Packed size / stored size with lossless packing (.llz; for a fine-tune delta, of its XOR with the base); the tooltip shows the entropy bound',
    (row) => compressibilityCell(row, (result) => result.ratio.toFixed(3)),
  ),
  numberColumn(
    'deltaRel',
    'Δ/W',
    'Fine-tune delta: ‖W − W_base‖_F / ‖W_base‖_F (the tooltip shows ‖Δ‖_F)',
    (row) => deltaCell(row, (delta) => formatStat(delta.relativeDelta, TABLE_DIGITS)),
  ),
  numberColumn(
    'sameBits',
    'Same',
    'Fine-tune delta: fraction of weights bit-identical to the base model',
    (row) => deltaCell(row, (delta) => formatPercent(delta.identicalFraction)),
  ),
  sensitivityColumn,
];

/** The layer table's spectral-metric columns, filled as spectra arrive (see SpectraLoader). */
import { formatCount, formatStat, MISSING } from '../../../src/shared/format';
import type { SpectralMetrics } from '../../../src/shared/spectrum';
import type { CellContent, Column } from './columnTypes';
import type { TensorRow } from './tensorRows';

type MetricColumn = Extract<Column['id'], keyof SpectralMetrics>;

function spectralCell(row: TensorRow, metric: MetricColumn, integer: boolean): CellContent {
  const metrics = row.spectrum;
  if (metrics) {
    const value = metrics[metric];
    if (value === null)
      return { text: MISSING, title: 'Not defined for this spectrum (too few values)' };
    return { text: integer ? formatCount(value) : formatStat(value, 3) };
  }
  const note = row.spectrumNote;
  if (!note) return { text: '' };
  // Not marked pending: that state means statistics still to come, and spectra come later.
  if (note.state === 'pending') return { text: '…', title: note.text };
  return { text: MISSING, title: note.text, state: note.state === 'error' ? 'error' : undefined };
}

function metricColumn(
  id: MetricColumn,
  label: string,
  description: string,
  integer = false,
): Column {
  return {
    id,
    label,
    description,
    numeric: true,
    firstDirection: 'descending',
    width: 72,
    cell: (row) => spectralCell(row, id, integer),
  };
}

export const SPECTRAL_COLUMNS: readonly Column[] = [
  metricColumn('stableRank', 'Stable r', 'Stable rank ‖W‖²_F / σ₁²'),
  metricColumn(
    'effectiveRank',
    'Eff. rank',
    'Effective rank (Roy & Vetterli): exp of the entropy of σ / Σσ',
  ),
  metricColumn('rank90', 'r90', 'Smallest rank keeping 90% of the energy Σσ²', true),
  metricColumn('rank99', 'r99', 'Smallest rank keeping 99% of the energy Σσ²', true),
  metricColumn('spectralNorm', 'σ₁', 'Spectral norm: the largest singular value'),
  metricColumn(
    'alpha',
    'α',
    'Power-law exponent of the eigenvalue tail (maximum likelihood, xmin by KS distance)',
  ),
  metricColumn('mpSoftRank', 'MP soft r', 'Marchenko–Pastur soft rank λ⁺ / λmax'),
  metricColumn('mpSpikes', 'Spikes', 'Eigenvalues above the Marchenko–Pastur bulk edge', true),
];

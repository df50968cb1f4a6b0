/**
 * What a layer-table column is, shared by the table's columns (columns.ts) and its
 * spectral-metric columns (spectralColumns.ts), which columns.ts lists among them.
 */
import type { TensorRow } from './tensorRows';
import type { SortColumn, SortDirection } from '../viewState';

export interface CellContent {
  readonly text: string;
  /** Start-truncated columns: text before `text` that is never cut (a short name's lead). */
  readonly lead?: string;
  /** Tooltip: the full text of a cut-off cell, or why a value is missing. */
  readonly title?: string;
  readonly state?: 'pending' | 'error';
  /** Colour strength in [0, 1] (the sensitivity column). */
  readonly heat?: number;
}

export interface Column {
  readonly id: SortColumn;
  readonly label: string;
  readonly description: string;
  readonly numeric: boolean;
  /** Sizes and statistics are most interesting largest first; names A to Z. */
  readonly firstDirection: SortDirection;
  /** Cut long text at its start rather than its end (names whose ends tell them apart). */
  readonly truncateStart?: boolean;
  /** Width in CSS pixels; with `grow`, the least width of a column that takes a share of the rest. */
  readonly width: number;
  /** Share of the table's spare width (a CSS `fr`); fixed width without it. */
  readonly grow?: number;
  cell(row: TensorRow): CellContent;
}

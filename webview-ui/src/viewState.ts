/** What the panel remembers across reloads and tab switches (`setState`/`getState`). */

/** The layer table's columns, in display order. */
export const SORT_COLUMNS = [
  'name',
  'node',
  'op',
  'shape',
  'dtype',
  'params',
  'bytes',
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
  'expEntropy',
  'packRatio',
  'deltaRel',
  'sameBits',
  'sensitivity',
] as const;

export type SortColumn = (typeof SORT_COLUMNS)[number];

export type SortDirection = 'ascending' | 'descending';

export interface SortOrder {
  readonly column: SortColumn;
  readonly direction: SortDirection;
}

export type HistogramScale = 'linear' | 'log';

/** The selected tensor's tabs. */
export type DetailTab = 'histogram' | 'spectrum' | 'heatmap' | 'sensitivity';

/** The table's views: the tensors compression methods act on, or every tensor. */
export type TensorView = 'weights' | 'all';

/** Least and largest width of a column or of the detail panel the user drags, CSS pixels. */
export const MIN_COLUMN_WIDTH = 40;
export const MAX_COLUMN_WIDTH = 1200;
export const MIN_DETAIL_WIDTH = 260;
export const MAX_DETAIL_WIDTH = 1400;

export interface ViewState {
  readonly selectedIndex: number | null;
  /** null: the file's own tensor order. */
  readonly sort: SortOrder | null;
  readonly filter: string;
  readonly scrollTop: number;
  readonly histogramScale: HistogramScale;
  /** Whether the overview's details (dtypes, operators, inputs/outputs, metadata) are expanded. */
  readonly detailsOpen: boolean;
  readonly detailTab: DetailTab;
  /** Widths the user dragged columns to (the others keep their own). */
  readonly columnWidths: Readonly<Partial<Record<SortColumn, number>>>;
  /** Columns the user hid. */
  readonly hiddenColumns: readonly SortColumn[];
  readonly tensorView: TensorView;
  readonly groupByModule: boolean;
  /** Modules whose group is collapsed. */
  readonly collapsedGroups: readonly string[];
  /** Width the user dragged the detail panel to (null: its default). */
  readonly detailWidth: number | null;
  /** Whether the reports area (compression report, plan) is expanded. */
  readonly reportsOpen: boolean;
  /** The model view on screen: the table, the graph or the module tree. */
  readonly modelView: ModelView;
}

export type ModelView = 'table' | 'graph' | 'modules';

const DEFAULT_VIEW_STATE: ViewState = {
  selectedIndex: null,
  sort: null,
  filter: '',
  scrollTop: 0,
  histogramScale: 'linear',
  detailsOpen: false,
  detailTab: 'histogram',
  columnWidths: {},
  hiddenColumns: [],
  tensorView: 'weights',
  groupByModule: false,
  collapsedGroups: [],
  detailWidth: null,
  reportsOpen: true,
  modelView: 'table',
};

/** Where the state is kept: VS Code's webview API (`getState`/`setState`). */
export interface StateStorage {
  getState(): unknown;
  setState(state: ViewState): void;
}

/** Holds the state and writes every change through to VS Code. */
export class ViewStateStore {
  private current: ViewState;

  constructor(private readonly storage: StateStorage) {
    this.current = { ...DEFAULT_VIEW_STATE, ...sanitize(storage.getState()) };
  }

  get state(): ViewState {
    return this.current;
  }

  update(change: Partial<ViewState>): void {
    this.current = { ...this.current, ...change };
    this.storage.setState(this.current);
  }
}

/** State saved by an older version of the webview may miss fields or hold other shapes. */
function sanitize(saved: unknown): Partial<ViewState> {
  if (typeof saved !== 'object' || saved === null) return {};
  const record = saved as Record<string, unknown>;
  const { selectedIndex, sort, filter, scrollTop, histogramScale, detailsOpen, detailTab } = record;
  const { modelView } = record;
  const result: { -readonly [K in keyof ViewState]?: ViewState[K] } = {};
  if (typeof selectedIndex === 'number' && Number.isInteger(selectedIndex))
    result.selectedIndex = selectedIndex;
  if (isSortOrder(sort)) result.sort = sort;
  if (typeof filter === 'string') result.filter = filter;
  if (typeof scrollTop === 'number' && scrollTop >= 0) result.scrollTop = scrollTop;
  if (histogramScale === 'log' || histogramScale === 'linear')
    result.histogramScale = histogramScale;
  if (typeof detailsOpen === 'boolean') result.detailsOpen = detailsOpen;
  if (
    detailTab === 'histogram' ||
    detailTab === 'spectrum' ||
    detailTab === 'heatmap' ||
    detailTab === 'sensitivity'
  )
    result.detailTab = detailTab;
  if (modelView === 'table' || modelView === 'graph' || modelView === 'modules')
    result.modelView = modelView;
  Object.assign(result, sanitizeLayout(record));
  return result;
}

function isColumn(value: unknown): value is SortColumn {
  return (SORT_COLUMNS as readonly unknown[]).includes(value);
}

function isWidth(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
}

/** The table's and the split's layout fields of a saved state. */
function sanitizeLayout(saved: Record<string, unknown>): Partial<ViewState> {
  const { columnWidths, hiddenColumns, tensorView, groupByModule, collapsedGroups } = saved;
  const { detailWidth, reportsOpen } = saved;
  const result: { -readonly [K in keyof ViewState]?: ViewState[K] } = {};
  if (typeof columnWidths === 'object' && columnWidths !== null) {
    result.columnWidths = Object.fromEntries(
      Object.entries(columnWidths).filter(
        ([column, width]) => isColumn(column) && isWidth(width, MIN_COLUMN_WIDTH, MAX_COLUMN_WIDTH),
      ),
    );
  }
  if (Array.isArray(hiddenColumns))
    result.hiddenColumns = hiddenColumns.filter((c) => isColumn(c) && c !== 'name');
  if (tensorView === 'weights' || tensorView === 'all') result.tensorView = tensorView;
  if (typeof groupByModule === 'boolean') result.groupByModule = groupByModule;
  if (Array.isArray(collapsedGroups))
    result.collapsedGroups = collapsedGroups.filter((g): g is string => typeof g === 'string');
  if (isWidth(detailWidth, MIN_DETAIL_WIDTH, MAX_DETAIL_WIDTH)) result.detailWidth = detailWidth;
  if (typeof reportsOpen === 'boolean') result.reportsOpen = reportsOpen;
  return result;
}

function isSortOrder(value: unknown): value is SortOrder {
  if (typeof value !== 'object' || value === null) return false;
  const { column, direction } = value as Record<string, unknown>;
  return isColumn(column) && (direction === 'ascending' || direction === 'descending');
}

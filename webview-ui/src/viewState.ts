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
  const {
    selectedIndex,
    sort,
    filter,
    scrollTop,
    histogramScale,
    detailsOpen,
    detailTab,
    modelView,
  } = saved as Record<string, unknown>;
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
  return result;
}

function isSortOrder(value: unknown): value is SortOrder {
  if (typeof value !== 'object' || value === null) return false;
  const { column, direction } = value as Record<string, unknown>;
  return (
    (SORT_COLUMNS as readonly unknown[]).includes(column) &&
    (direction === 'ascending' || direction === 'descending')
  );
}

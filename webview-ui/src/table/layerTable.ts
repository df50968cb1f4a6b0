/**
 * The layer table: one row per tensor, sortable by any column, filterable, and driven
 * from the keyboard. Its body is virtualized (see VirtualRows). Views: the weights alone
 * (tensors compression methods act on) or every tensor, optionally grouped by module;
 * columns can be resized and hidden. Names are shortened by one rule (src/shared/names.ts),
 * the prefix they all share shown once above the grid.
 */
import { columnWidth, COLUMNS, gridTracks, type Column } from './columns';
import { element } from '../platform/dom';
import { formatCount } from '../../../src/shared/format';
import { moduleOf, shortenNames } from '../../../src/shared/names';
import { groupByModule, type DisplayItem } from './moduleGroups';
import { isStatColumn, visibleOrder, type TensorRow } from './tensorRows';
import {
  MAX_COLUMN_WIDTH,
  MIN_COLUMN_WIDTH,
  type SortColumn,
  type SortOrder,
  type TensorView,
  type ViewState,
} from '../viewState';
import { cellClass, rowId, VirtualRows } from './virtualRows';

/** What of the view state the table owns and restores. */
export type TableLayout = Pick<
  ViewState,
  'columnWidths' | 'hiddenColumns' | 'tensorView' | 'groupByModule' | 'collapsedGroups'
>;

/** While statistics stream in, re-sorting by a statistics column waits this long between passes. */
const RESORT_INTERVAL_MS = 300;
/** Scroll position is saved once scrolling pauses this long. */
const SCROLL_SAVE_DELAY_MS = 200;
/** Room for the grid's border and the cells' rounding beyond the sum of column widths. */
const GRID_SLACK_PX = 4;

export interface LayerTableEvents {
  /** The user selected a row (null: selection cleared). */
  select(index: number | null): void;
  sortChanged(order: SortOrder | null): void;
  filterChanged(filter: string): void;
  scrolled(scrollTop: number): void;
  /** Enter on a row: the user wants to see its details. */
  activate(index: number): void;
  /** The set of selected rows changed (ctrl/cmd-click, shift-click, or a plain selection). */
  selectionChanged?(indices: readonly number[]): void;
  /** The user resized or hid a column, switched views or grouping, or folded a group. */
  layoutChanged?(change: Partial<TableLayout>): void;
}

export class LayerTable {
  readonly element: HTMLElement;
  /** Space next to the filter box for status widgets (the progress bar). */
  readonly toolbar: HTMLElement;

  private readonly grid: HTMLDivElement;
  private readonly header: HTMLDivElement;
  private readonly body: VirtualRows;
  private readonly emptyMessage: HTMLDivElement;
  private readonly countLabel: HTMLSpanElement;
  private readonly filterInput: HTMLInputElement;
  private readonly headerCells = new Map<SortColumn, HTMLDivElement>();
  /** Columns this model does not have (Op for safetensors, the delta columns but for deltas). */
  private readonly hiddenColumns = new Set<SortColumn>();
  /** Columns the user hid, and widths the user dragged columns to. */
  private userHidden = new Set<SortColumn>();
  private widths: Partial<Record<SortColumn, number>> = {};
  private view: TensorView = 'weights';
  private grouped = false;
  /** Set from the model's summary: the row menu's Reveal in Graph is offered. */
  private modelHasGraph = false;
  private collapsed = new Set<string>();
  /** Whether the weights are known (until then the Weights view shows every tensor). */
  private weightsKnown = false;
  private weightIndices = new Set<number>();
  /** Tensors that pass the view and the filter (collapsed groups' ones included). */
  private matchCount = 0;
  /** The body's rows: tensors, and group headers when grouped. */
  private items: DisplayItem[] = [];
  private readonly prefixLabel: HTMLDivElement;
  private readonly viewButtons = new Map<TensorView, HTMLButtonElement>();
  private readonly groupToggle: HTMLInputElement;
  private readonly columnChecks = new Map<SortColumn, HTMLInputElement>();

  private rows: (TensorRow | undefined)[] = [];
  private expectedTotal = 0;
  private loadedCount = 0;
  /** Tensor indices in display order, and each index's position in it. */
  private order: number[] = [];
  private positionOfIndex = new Map<number, number>();
  private sort: SortOrder | null = null;
  private filter = '';
  private selectedIndex: number | null = null;
  /** All selected tensors; holds `selectedIndex` whenever that is set. */
  private selection = new Set<number>();
  /** Where a shift-click range starts. */
  private anchorIndex: number | null = null;

  private lastResort = 0;
  private resortTimer: number | undefined;
  private scrollSaveTimer: number | undefined;

  constructor(private readonly events: LayerTableEvents) {
    this.filterInput = element('input', {
      className: 'll-filter',
      attrs: {
        type: 'search',
        placeholder: 'Filter by name, node, op or dtype',
        'aria-label': 'Filter tensors by name, node, op or dtype',
        'data-testid': 'filter',
        spellcheck: 'false',
      },
    });
    this.filterInput.addEventListener('input', () => this.setFilter(this.filterInput.value, true));

    this.countLabel = element('span', {
      className: 'll-table-count',
      attrs: { 'aria-live': 'polite', 'data-testid': 'table-count' },
    });
    const viewSwitch = element('div', {
      className: 'll-segmented',
      attrs: { role: 'group', 'aria-label': 'Tensors shown', 'data-testid': 'tensor-view' },
    });
    for (const [view, label, title] of [
      ['weights', 'Weights', 'The tensors compression methods act on'],
      ['all', 'All tensors', 'Every tensor: shapes, scales, biases and constants too'],
    ] as const) {
      const button = element('button', {
        className: 'll-segment',
        text: label,
        attrs: { type: 'button', title, 'data-view': view, 'aria-pressed': 'false' },
      });
      button.addEventListener('click', () => this.setView(view, true));
      this.viewButtons.set(view, button);
      viewSwitch.append(button);
    }
    this.groupToggle = element('input', {
      attrs: { type: 'checkbox', 'data-testid': 'group-by-module' },
    });
    this.groupToggle.addEventListener('change', () => {
      this.grouped = this.groupToggle.checked;
      this.body.scrollTop = 0;
      this.recomputeOrder();
      this.events.layoutChanged?.({ groupByModule: this.grouped });
    });
    const groupLabel = element(
      'label',
      { className: 'll-check', attrs: { title: 'Group the tensors by their module (name scope)' } },
      [this.groupToggle, 'Group by module'],
    );
    this.toolbar = element('div', { className: 'll-table-toolbar' }, [
      this.filterInput,
      viewSwitch,
      groupLabel,
      this.columnsMenu(),
      this.countLabel,
    ]);
    this.prefixLabel = element('div', {
      className: 'll-name-prefix',
      attrs: { 'data-testid': 'name-prefix', hidden: '' },
    });

    this.header = element('div', {
      className: 'll-grid-header ll-columns',
      attrs: { role: 'row', 'aria-rowindex': 1 },
    });
    for (const column of COLUMNS) this.header.append(this.headerCell(column));

    this.emptyMessage = element('div', { className: 'll-grid-empty', attrs: { hidden: '' } });
    const content = element('div', { className: 'll-grid-content' }, [
      element('div', { attrs: { role: 'rowgroup' }, className: 'll-grid-header-group' }, [
        this.header,
      ]),
    ]);
    this.grid = element(
      'div',
      {
        className: 'll-grid',
        attrs: {
          role: 'grid',
          tabindex: 0,
          'aria-label': 'Tensors',
          'aria-readonly': 'true',
          'aria-multiselectable': 'true',
        },
      },
      [content, this.emptyMessage],
    );
    this.body = new VirtualRows(this.grid, this.header);
    this.showDeltaColumns(false);
    this.showSensitivityColumn(false);
    content.append(this.body.body);
    this.grid.addEventListener('scroll', () => this.onScroll());
    this.grid.addEventListener('keydown', (event) => this.onKeyDown(event));
    this.body.body.addEventListener('click', (event) => {
      const group = (event.target as Element).closest<HTMLElement>('[data-group]');
      if (group) this.toggleGroup(group.dataset.group ?? '');
      else this.onBodyClick(event);
    });
    this.body.body.addEventListener('contextmenu', (event) => this.onContextMenu(event));
    // Shift-click extends the row selection; it must not also select the page's text.
    this.body.body.addEventListener('mousedown', (event) => {
      if (event.shiftKey) event.preventDefault();
    });

    this.element = element(
      'div',
      { className: 'll-table-panel', attrs: { 'data-testid': 'layer-table' } },
      [this.toolbar, this.prefixLabel, this.grid],
    );
  }

  /** The Columns menu: a check box per column (the name column always shows). */
  private columnsMenu(): HTMLElement {
    const list = element('div', { className: 'll-columns-list' });
    for (const column of COLUMNS) {
      if (column.id === 'name') continue;
      const check = element('input', { attrs: { type: 'checkbox', 'data-column': column.id } });
      check.checked = true;
      check.addEventListener('change', () => {
        if (check.checked) this.userHidden.delete(column.id);
        else this.userHidden.add(column.id);
        this.applyColumns();
        this.events.layoutChanged?.({ hiddenColumns: [...this.userHidden] });
      });
      this.columnChecks.set(column.id, check);
      list.append(
        element('label', { className: 'll-check', attrs: { title: column.description } }, [
          check,
          column.label,
        ]),
      );
    }
    const reset = element('button', {
      className: 'll-button ll-button-secondary',
      text: 'Reset widths',
      attrs: { type: 'button', title: 'Give every column its own width again' },
    });
    reset.addEventListener('click', () => {
      this.widths = {};
      this.applyColumns();
      this.events.layoutChanged?.({ columnWidths: {} });
    });
    return element(
      'details',
      { className: 'll-columns-menu', attrs: { 'data-testid': 'columns-menu' } },
      [element('summary', { text: 'Columns' }), list, reset],
    );
  }

  /** Apply the saved layout (before rows arrive). */
  restoreLayout(layout: TableLayout): void {
    this.widths = { ...layout.columnWidths };
    this.userHidden = new Set(layout.hiddenColumns);
    this.grouped = layout.groupByModule;
    this.groupToggle.checked = this.grouped;
    this.collapsed = new Set(layout.collapsedGroups);
    for (const [id, check] of this.columnChecks) check.checked = !this.userHidden.has(id);
    this.setView(layout.tensorView, false);
    this.applyColumns();
  }

  /** The model's weights arrived: the Weights view shows only them from now on. */
  setWeights(indices: readonly number[]): void {
    const weights = new Set(indices);
    for (const row of this.rows) if (row) row.weight = weights.has(row.info.index);
    this.weightIndices = weights;
    this.weightsKnown = true;
    this.shortenNames();
    this.recomputeOrder();
  }

  private setView(view: TensorView, fromUser: boolean): void {
    this.view = view;
    for (const [id, button] of this.viewButtons)
      button.setAttribute('aria-pressed', String(id === view));
    if (!fromUser) return;
    this.body.scrollTop = 0;
    this.shortenNames();
    this.recomputeOrder();
    this.events.layoutChanged?.({ tensorView: view });
  }

  private toggleGroup(key: string): void {
    if (this.collapsed.has(key)) this.collapsed.delete(key);
    else this.collapsed.add(key);
    this.recomputeOrder();
    this.events.layoutChanged?.({ collapsedGroups: [...this.collapsed] });
  }

  /** Start over for a model with `total` tensors (rows arrive with `addRows`). */
  reset(total: number): void {
    this.rows = new Array<TensorRow | undefined>(total);
    this.expectedTotal = total;
    this.loadedCount = 0;
    this.recomputeOrder();
  }

  addRows(rows: readonly TensorRow[]): void {
    for (const row of rows) {
      if (this.rows[row.info.index] === undefined) this.loadedCount++;
      this.rows[row.info.index] = row;
      if (this.weightsKnown) row.weight = this.weightIndices.has(row.info.index);
    }
    this.shortenNames();
    this.recomputeOrder();
  }

  /**
   * Once every row is in, and again when the view changes: the short name of each row
   * the view shows, and the prefix they share above the grid.
   */
  private shortenNames(): void {
    if (this.loadedCount < this.expectedTotal) return;
    const weightsOnly = this.view === 'weights' && this.weightsKnown;
    const rows = this.rows.filter(
      (row): row is TensorRow => row !== undefined && !(weightsOnly && row.weight === false),
    );
    const { prefix, names } = shortenNames(rows.map((row) => row.info.name));
    const nodes = shortenNames(rows.map((row) => row.info.node)).names;
    rows.forEach((row, i) => {
      row.shortName = names[i];
      row.shortNode = nodes[i];
    });
    this.prefixLabel.hidden = prefix === '';
    this.prefixLabel.replaceChildren(
      'Every name starts with ',
      element('code', { text: prefix, attrs: { 'data-testid': 'name-prefix-text' } }),
    );
    this.body.invalidate(rows.map((row) => row.info.index));
  }

  /** Formats without a graph (safetensors) have no operators: hide that column for them. */
  showOperatorColumn(show: boolean): void {
    this.grid.classList.toggle('ll-no-ops', !show);
    this.setColumnsShown(['op'], show);
  }

  /** Fine-tune deltas (a .llz packed against a base model) have two more columns. */
  showDeltaColumns(show: boolean): void {
    this.grid.classList.toggle('ll-delta', show);
    this.setColumnsShown(['deltaRel', 'sameBits'], show);
  }

  /** The sensitivity column, once the Sensitivity tab has a result. */
  showSensitivityColumn(show: boolean): void {
    this.grid.classList.toggle('ll-sensitivity-shown', show);
    this.setColumnsShown(['sensitivity'], show);
  }

  /** Lay the grid out for the columns shown (the CSS hides the cells of the others). */
  private setColumnsShown(ids: readonly SortColumn[], show: boolean): void {
    for (const id of ids) {
      if (show) this.hiddenColumns.delete(id);
      else this.hiddenColumns.add(id);
    }
    this.applyColumns();
  }

  /** Lay the grid out for the columns shown, at their widths. */
  private applyColumns(): void {
    const hidden = new Set([...this.hiddenColumns, ...this.userHidden]);
    const shown = COLUMNS.filter((column) => !hidden.has(column.id));
    this.grid.style.setProperty('--ll-columns', gridTracks(shown, this.widths));
    const minWidth = shown.reduce((sum, column) => sum + columnWidth(column, this.widths), 0);
    this.grid.style.setProperty('--ll-grid-min-width', `${minWidth + GRID_SLACK_PX}px`);
    for (const [id, cell] of this.headerCells) cell.hidden = hidden.has(id);
    this.body.setHiddenColumns(hidden);
  }

  /** The drag handle at a header cell's right edge: resizes the column (double-click: reset). */
  private resizeHandle(column: Column, cell: HTMLElement): HTMLElement {
    const handle = element('div', {
      className: 'll-col-resizer',
      attrs: {
        'data-testid': `resize-${column.id}`,
        title: 'Drag to resize; double-click for the column’s own width',
        'aria-hidden': 'true',
      },
    });
    handle.addEventListener('pointerdown', (down) => {
      down.preventDefault();
      down.stopPropagation();
      handle.setPointerCapture(down.pointerId);
      const startX = down.clientX;
      const startWidth = cell.getBoundingClientRect().width;
      const move = (event: PointerEvent) => {
        const width = Math.round(startWidth + event.clientX - startX);
        this.widths[column.id] = Math.min(MAX_COLUMN_WIDTH, Math.max(MIN_COLUMN_WIDTH, width));
        this.applyColumns();
      };
      const up = () => {
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        handle.removeEventListener('pointercancel', up);
        this.events.layoutChanged?.({ columnWidths: { ...this.widths } });
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
      handle.addEventListener('pointercancel', up);
    });
    handle.addEventListener('click', (event) => event.stopPropagation());
    handle.addEventListener('dblclick', (event) => {
      event.stopPropagation();
      delete this.widths[column.id];
      this.applyColumns();
      this.events.layoutChanged?.({ columnWidths: { ...this.widths } });
    });
    return handle;
  }

  /** Statistics of these rows changed (the row objects were updated in place). */
  statsChanged(rows: readonly TensorRow[]): void {
    this.body.invalidate(rows.map((row) => row.info.index));
    if (this.sort && isStatColumn(this.sort.column)) this.scheduleResort();
  }

  /** Apply saved sort and filter before rows arrive. */
  restore(sort: SortOrder | null, filter: string, selectedIndex: number | null): void {
    this.sort = sort;
    this.filter = filter;
    this.filterInput.value = filter;
    this.selectedIndex = selectedIndex;
    this.anchorIndex = selectedIndex;
    this.selection = new Set(selectedIndex === null ? [] : [selectedIndex]);
    this.body.setSelected(selectedIndex);
    this.selectionUpdated();
    this.updateHeaderSortState();
    this.recomputeOrder();
  }

  restoreScroll(scrollTop: number): void {
    this.body.scrollTop = scrollTop;
    this.body.scheduleRender();
  }

  /** Select a tensor by index; scrolls it into view when `reveal` is set. */
  select(index: number | null, reveal: boolean): void {
    const previous = this.selectedIndex;
    if (index !== previous || this.selection.size > 1) {
      this.selectedIndex = index;
      this.anchorIndex = index;
      this.selection = new Set(index === null ? [] : [index]);
      this.updateActiveDescendant();
      // Drawn at once, not on the next frame: keyboard navigation never lags a frame.
      this.body.setSelected(index);
      this.selectionUpdated();
      if (index !== previous) this.events.select(index);
    }
    if (reveal && index !== null) {
      const position = this.positionOfIndex.get(index);
      if (position !== undefined) this.body.scrollIntoView(position);
    }
  }

  /** The selected tensors that the filter shows, in display order. */
  selectedIndices(): number[] {
    return this.order.filter((index) => this.selection.has(index));
  }

  /** Select a tensor and scroll to it, clearing a filter that hides it. */
  reveal(index: number): void {
    if (!this.positionOfIndex.has(index) && this.filter !== '') {
      this.filterInput.value = '';
      this.setFilter('', true);
    }
    if (!this.positionOfIndex.has(index) && this.rows[index]?.weight === false)
      this.setView('all', true);
    const name = this.rows[index]?.info.name;
    if (!this.positionOfIndex.has(index) && this.grouped && name !== undefined) {
      const key = moduleOf(name);
      if (this.collapsed.has(key)) this.toggleGroup(key);
    }
    this.select(index, true);
  }

  /** Tensor indices of the rows in view, top to bottom (for fetching their statistics first). */
  visibleIndices(): number[] {
    return this.body.visibleIndices();
  }

  private headerCell(column: Column): HTMLDivElement {
    const button = element(
      'button',
      {
        className: 'll-sort-button',
        attrs: { type: 'button', title: `${column.description}. Click to sort.` },
      },
      [
        element('span', { className: 'll-sort-label', text: column.label }),
        element('span', { className: 'll-sort-indicator', attrs: { 'aria-hidden': 'true' } }),
      ],
    );
    button.addEventListener('click', () => this.toggleSort(column));
    const cell = element('div', {
      className: cellClass(column),
      attrs: { role: 'columnheader', 'data-column': column.id },
    });
    cell.append(button, this.resizeHandle(column, cell));
    this.headerCells.set(column.id, cell);
    return cell;
  }

  private toggleSort(column: Column): void {
    const direction =
      this.sort?.column === column.id
        ? this.sort.direction === 'ascending'
          ? 'descending'
          : 'ascending'
        : column.firstDirection;
    this.sort = { column: column.id, direction };
    this.updateHeaderSortState();
    this.recomputeOrder();
    this.events.sortChanged(this.sort);
    if (this.selectedIndex !== null) this.select(this.selectedIndex, true);
  }

  private updateHeaderSortState(): void {
    for (const [id, cell] of this.headerCells) {
      if (this.sort?.column === id) cell.setAttribute('aria-sort', this.sort.direction);
      else cell.removeAttribute('aria-sort');
    }
  }

  private setFilter(filter: string, fromUser: boolean): void {
    if (filter === this.filter) return;
    this.filter = filter;
    this.body.scrollTop = 0;
    this.recomputeOrder();
    if (fromUser) this.events.filterChanged(filter);
  }

  private scheduleResort(): void {
    if (this.resortTimer !== undefined) return;
    const wait = Math.max(0, this.lastResort + RESORT_INTERVAL_MS - performance.now());
    this.resortTimer = window.setTimeout(() => {
      this.resortTimer = undefined;
      this.recomputeOrder();
    }, wait);
  }

  private recomputeOrder(): void {
    this.lastResort = performance.now();
    const weightsOnly = this.view === 'weights' && this.weightsKnown;
    const order = visibleOrder(this.rows, this.filter, this.sort, weightsOnly);
    this.matchCount = order.length;
    if (this.grouped) {
      const { items, shown } = groupByModule(order, this.rows, this.collapsed);
      this.items = items;
      this.order = shown;
    } else {
      this.items = order;
      this.order = order;
    }
    this.positionOfIndex = new Map();
    this.items.forEach((item, position) => {
      if (typeof item === 'number') this.positionOfIndex.set(item, position);
    });
    this.body.setContent(this.items, this.rows);
    this.grid.setAttribute('aria-rowcount', String(this.items.length + 1));
    this.updateCountLabel();
    this.updateEmptyMessage();
    this.updateActiveDescendant();
    if (this.selection.size > 0) this.selectionUpdated();
  }

  private updateCountLabel(): void {
    const shown = this.matchCount;
    const loading = this.loadedCount < this.expectedTotal;
    const total = formatCount(this.expectedTotal);
    const weights = this.view === 'weights' && this.weightsKnown;
    let text: string;
    if (loading) text = `${formatCount(this.loadedCount)} of ${total} tensors loaded`;
    else if (weights && this.filter.trim() !== '')
      text = `${formatCount(shown)} of ${formatCount(this.weightIndices.size)} weights (${total} tensors)`;
    else if (weights) text = `${formatCount(shown)} weights of ${total} tensors`;
    else if (this.filter.trim() !== '') text = `${formatCount(shown)} of ${total} tensors`;
    else text = `${total} tensor${this.expectedTotal === 1 ? '' : 's'}`;
    this.countLabel.textContent = text;
  }

  private updateEmptyMessage(): void {
    const allLoaded = this.loadedCount >= this.expectedTotal;
    let message: string | null = null;
    const weightsOnly = this.view === 'weights' && this.weightsKnown;
    if (this.matchCount === 0 && allLoaded) {
      const needle = this.filter.trim();
      if (this.expectedTotal === 0) message = 'This model has no weight tensors.';
      else if (needle === '')
        message =
          'No tensor here is one compression methods act on: choose All tensors to see every tensor.';
      else if (weightsOnly) {
        // The filter may match tensors the Weights view leaves out: say so.
        const elsewhere = visibleOrder(this.rows, needle, null).length;
        message =
          elsewhere === 0
            ? `No tensor matches “${needle}”.`
            : `No weight matches “${needle}”; ${formatCount(elsewhere)} tensor${elsewhere === 1 ? '' : 's'} in All tensors ${elsewhere === 1 ? 'does' : 'do'}.`;
      } else message = `No tensor matches “${needle}”.`;
    }
    this.emptyMessage.hidden = message === null;
    this.emptyMessage.textContent = message ?? '';
  }

  private updateActiveDescendant(): void {
    if (this.selectedIndex !== null && this.positionOfIndex.has(this.selectedIndex)) {
      this.grid.setAttribute('aria-activedescendant', rowId(this.selectedIndex));
    } else {
      this.grid.removeAttribute('aria-activedescendant');
    }
  }

  private onScroll(): void {
    window.clearTimeout(this.scrollSaveTimer);
    this.scrollSaveTimer = window.setTimeout(
      () => this.events.scrolled(this.body.scrollTop),
      SCROLL_SAVE_DELAY_MS,
    );
  }

  private onBodyClick(event: MouseEvent): void {
    const rowElement = (event.target as Element).closest<HTMLElement>('[data-index]');
    if (!rowElement) return;
    const index = Number(rowElement.dataset.index);
    if (event.shiftKey && this.anchorIndex !== null) this.selectRange(this.anchorIndex, index);
    else if (event.ctrlKey || event.metaKey) this.toggleSelected(index);
    else this.select(index, false);
    this.grid.focus({ preventScroll: true });
  }

  /** A right-click on a row outside the selection selects that row alone, as lists do. */
  private onContextMenu(event: MouseEvent): void {
    const rowElement = (event.target as Element).closest<HTMLElement>('[data-index]');
    if (!rowElement) return;
    const index = Number(rowElement.dataset.index);
    if (!this.selection.has(index)) this.select(index, false);
  }

  /** Ctrl/cmd-click: add the row to the selection, or take it out. */
  private toggleSelected(index: number): void {
    if (this.selection.has(index)) {
      this.selection.delete(index);
      if (this.selectedIndex === index) {
        this.selectedIndex = this.selectedIndices()[0] ?? null;
        this.events.select(this.selectedIndex);
      }
    } else {
      this.selection.add(index);
      this.selectedIndex = index;
      this.events.select(index);
    }
    this.anchorIndex = index;
    this.applySelection();
  }

  /** Shift-click: every row between the anchor and this one, in display order. */
  private selectRange(anchor: number, index: number): void {
    const from = this.positionOfIndex.get(anchor);
    const to = this.positionOfIndex.get(index);
    if (from === undefined || to === undefined) {
      this.select(index, false);
      return;
    }
    const [first, last] = from <= to ? [from, to] : [to, from];
    this.selection = new Set(this.order.slice(first, last + 1));
    if (this.selectedIndex !== index) {
      this.selectedIndex = index;
      this.events.select(index);
    }
    this.applySelection();
  }

  private applySelection(): void {
    this.updateActiveDescendant();
    this.body.setSelection(this.selectedIndex, this.selection);
    this.selectionUpdated();
  }

  /**
   * The grid carries the selection for VS Code's webview context menu: a right-click on a
   * row sends the row's own context merged with this one to the menu's command. With rows
   * selected, the grid itself is a row context too, so that the keyboard's context-menu
   * key (focus on the grid) offers the same menu for the selection.
   */
  private selectionUpdated(): void {
    const indices = this.selectedIndices();
    this.writeMenuContext(indices);
    this.events.selectionChanged?.(indices);
  }

  /** `modelHasGraph` offers the menu's Reveal in Graph (for the format's graph). */
  private writeMenuContext(indices: readonly number[]): void {
    this.grid.dataset.vscodeContext = JSON.stringify({
      ...(indices.length > 0 ? { webviewSection: 'tensorRow' } : {}),
      tensorIndices: indices,
      ...(this.modelHasGraph ? { modelHasGraph: true } : {}),
      preventDefaultContextMenuItems: true,
    });
  }

  /** Whether the model has a Graph tab: its rows' menu then offers Reveal in Graph. */
  offerGraph(hasGraph: boolean): void {
    this.modelHasGraph = hasGraph;
    this.writeMenuContext(this.selectedIndices());
  }

  private onKeyDown(event: KeyboardEvent): void {
    // Keys on the header's sort buttons keep their own meaning.
    if (event.target !== this.grid) return;
    if (this.order.length === 0) return;
    const current =
      this.selectedIndex === null ? undefined : this.positionOfIndex.get(this.selectedIndex);
    const page = Math.max(1, this.body.rowsPerPage - 1);
    const last = this.order.length - 1;
    let target: number;
    switch (event.key) {
      case 'ArrowDown':
        target = current === undefined ? 0 : current + 1;
        break;
      case 'ArrowUp':
        target = current === undefined ? 0 : current - 1;
        break;
      case 'PageDown':
        target = (current ?? 0) + page;
        break;
      case 'PageUp':
        target = (current ?? 0) - page;
        break;
      case 'Home':
        target = 0;
        break;
      case 'End':
        target = last;
        break;
      case 'Enter':
      case ' ':
        event.preventDefault();
        if (current !== undefined && this.selectedIndex !== null)
          this.events.activate(this.selectedIndex);
        else this.select(this.order[0] ?? null, true);
        return;
      case 'Escape':
        if (this.filter !== '') {
          event.preventDefault();
          this.filterInput.value = '';
          this.setFilter('', true);
        }
        return;
      default:
        return;
    }
    event.preventDefault();
    const clamped = Math.min(last, Math.max(0, target));
    this.select(this.order[clamped] ?? null, true);
  }
}

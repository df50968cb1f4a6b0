/**
 * The layer table's body, virtualized: only the rows in view (plus a margin) are in the
 * DOM, each absolutely placed at its position, so 50k tensors cost no more than 50.
 *
 * Row elements are keyed by tensor: a row that stays in view while scrolling or re-sorting
 * keeps its element and is not redrawn. The DOM order always follows the display order.
 * Layout is measured only when the viewport resizes or scrolls, never while drawing.
 */
import { COLUMNS, type Column } from './columns';
import { element } from '../platform/dom';
import { formatBytes, formatCompactCount } from '../../../src/shared/format';
import type { DisplayItem, GroupHeader } from './moduleGroups';
import type { TensorRow } from './tensorRows';
import type { SortColumn } from '../viewState';

/** Row height in CSS pixels; the stylesheet reads it from `--ll-row-height`. */
export const ROW_HEIGHT = 24;
/** Rows drawn above and below the viewport so fast scrolling shows no blank band. */
const OVERSCAN_ROWS = 10;

interface RowElement {
  readonly element: HTMLDivElement;
  readonly cells: HTMLDivElement[];
  /** Where each cell's text goes: the cell, or its inner span for start-truncated columns. */
  readonly texts: HTMLElement[];
  /** Start-truncated columns: the span before the text that is never cut (CellContent.lead). */
  readonly leads: (HTMLElement | null)[];
  /** What was drawn last, to skip work that is already done. */
  drawnRow: TensorRow | null;
  drawnPosition: number;
  drawnSelected: boolean;
}

/** A group's header row (see moduleGroups.ts). */
interface GroupElement {
  readonly element: HTMLDivElement;
  readonly label: HTMLSpanElement;
  readonly totals: HTMLSpanElement;
  drawn: GroupHeader | null;
  drawnPosition: number;
}

/** Key of a group's header among the active rows (tensor rows are keyed by index). */
function groupKey(group: GroupHeader): string {
  return `group:${group.key}`;
}

export class VirtualRows {
  readonly body: HTMLDivElement;
  private order: readonly DisplayItem[] = [];
  private rows: readonly (TensorRow | undefined)[] = [];
  private selectedIndex: number | null = null;
  /** Every selected tensor (the selected index among them); several with ctrl/shift-click. */
  private selection: ReadonlySet<number> = new Set();
  private readonly active = new Map<number, RowElement>();
  private readonly spare: RowElement[] = [];
  private readonly activeGroups = new Map<string, GroupElement>();
  private readonly spareGroups: GroupElement[] = [];
  private hidden: ReadonlySet<SortColumn> = new Set();
  private viewHeight = 0;
  private cachedScrollTop = 0;
  private frameRequested = false;

  /** `viewport` scrolls; `header` is the sticky header row inside it, above the body. */
  constructor(
    private readonly viewport: HTMLElement,
    private readonly header: HTMLElement,
  ) {
    this.body = element('div', { className: 'll-grid-body', attrs: { role: 'rowgroup' } });
    viewport.style.setProperty('--ll-row-height', `${ROW_HEIGHT}px`);
    viewport.addEventListener('scroll', () => {
      this.cachedScrollTop = viewport.scrollTop;
      this.scheduleRender();
    });
    const measure = new ResizeObserver(() => {
      this.viewHeight = Math.max(0, viewport.clientHeight - header.offsetHeight);
      this.cachedScrollTop = viewport.scrollTop;
      this.scheduleRender();
    });
    measure.observe(viewport);
    measure.observe(header);
  }

  get scrollTop(): number {
    return this.cachedScrollTop;
  }

  set scrollTop(value: number) {
    this.viewport.scrollTop = value;
    this.cachedScrollTop = this.viewport.scrollTop;
  }

  /** Rows that fit in the viewport at once (for PageUp/PageDown). */
  get rowsPerPage(): number {
    return Math.max(1, Math.floor(this.viewHeight / ROW_HEIGHT));
  }

  /** Columns not shown: their cells are hidden in every row, drawn or kept for reuse. */
  setHiddenColumns(hidden: ReadonlySet<SortColumn>): void {
    this.hidden = hidden;
    for (const row of [...this.active.values(), ...this.spare]) this.applyHidden(row);
  }

  private applyHidden(row: RowElement): void {
    COLUMNS.forEach((column, i) => {
      row.cells[i]!.hidden = this.hidden.has(column.id);
    });
  }

  /** Show `order` (tensors and group headers, top to bottom) of `rows`; draws at once. */
  setContent(order: readonly DisplayItem[], rows: readonly (TensorRow | undefined)[]): void {
    this.order = order;
    this.rows = rows;
    this.body.style.height = `${order.length * ROW_HEIGHT}px`;
    this.render();
  }

  setSelected(index: number | null): void {
    this.setSelection(index, index === null ? [] : [index]);
  }

  /** Several selected rows; `current` is the one the keyboard moves from. */
  setSelection(current: number | null, selection: Iterable<number>): void {
    this.selectedIndex = current;
    this.selection = new Set(selection);
    this.render();
  }

  /** Rows whose contents changed in place (statistics arrived): redrawn on the next frame. */
  invalidate(indices: Iterable<number>): void {
    for (const index of indices) {
      const row = this.active.get(index);
      if (row) row.drawnRow = null;
    }
    this.scheduleRender();
  }

  /**
   * Scroll the least needed to show the row at `position`. The viewport is measured here
   * (the grid may have changed size since the last resize callback, e.g. when the name
   * prefix line appeared above it).
   */
  scrollIntoView(position: number): void {
    this.viewHeight = Math.max(0, this.viewport.clientHeight - this.header.offsetHeight);
    const rowTop = position * ROW_HEIGHT;
    if (rowTop < this.cachedScrollTop) {
      this.scrollTop = rowTop;
    } else if (rowTop + ROW_HEIGHT > this.cachedScrollTop + this.viewHeight) {
      this.scrollTop = rowTop + ROW_HEIGHT - this.viewHeight;
    }
    this.render();
  }

  /** Tensor indices of the rows in view, top to bottom. */
  visibleIndices(): number[] {
    const [first, last] = this.range(0);
    return this.order.slice(first, last).filter((item) => typeof item === 'number');
  }

  scheduleRender(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.render();
    });
  }

  /** Positions [first, last) in view, widened by `overscan` rows on each side. */
  private range(overscan: number): [number, number] {
    const first = Math.max(0, Math.floor(this.cachedScrollTop / ROW_HEIGHT) - overscan);
    const last = Math.min(
      this.order.length,
      Math.ceil((this.cachedScrollTop + this.viewHeight) / ROW_HEIGHT) + overscan,
    );
    return [first, Math.max(first, last)];
  }

  private render(): void {
    const [first, last] = this.range(OVERSCAN_ROWS);
    const slice = this.order.slice(first, last);
    const wanted = new Set(slice.map((item) => (typeof item === 'number' ? item : groupKey(item))));
    for (const [index, row] of this.active) {
      if (!wanted.has(index)) {
        this.active.delete(index);
        row.element.remove();
        this.spare.push(row);
      }
    }
    for (const [key, group] of this.activeGroups) {
      if (!wanted.has(key)) {
        this.activeGroups.delete(key);
        group.element.remove();
        this.spareGroups.push(group);
      }
    }
    let next = this.body.firstChild;
    for (let position = first; position < last; position++) {
      const item = this.order[position]!;
      if (typeof item !== 'number') {
        const key = groupKey(item);
        let group = this.activeGroups.get(key);
        if (!group) {
          group = this.spareGroups.pop() ?? createGroupElement();
          this.activeGroups.set(key, group);
        }
        drawGroup(group, item, position);
        if (group.element === next) next = next.nextSibling;
        else this.body.insertBefore(group.element, next);
        continue;
      }
      const index = item;
      const row = this.rows[index];
      if (!row) continue;
      let rowElement = this.active.get(index);
      if (!rowElement) {
        rowElement = this.spare.pop();
        if (!rowElement) {
          rowElement = createRowElement();
          this.applyHidden(rowElement);
        }
        this.active.set(index, rowElement);
      }
      this.draw(rowElement, row, position);
      if (rowElement.element === next) next = next.nextSibling;
      else this.body.insertBefore(rowElement.element, next);
    }
  }

  private draw(rowElement: RowElement, row: TensorRow, position: number): void {
    const { element: rowNode } = rowElement;
    if (rowElement.drawnRow !== row) {
      const index = row.info.index;
      rowNode.id = rowId(index);
      rowNode.dataset.index = String(index);
      // Read by VS Code when the row is right-clicked: the `webview/context` menu's context.
      rowNode.dataset.vscodeContext = JSON.stringify({
        webviewSection: 'tensorRow',
        tensorIndex: index,
        tensorName: row.info.name,
        preventDefaultContextMenuItems: true,
      });
      COLUMNS.forEach((column, columnIndex) => {
        const cell = rowElement.cells[columnIndex]!;
        const content = column.cell(row);
        rowElement.texts[columnIndex]!.textContent = content.text;
        const lead = rowElement.leads[columnIndex];
        if (lead) lead.textContent = content.lead ?? '';
        if (content.title) cell.title = content.title;
        else cell.removeAttribute('title');
        cell.classList.toggle('ll-pending', content.state === 'pending');
        cell.classList.toggle('ll-stats-error', content.state === 'error');
        cell.classList.toggle('ll-heat', content.heat !== undefined);
        if (content.heat !== undefined)
          cell.style.setProperty('--ll-heat', `${Math.round(content.heat * 100)}%`);
      });
      rowElement.drawnRow = row;
    }
    if (rowElement.drawnPosition !== position) {
      rowNode.style.transform = `translateY(${position * ROW_HEIGHT}px)`;
      rowNode.setAttribute('aria-rowindex', String(position + 2));
      rowElement.drawnPosition = position;
    }
    const selected = this.selection.has(row.info.index);
    if (rowElement.drawnSelected !== selected || !rowNode.hasAttribute('aria-selected')) {
      rowNode.setAttribute('aria-selected', String(selected));
      rowElement.drawnSelected = selected;
    }
    rowNode.classList.toggle('ll-current', row.info.index === this.selectedIndex);
  }
}

function createRowElement(): RowElement {
  const texts: HTMLElement[] = [];
  const leads: (HTMLElement | null)[] = [];
  const cells = COLUMNS.map((column) => {
    const cell = element('div', { className: cellClass(column), attrs: { role: 'gridcell' } });
    if (column.truncateStart) {
      // The lead stays whole; the rest is cut at its start inside its clip.
      const lead = element('span', { className: 'll-lead' });
      const text = element('span');
      cell.append(lead, element('span', { className: 'll-clip' }, [text]));
      texts.push(text);
      leads.push(lead);
    } else {
      texts.push(cell);
      leads.push(null);
    }
    return cell;
  });
  const rowNode = element(
    'div',
    { className: 'll-row ll-columns', attrs: { role: 'row', 'data-testid': 'tensor-row' } },
    cells,
  );
  return {
    element: rowNode,
    cells,
    texts,
    leads,
    drawnRow: null,
    drawnPosition: -1,
    drawnSelected: false,
  };
}

function createGroupElement(): GroupElement {
  const label = element('span', { className: 'll-group-label' });
  const totals = element('span', { className: 'll-group-totals' });
  const cell = element('div', { className: 'll-group-cell', attrs: { role: 'gridcell' } }, [
    element('span', { className: 'll-group-twisty', attrs: { 'aria-hidden': 'true' } }),
    label,
    totals,
  ]);
  const rowNode = element(
    'div',
    { className: 'll-row ll-group-row', attrs: { role: 'row', 'data-testid': 'group-row' } },
    [cell],
  );
  return { element: rowNode, label, totals, drawn: null, drawnPosition: -1 };
}

function drawGroup(group: GroupElement, header: GroupHeader, position: number): void {
  if (group.drawn !== header) {
    group.element.dataset.group = header.key;
    group.element.setAttribute('aria-expanded', String(!header.collapsed));
    group.label.textContent = header.label;
    group.label.title = header.key;
    const tensors = `${header.count} tensor${header.count === 1 ? '' : 's'}`;
    group.totals.textContent = `${tensors} · ${formatCompactCount(header.params)} params · ${formatBytes(header.bytes)}`;
    group.drawn = header;
  }
  if (group.drawnPosition !== position) {
    group.element.style.transform = `translateY(${position * ROW_HEIGHT}px)`;
    group.element.setAttribute('aria-rowindex', String(position + 2));
    group.drawnPosition = position;
  }
}

export function cellClass(column: Column): string {
  const classes = ['ll-cell', `ll-col-${column.id}`];
  if (column.numeric) classes.push('ll-numeric');
  if (column.truncateStart) classes.push('ll-truncate-start');
  return classes.join(' ');
}

/** The DOM id of a tensor's row (for `aria-activedescendant`). */
export function rowId(index: number): string {
  return `ll-tensor-row-${index}`;
}

/**
 * The Modules tab, for every format: the tensors grouped by the dotted prefixes of their
 * names (layerlens/moduleTree) as a collapsible tree, and a treemap of bytes (d3.treemap)
 * on a canvas, coloured by the same overlays as the graph.
 */
import {
  hierarchy,
  schemeTableau10,
  treemap,
  treemapSquarify,
  type HierarchyRectangularNode,
} from 'd3';
import type { ModuleGroup, ModuleTree } from '../../../src/shared/graph';
import { formatBytes, formatCompactCount } from '../../../src/shared/format';
import { element } from '../platform/dom';
import type { TensorRow } from '../table/tensorRows';
import {
  aggregateValue,
  ColourScale,
  OVERLAYS,
  overlayNamed,
  overlayOffered,
  type OverlayMetric,
} from '../graph/overlays';

/** Children listed at once under one tree item; the rest are summarised in one line. */
const MAX_TREE_CHILDREN = 500;

export interface HierarchyViewEvents {
  selectTensors(indices: readonly number[]): void;
  row(index: number): TensorRow | undefined;
  load(signal: AbortSignal): Promise<ModuleTree>;
}

interface TreeDatum {
  readonly group: ModuleGroup;
  readonly children: TreeDatum[];
}

export class HierarchyView {
  readonly element: HTMLElement;
  private readonly tree = element('ul', {
    className: 'll-module-tree',
    attrs: { role: 'tree', 'aria-label': 'Modules', 'data-testid': 'module-tree' },
  });
  private readonly canvas = element('canvas', {
    className: 'll-treemap',
    attrs: {
      'data-testid': 'treemap',
      role: 'img',
      'aria-label': 'Treemap of the bytes per module',
    },
  });
  private readonly status = element('div', {
    className: 'll-graph-status',
    attrs: { role: 'status', 'aria-live': 'polite', 'data-testid': 'treemap-status' },
  });
  private readonly legend = element('div', { className: 'll-graph-legends' });
  private readonly overlayList = element('select', {
    className: 'll-select',
    attrs: { 'aria-label': 'Treemap colour', 'data-testid': 'treemap-overlay' },
  });
  private data: ModuleTree | undefined;
  private childrenOf = new Map<number, ModuleGroup[]>();
  private loading: Promise<void> | undefined;
  private abort = new AbortController();
  private overlay: OverlayMetric = OVERLAYS[0]!;
  private cells: HierarchyRectangularNode<TreeDatum>[] = [];
  private scale: ColourScale | undefined;
  private redrawTimer: number | undefined;

  constructor(private readonly events: HierarchyViewEvents) {
    // Overlays of graph items (a comparison's nodes) have no value for a module.
    for (const overlay of OVERLAYS.filter((o) => !o.item))
      this.overlayList.append(
        element('option', {
          text: overlay.id === 'none' ? 'Module' : overlay.label,
          attrs: { value: overlay.id },
        }),
      );
    this.overlayList.addEventListener('change', () => this.setOverlay(this.overlayList.value));
    this.canvas.addEventListener('mousemove', (event) => this.describe(this.cellAt(event)));
    this.canvas.addEventListener('click', (event) => {
      const cell = this.cellAt(event);
      if (cell?.data.group.tensor !== undefined)
        this.events.selectTensors([cell.data.group.tensor]);
    });
    this.element = element(
      'div',
      {
        className: 'll-hierarchy',
        attrs: { 'data-testid': 'hierarchy-view', 'data-state': 'idle' },
      },
      [
        element('div', { className: 'll-graph-toolbar' }, [
          element('label', { className: 'll-graph-overlay' }, ['Colour ', this.overlayList]),
          this.legend,
        ]),
        element('div', { className: 'll-hierarchy-body' }, [
          element('div', { className: 'll-module-tree-scroll' }, [this.tree]),
          element('div', { className: 'll-treemap-stage' }, [this.canvas]),
        ]),
        this.status,
      ],
    );
    new ResizeObserver(() => this.scheduleRedraw()).observe(this.canvas);
  }

  show(): Promise<void> {
    this.loading ??= this.load();
    this.scheduleRedraw();
    return this.loading;
  }

  reset(): void {
    this.abort.abort();
    this.abort = new AbortController();
    this.loading = undefined;
    this.data = undefined;
    this.tree.replaceChildren();
    this.element.dataset.state = 'idle';
  }

  rowsChanged(): void {
    for (const option of this.overlayList.options)
      option.disabled = !overlayOffered(overlayNamed(option.value));
    if (this.overlay.id !== 'none') this.scheduleRedraw();
  }

  setOverlay(id: string): void {
    this.overlay = overlayNamed(id);
    this.overlayList.value = this.overlay.id;
    this.scheduleRedraw();
  }

  private async load(): Promise<void> {
    this.element.dataset.state = 'loading';
    try {
      this.data = await this.events.load(this.abort.signal);
      this.childrenOf = new Map();
      for (const group of this.data.groups) {
        if (group.parent < 0) continue;
        const list = this.childrenOf.get(group.parent);
        if (list) list.push(group);
        else this.childrenOf.set(group.parent, [group]);
      }
      this.tree.replaceChildren(...this.treeItems(0, 1));
      this.element.dataset.state = 'ready';
      this.redraw();
    } catch (error) {
      this.element.dataset.state = 'error';
      this.status.textContent = `Cannot show the modules: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  // ---- tree -----------------------------------------------------------------------------

  private treeItems(parent: number, level: number): HTMLElement[] {
    const children = [...(this.childrenOf.get(parent) ?? [])].sort((a, b) => b.bytes - a.bytes);
    const items = children.slice(0, MAX_TREE_CHILDREN).map((group) => this.treeItem(group, level));
    if (children.length > MAX_TREE_CHILDREN)
      items.push(
        element('li', {
          className: 'll-module-more',
          text: `… ${children.length - MAX_TREE_CHILDREN} more`,
        }),
      );
    return items;
  }

  private treeItem(group: ModuleGroup, level: number): HTMLElement {
    const leaf = group.tensor !== undefined;
    const label = element(
      'button',
      {
        className: 'll-module-label',
        attrs: { type: 'button', title: group.path },
      },
      [
        element('span', { className: 'll-module-name', text: `${leaf ? '' : '▸ '}${group.label}` }),
        element('span', {
          className: 'll-module-size',
          text: `${formatBytes(group.bytes)} · ${formatCompactCount(group.params)}${leaf ? '' : ` · ${group.tensorCount} tensor${group.tensorCount === 1 ? '' : 's'}`}`,
        }),
      ],
    );
    const item = element(
      'li',
      {
        className: 'll-module-item',
        attrs: {
          role: 'treeitem',
          'aria-level': level,
          'data-path': group.path,
          ...(leaf ? {} : { 'aria-expanded': 'false' }),
        },
      },
      [label],
    );
    label.addEventListener('click', () => {
      if (leaf) {
        this.events.selectTensors([group.tensor!]);
        return;
      }
      const open = item.getAttribute('aria-expanded') !== 'true';
      item.setAttribute('aria-expanded', String(open));
      label.firstElementChild!.textContent = `${open ? '▾' : '▸'} ${group.label}`;
      item.querySelector(':scope > ul')?.remove();
      if (open)
        item.append(
          element('ul', { attrs: { role: 'group' } }, this.treeItems(group.id, level + 1)),
        );
    });
    return item;
  }

  // ---- treemap --------------------------------------------------------------------------

  private scheduleRedraw(): void {
    if (this.redrawTimer !== undefined) return;
    this.redrawTimer = window.setTimeout(() => {
      this.redrawTimer = undefined;
      this.redraw();
    }, 100);
  }

  private redraw(): void {
    const data = this.data;
    const canvas = this.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!data || width === 0 || height === 0) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const build = (group: ModuleGroup): TreeDatum => ({
      group,
      children: (this.childrenOf.get(group.id) ?? []).map(build),
    });
    const root = hierarchy(build(data.groups[0]!), (d) =>
      d.children.length ? d.children : undefined,
    )
      .sum((d) => (d.group.tensor !== undefined ? Math.max(d.group.bytes, 1) : 0))
      .sort((a, b) => (b.value ?? 0) - (a.value ?? 0));
    const laid = treemap<TreeDatum>()
      .tile(treemapSquarify)
      .size([width, height])
      .paddingTop((d) => (d.depth > 0 ? 14 : 0))
      .paddingInner(1)
      .round(true)(root);
    this.cells = laid.descendants();
    const leaves = laid.leaves();
    const values = new Map<HierarchyRectangularNode<TreeDatum>, number | null>();
    if (this.overlay.id !== 'none') {
      for (const leaf of leaves) {
        const row = this.events.row(leaf.data.group.tensor!);
        values.set(leaf, row ? aggregateValue(this.overlay, [row]) : null);
      }
      this.scale = new ColourScale(
        this.overlay,
        [...values.values()].filter((v): v is number => v !== null),
        'fill',
      );
      this.legend.replaceChildren(this.scale.legend());
    } else {
      this.scale = undefined;
      this.legend.replaceChildren();
    }
    const context = canvas.getContext('2d');
    if (!context) return;
    const style = getComputedStyle(document.body);
    const css = (name: string, fallback: string) =>
      style.getPropertyValue(`--vscode-${name}`).trim() || fallback;
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.fillStyle = css('editor-background', '#1e1e1e');
    context.fillRect(0, 0, width, height);
    const topLevel = (node: HierarchyRectangularNode<TreeDatum>) =>
      node.ancestors().find((a) => a.depth === 1) ?? node;
    const topIndex = new Map((laid.children ?? []).map((child, i) => [child, i]));
    for (const cell of this.cells) {
      if (cell.depth === 0) continue;
      const w = cell.x1 - cell.x0;
      const h = cell.y1 - cell.y0;
      if (w < 1 || h < 1) continue;
      if (cell.children) {
        context.strokeStyle = css('widget-border', '#454545');
        context.strokeRect(cell.x0 + 0.5, cell.y0 + 0.5, w - 1, h - 1);
        if (w > 40) {
          context.fillStyle = css('descriptionForeground', '#9d9d9d');
          context.font = '10px sans-serif';
          context.fillText(cell.data.group.label, cell.x0 + 3, cell.y0 + 10, w - 6);
        }
        continue;
      }
      const value = values.get(cell);
      context.fillStyle =
        this.scale && value !== null && value !== undefined
          ? this.scale.colour(value)
          : this.scale
            ? css('editorWidget-background', '#252526')
            : schemeTableau10[(topIndex.get(topLevel(cell)) ?? 0) % 10]!;
      context.fillRect(cell.x0, cell.y0, w, h);
      if (w > 50 && h > 12) {
        context.fillStyle = '#000000';
        context.font = '10px sans-serif';
        context.fillText(cell.data.group.label, cell.x0 + 3, cell.y0 + 11, w - 6);
      }
    }
    this.element.dataset.cells = String(leaves.length);
  }

  private cellAt(event: MouseEvent): HierarchyRectangularNode<TreeDatum> | undefined {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    let best: HierarchyRectangularNode<TreeDatum> | undefined;
    for (const cell of this.cells)
      if (
        x >= cell.x0 &&
        x < cell.x1 &&
        y >= cell.y0 &&
        y < cell.y1 &&
        (!best || cell.depth > best.depth)
      )
        best = cell;
    return best;
  }

  private describe(cell: HierarchyRectangularNode<TreeDatum> | undefined): void {
    if (!cell) {
      this.status.textContent = '';
      return;
    }
    const group = cell.data.group;
    const parts = [
      group.path || 'model',
      formatBytes(group.bytes),
      `${formatCompactCount(group.params)} parameters`,
    ];
    if (this.scale && group.tensor !== undefined) {
      const row = this.events.row(group.tensor);
      const value = row ? aggregateValue(this.overlay, [row]) : null;
      if (value !== null) parts.push(`${this.overlay.label} ${this.overlay.format(value)}`);
    }
    this.status.textContent = parts.join(' · ');
  }
}

/**
 * The Graph tab: the model's operator graph on a canvas (a DOM node per graph node would
 * not scale to tens of thousands), laid out group by group in a worker. Groups start
 * collapsed; the server sends the top level first and a group's contents when it is first
 * opened, and expanding one lays out its children only. Searches run on the server, so that
 * they find nodes inside groups the view has not fetched. Pan and zoom (d3-zoom), fit, a
 * minimap, search by node, operator or tensor name, keyboard navigation, and two overlays
 * (fill and border) coloured from the table's numbers.
 */
import { select, zoom, zoomIdentity, type ZoomBehavior, type ZoomTransform } from 'd3';
import {
  ROOT_GROUP,
  type GraphGroupContents,
  type GraphItemKey,
  type GraphMatches,
  type GraphOverview,
  type GraphQuery,
} from '../../../src/shared/graph';
import { element } from '../platform/dom';
import type { TensorRow } from '../table/tensorRows';
import { LayoutClient } from './layoutClient';
import type { LayoutResult } from './layoutProtocol';
import {
  aggregateValue,
  ColourScale,
  OVERLAYS,
  overlayNamed,
  overlayOffered,
  type OverlayChannel,
  type OverlayMetric,
} from './overlays';
import { groupKey, GraphViewModel, type ItemKey, type LiftedEdge } from './viewModel';

const NODE_HEIGHT = 40;
const GROUP_HEIGHT = 46;
const PAD = 14;
const HEADER = 22;
const MIN_SCALE = 0.01;
const MAX_SCALE = 4;
/** Below this zoom, labels are not drawn (they would be unreadable and slow). */
const TEXT_SCALE = 0.35;

export interface GraphViewEvents {
  /** The user picked a node: select its tensors in the table and show the detail panel. */
  selectTensors(indices: readonly number[]): void;
  /** The table's row of a tensor (undefined before it arrives). */
  row(index: number): TensorRow | undefined;
  /** Asks the server for the graph's top level. */
  load(signal: AbortSignal): Promise<GraphOverview>;
  /** Asks the server for the contents of a group being opened. */
  contents(group: number, signal: AbortSignal): Promise<GraphGroupContents>;
  /** Asks the server which nodes a search finds, closed groups included. */
  find(query: GraphQuery, signal: AbortSignal): Promise<GraphMatches>;
}

interface GroupLayout {
  readonly result: LayoutResult;
  readonly edges: readonly LiftedEdge[];
}

/** An item on the canvas, in world coordinates. */
interface Placed {
  readonly key: ItemKey;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  /** An expanded group: drawn as a frame around its children. */
  readonly frame: boolean;
  readonly depth: number;
}

interface PlacedEdge {
  readonly points: readonly (readonly [number, number])[];
  readonly edge: LiftedEdge;
}

/** Timings of the last load and expansion (the bench reads them from data attributes). */
export interface GraphTimings {
  firstPaintMs?: number;
  expandMs?: number;
}

export class GraphView {
  readonly element: HTMLElement;
  private readonly canvas = element('canvas', {
    className: 'll-graph-canvas',
    attrs: {
      tabindex: 0,
      role: 'application',
      'aria-label':
        'Model graph. Arrow keys move between nodes, Enter opens a group or selects a node, + and - zoom, F fits.',
      'aria-describedby': 'll-graph-status',
      'data-testid': 'graph-canvas',
    },
  });
  private readonly minimap = element('canvas', {
    className: 'll-graph-minimap',
    attrs: { width: 180, height: 120, 'aria-hidden': 'true', 'data-testid': 'graph-minimap' },
  });
  private readonly status = element('div', {
    className: 'll-graph-status',
    attrs: {
      id: 'll-graph-status',
      role: 'status',
      'aria-live': 'polite',
      'data-testid': 'graph-status',
    },
  });
  private readonly searchInput = element('input', {
    className: 'll-input ll-graph-search',
    attrs: {
      type: 'search',
      placeholder: 'Find node, op or tensor',
      'aria-label': 'Find a node by name, operator or tensor name',
      'data-testid': 'graph-search',
    },
  });
  private readonly searchCount = element('span', {
    className: 'll-graph-search-count',
    attrs: { 'data-testid': 'graph-search-count' },
  });
  private readonly legends = element('div', { className: 'll-graph-legends' });
  private readonly overlaySelects = new Map<OverlayChannel, HTMLSelectElement>();
  private readonly layoutClient = new LayoutClient();
  private readonly zoomBehavior: ZoomBehavior<HTMLCanvasElement, unknown>;

  private model: GraphViewModel | undefined;
  private loading: Promise<void> | undefined;
  private abort = new AbortController();
  private readonly expanded = new Set<number>([ROOT_GROUP]);
  private readonly layouts = new Map<number, GroupLayout>();
  private placed: Placed[] = [];
  private placedByKey = new Map<ItemKey, Placed>();
  private placedEdges: PlacedEdge[] = [];
  private transform: ZoomTransform = zoomIdentity;
  private focused: ItemKey | null = null;
  private selected: ItemKey | null = null;
  /** Per match: the keys of the groups around it, then its own. */
  private matches: readonly (readonly GraphItemKey[])[] = [];
  private matchTotal = 0;
  /** The search being answered (Enter waits for it). */
  private searching: Promise<void> = Promise.resolve();
  private searchAbort = new AbortController();
  private matchKeys = new Set<ItemKey>();
  private matchIndex = -1;
  private overlay: Record<OverlayChannel, OverlayMetric> = {
    fill: OVERLAYS[0]!,
    border: OVERLAYS[0]!,
  };
  private scales: Partial<Record<OverlayChannel, ColourScale>> = {};
  private values: Record<OverlayChannel, Map<ItemKey, number | null>> = {
    fill: new Map(),
    border: new Map(),
  };
  private drawPending = false;
  private overlayTimer: number | undefined;
  private colours = themeColours();
  readonly timings: GraphTimings = {};
  /**
   * Since the last load or expansion: time waiting for group contents, waiting for layouts,
   * and the workers' own time on them (their bands summed: two workers share a large group).
   */
  private fetchMs = 0;
  private workerMs = 0;
  private layoutWaitMs = 0;

  constructor(private readonly events: GraphViewEvents) {
    const fit = element('button', {
      className: 'll-button ll-button-secondary',
      text: 'Fit',
      attrs: { type: 'button', 'data-testid': 'graph-fit', title: 'Fit the graph to the view (F)' },
    });
    fit.addEventListener('click', () => this.fit());
    const toolbar = element('div', { className: 'll-graph-toolbar' }, [
      this.searchInput,
      this.searchCount,
      this.overlaySelect('fill', 'Fill'),
      this.overlaySelect('border', 'Border'),
      fit,
    ]);
    const stage = element('div', { className: 'll-graph-stage' }, [
      this.canvas,
      this.minimap,
      this.legends,
    ]);
    this.element = element(
      'div',
      { className: 'll-graph', attrs: { 'data-testid': 'graph-view', 'data-state': 'idle' } },
      [toolbar, stage, this.status],
    );
    this.zoomBehavior = zoom<HTMLCanvasElement, unknown>()
      .scaleExtent([MIN_SCALE, MAX_SCALE])
      .on('zoom', (event: { transform: ZoomTransform }) => {
        this.transform = event.transform;
        this.scheduleDraw();
      });
    select(this.canvas).call(this.zoomBehavior).on('dblclick.zoom', null);
    this.canvas.addEventListener('click', (event) => void this.onClick(event));
    this.canvas.addEventListener('contextmenu', (event) => this.onContextMenu(event));
    this.canvas.addEventListener('keydown', (event) => void this.onKeyDown(event));
    this.minimap.addEventListener('click', (event) => this.onMinimapClick(event));
    this.searchInput.addEventListener('input', () => this.updateMatches());
    this.searchInput.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      void this.nextMatch(event.shiftKey ? -1 : 1);
    });
    new ResizeObserver(() => this.scheduleDraw()).observe(stage);
  }

  /**
   * Opens the groups around the nodes that read tensor `tensorIndex` (its badges), centres
   * the first and focuses it; the search box holds the tensor's name, Enter goes to the next
   * reader. Only where no node holds the tensor as a badge does the name search decide, as
   * a search finds any node whose name or value names contain the text.
   */
  async reveal(tensorName: string, tensorIndex: number): Promise<void> {
    await this.show();
    if (!this.model) return;
    this.searchInput.value = tensorName;
    const signal = this.newSearch();
    let found = await this.events.find({ tensor: tensorIndex }, signal);
    if (found.total === 0) found = await this.events.find({ text: tensorName }, signal);
    if (signal.aborted) return;
    this.setMatches(found);
    await this.nextMatch(1);
  }

  /** Loads and lays out the graph the first time the tab is shown. */
  show(): Promise<void> {
    this.colours = themeColours();
    this.loading ??= this.load();
    this.scheduleDraw();
    return this.loading;
  }

  /** Forget everything (the model reloads). */
  reset(): void {
    this.abort.abort();
    this.abort = new AbortController();
    this.loading = undefined;
    this.model = undefined;
    this.layouts.clear();
    this.expanded.clear();
    this.expanded.add(ROOT_GROUP);
    this.placed = [];
    this.placedByKey.clear();
    this.placedEdges = [];
    this.focused = this.selected = null;
    this.element.dataset.state = 'idle';
  }

  /** The table's rows changed (statistics, spectra, sensitivity): recolour soon. */
  rowsChanged(): void {
    this.offerOverlays();
    if (this.overlay.fill.id === 'none' && this.overlay.border.id === 'none') return;
    if (this.overlayTimer !== undefined) return;
    this.overlayTimer = window.setTimeout(() => {
      this.overlayTimer = undefined;
      this.updateOverlays();
    }, 250);
  }

  /** Choose an overlay (as the lists do). */
  setOverlay(channel: OverlayChannel, id: string): void {
    this.overlay[channel] = overlayNamed(id);
    const list = this.overlaySelects.get(channel);
    if (list) list.value = this.overlay[channel].id;
    this.updateOverlays();
  }

  /** The lists offer an overlay once it has something to show (a comparison, say). */
  private offerOverlays(): void {
    for (const list of this.overlaySelects.values())
      for (const option of list.options)
        option.disabled = !overlayOffered(overlayNamed(option.value));
  }

  private overlaySelect(channel: OverlayChannel, label: string): HTMLElement {
    const list = element('select', {
      className: 'll-select',
      attrs: { 'aria-label': `${label} overlay`, 'data-testid': `graph-overlay-${channel}` },
    });
    for (const overlay of OVERLAYS) {
      const option = element('option', { text: overlay.label, attrs: { value: overlay.id } });
      option.disabled = !overlayOffered(overlay);
      list.append(option);
    }
    list.addEventListener('change', () => this.setOverlay(channel, list.value));
    this.overlaySelects.set(channel, list);
    return element('label', { className: 'll-graph-overlay' }, [`${label} `, list]);
  }

  private async load(): Promise<void> {
    const started = performance.now();
    this.element.dataset.state = 'loading';
    this.status.textContent = 'Reading the graph…';
    // The worker starts while the server answers.
    this.layoutClient.prepare();
    try {
      const top = await this.events.load(this.abort.signal);
      const received = performance.now();
      this.model = new GraphViewModel(top);
      const modelled = performance.now();
      await this.relayout();
      // Where the first paint's time goes (the bench prints them).
      this.element.dataset.requestMs = (received - started).toFixed(1);
      this.element.dataset.modelMs = (modelled - received).toFixed(1);
      this.element.dataset.layoutMs = (performance.now() - modelled).toFixed(1);
      this.fit();
      this.draw();
      this.timings.firstPaintMs = performance.now() - started;
      this.element.dataset.firstPaintMs = this.timings.firstPaintMs.toFixed(1);
      this.element.dataset.state = 'ready';
      this.focus(this.model.children(ROOT_GROUP)[0] ?? null);
    } catch (error) {
      this.element.dataset.state = 'error';
      this.status.textContent = `Cannot show the graph: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  // ---- layout ---------------------------------------------------------------------------

  private size(key: ItemKey): { width: number; height: number } {
    const model = this.model!;
    if (model.isGroup(key)) {
      const id = model.id(key);
      const layout = this.expanded.has(id) ? this.layouts.get(id) : undefined;
      if (layout)
        return {
          width: Math.max(layout.result.width + 2 * PAD, 120),
          height: layout.result.height + HEADER + PAD,
        };
      const text = Math.max(model.label(key).length, 12);
      return { width: clamp(text * 7 + 30, 100, 280), height: GROUP_HEIGHT };
    }
    const text = Math.max(shortName(model.label(key)).length, (model.op(key) ?? '').length);
    return { width: clamp(text * 7 + 24, 72, 240), height: NODE_HEIGHT };
  }

  /**
   * Lays out every expanded group that has no layout yet, innermost first, fetching the
   * contents of groups opened for the first time.
   */
  private async layoutGroup(group: number): Promise<void> {
    const model = this.model!;
    if (!model.loaded(group)) {
      const asked = performance.now();
      model.add(await this.events.contents(group, this.abort.signal));
      this.fetchMs += performance.now() - asked;
    }
    const children = model.children(group);
    for (const child of children) {
      if (!model.isGroup(child)) continue;
      const id = model.id(child);
      if (this.expanded.has(id) && !this.layouts.has(id)) await this.layoutGroup(id);
    }
    if (this.layouts.has(group)) return;
    const edges = model.edges(group);
    const asked = performance.now();
    const result = await this.layoutClient.layout({
      boxes: children.map((key) => ({ id: key, ...this.size(key) })),
      edges: edges.map((edge) => ({ from: edge.from, to: edge.to })),
    });
    this.layoutWaitMs += performance.now() - asked;
    this.workerMs += result.ms;
    this.layouts.set(group, { result, edges });
  }

  private async relayout(): Promise<void> {
    await this.layoutGroup(ROOT_GROUP);
    this.place();
    this.updateOverlays();
  }

  /** World positions of everything on screen, from the layouts of the expanded groups. */
  private place(): void {
    const model = this.model!;
    const placed: Placed[] = [];
    const edges: PlacedEdge[] = [];
    const visit = (group: number, ox: number, oy: number, depth: number) => {
      const layout = this.layouts.get(group);
      if (!layout) return;
      layout.edges.forEach((edge, i) =>
        edges.push({
          edge,
          points: (layout.result.routes[i] ?? []).map(([x, y]) => [x + ox, y + oy] as const),
        }),
      );
      for (const key of model.children(group)) {
        const [x, y] = layout.result.positions[key] ?? [0, 0];
        const { width, height } = this.size(key);
        const id = model.isGroup(key) ? model.id(key) : -1;
        const frame = id >= 0 && this.expanded.has(id) && this.layouts.has(id);
        placed.push({ key, x: x + ox, y: y + oy, w: width, h: height, frame, depth });
        if (frame) visit(id, x + ox + PAD, y + oy + HEADER, depth + 1);
      }
    };
    visit(ROOT_GROUP, 0, 0, 0);
    this.placed = placed;
    this.placedByKey = new Map(placed.map((item) => [item.key, item]));
    this.placedEdges = edges;
    this.element.dataset.items = String(placed.length);
  }

  /** Expand or collapse a group; lays out what changed and keeps the group where it was on screen. */
  async toggle(key: ItemKey, open?: boolean): Promise<void> {
    const model = this.model;
    if (!model || !model.isGroup(key)) return;
    const id = model.id(key);
    const expand = open ?? !this.expanded.has(id);
    if (expand === this.expanded.has(id)) return;
    const started = performance.now();
    this.fetchMs = this.workerMs = this.layoutWaitMs = 0;
    const before = this.placedByKey.get(key);
    if (expand) this.expanded.add(id);
    else this.expanded.delete(id);
    for (const ancestor of model.chain(key)) this.layouts.delete(model.id(ancestor));
    if (!expand) this.layouts.delete(id);
    try {
      await this.relayout();
    } catch (error) {
      if (expand) this.expanded.delete(id);
      this.status.textContent = `Cannot lay out ${model.label(key)}: ${error instanceof Error ? error.message : String(error)}`;
      return;
    }
    const after = this.placedByKey.get(key);
    if (before && after) {
      const t = this.transform;
      this.setTransform(t.translate(before.x - after.x, before.y - after.y));
    }
    this.draw();
    this.timings.expandMs = performance.now() - started;
    this.element.dataset.expandMs = this.timings.expandMs.toFixed(1);
    // Where the expansion's time goes (the bench prints them).
    this.element.dataset.expandFetchMs = this.fetchMs.toFixed(1);
    this.element.dataset.expandLayoutMs = this.layoutWaitMs.toFixed(1);
    this.element.dataset.expandWorkerMs = this.workerMs.toFixed(1);
    this.focus(key);
  }

  // ---- drawing --------------------------------------------------------------------------

  private scheduleDraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.draw();
    });
  }

  private draw(): void {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const context = canvas.getContext('2d');
    if (!context) return;
    const c = this.colours;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = c.background;
    context.fillRect(0, 0, canvas.width, canvas.height);
    const { k, x: tx, y: ty } = this.transform;
    context.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
    // The world rectangle on screen.
    const left = -tx / k;
    const top = -ty / k;
    const right = left + width / k;
    const bottom = top + height / k;
    const inView = (p: Placed) =>
      p.x < right && p.x + p.w > left && p.y < bottom && p.y + p.h > top;
    const showText = k >= TEXT_SCALE;
    const model = this.model;
    if (!model) return;

    context.lineWidth = 1 / k;
    // Frames of expanded groups.
    for (const item of this.placed) {
      if (!item.frame || !inView(item)) continue;
      context.strokeStyle = c.border;
      context.fillStyle = item.depth % 2 === 0 ? c.frame : c.background;
      context.fillRect(item.x, item.y, item.w, item.h);
      context.strokeRect(item.x, item.y, item.w, item.h);
      this.drawBorderOverlay(context, item, k);
      if (showText) {
        context.fillStyle = c.muted;
        context.font = '11px sans-serif';
        context.fillText(`▾ ${model.label(item.key)}`, item.x + 6, item.y + 15, item.w - 12);
      }
    }
    // Edges.
    context.strokeStyle = c.edge;
    context.fillStyle = c.edge;
    context.font = '10px sans-serif';
    for (const { points, edge } of this.placedEdges) {
      if (points.length < 2) continue;
      const xs = points.map((p) => p[0]);
      const ys = points.map((p) => p[1]);
      if (
        Math.min(...xs) > right ||
        Math.max(...xs) < left ||
        Math.min(...ys) > bottom ||
        Math.max(...ys) < top
      )
        continue;
      context.beginPath();
      context.moveTo(points[0]![0], points[0]![1]);
      for (const [px, py] of points.slice(1)) context.lineTo(px, py);
      context.stroke();
      const [ax, ay] = points[points.length - 1]!;
      const [bx, by] = points[points.length - 2]!;
      const angle = Math.atan2(ay - by, ax - bx);
      context.beginPath();
      context.moveTo(ax, ay);
      context.lineTo(ax - 6 * Math.cos(angle - 0.4), ay - 6 * Math.sin(angle - 0.4));
      context.lineTo(ax - 6 * Math.cos(angle + 0.4), ay - 6 * Math.sin(angle + 0.4));
      context.fill();
      if (k >= 0.8 && edge.shape) {
        const [mx, my] = points[Math.floor(points.length / 2)]!;
        context.fillStyle = c.muted;
        context.fillText(
          edge.count > 1 ? `${edge.shape} (+${edge.count - 1})` : edge.shape,
          mx + 4,
          my,
        );
        context.fillStyle = c.edge;
      }
    }
    // Nodes and collapsed groups.
    for (const item of this.placed) {
      if (item.frame || !inView(item)) continue;
      const group = model.isGroup(item.key);
      const fill = this.scales.fill ? this.values.fill.get(item.key) : null;
      const fillColour =
        fill !== null && fill !== undefined
          ? this.scales.fill!.colour(fill)
          : group
            ? c.group
            : c.node;
      context.fillStyle = fillColour;
      context.fillRect(item.x, item.y, item.w, item.h);
      context.strokeStyle = c.border;
      context.lineWidth = 1 / k;
      context.strokeRect(item.x, item.y, item.w, item.h);
      if (group) context.strokeRect(item.x + 3, item.y + 3, item.w - 6, item.h - 6);
      this.drawBorderOverlay(context, item, k);
      if (showText) this.drawLabel(context, item, fillColour, fill !== null && fill !== undefined);
    }
    // Search matches, selection and focus on top.
    const outline = (key: ItemKey | null, colour: string, widthPx: number) => {
      const item = key === null ? undefined : this.placedByKey.get(key);
      if (!item) return;
      context.strokeStyle = colour;
      context.lineWidth = widthPx / k;
      context.strokeRect(item.x - 2 / k, item.y - 2 / k, item.w + 4 / k, item.h + 4 / k);
    };
    for (const key of this.matchKeys) outline(key, c.match, 2);
    outline(this.selected, c.selection, 3);
    if (document.activeElement === this.canvas || this.focused !== this.selected)
      outline(this.focused, c.focus, 2);
    this.drawMinimap(left, top, right, bottom);
  }

  private drawBorderOverlay(context: CanvasRenderingContext2D, item: Placed, k: number): void {
    const value = this.scales.border ? this.values.border.get(item.key) : null;
    if (value === null || value === undefined) return;
    context.strokeStyle = this.scales.border!.colour(value);
    context.lineWidth = Math.max(3, 3 / k);
    context.strokeRect(item.x, item.y, item.w, item.h);
    context.lineWidth = 1 / k;
  }

  private drawLabel(
    context: CanvasRenderingContext2D,
    item: Placed,
    fill: string,
    overlaid: boolean,
  ): void {
    const model = this.model!;
    const c = this.colours;
    context.fillStyle = overlaid ? readableOn(fill) : c.foreground;
    const op = model.op(item.key);
    if (model.isGroup(item.key)) {
      context.font = 'bold 12px sans-serif';
      context.fillText(`▸ ${model.label(item.key)}`, item.x + 8, item.y + 19, item.w - 16);
      context.font = '11px sans-serif';
      const count = model.nodeCount(item.key);
      context.fillText(
        `${op ? `${op} · ` : ''}${count} node${count === 1 ? '' : 's'}`,
        item.x + 8,
        item.y + 35,
        item.w - 16,
      );
      return;
    }
    context.font = 'bold 12px sans-serif';
    context.fillText(op ?? '', item.x + 8, item.y + 16, item.w - 16);
    context.font = '11px sans-serif';
    context.fillText(shortName(model.label(item.key)), item.x + 8, item.y + 31, item.w - 16);
    const tensors = model.tensorsOf(item.key).length;
    for (let i = 0; i < Math.min(tensors, 4); i++) {
      context.fillStyle = c.badge;
      context.fillRect(item.x + item.w - 10 - i * 8, item.y + 4, 6, 6);
    }
  }

  private drawMinimap(left: number, top: number, right: number, bottom: number): void {
    const map = this.minimap;
    const context = map.getContext('2d');
    if (!context || this.placed.length === 0) return;
    const bounds = this.bounds();
    const scale = Math.min(map.width / bounds.w, map.height / bounds.h);
    const c = this.colours;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = c.frame;
    context.fillRect(0, 0, map.width, map.height);
    context.setTransform(scale, 0, 0, scale, -bounds.x * scale, -bounds.y * scale);
    context.fillStyle = c.muted;
    for (const item of this.placed)
      if (!item.frame) context.fillRect(item.x, item.y, item.w, item.h);
    context.strokeStyle = c.focus;
    context.lineWidth = 2 / scale;
    context.strokeRect(left, top, right - left, bottom - top);
  }

  private bounds(): { x: number; y: number; w: number; h: number } {
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const item of this.placed) {
      x0 = Math.min(x0, item.x);
      y0 = Math.min(y0, item.y);
      x1 = Math.max(x1, item.x + item.w);
      y1 = Math.max(y1, item.y + item.h);
    }
    if (!Number.isFinite(x0)) return { x: 0, y: 0, w: 1, h: 1 };
    return { x: x0, y: y0, w: Math.max(1, x1 - x0), h: Math.max(1, y1 - y0) };
  }

  // ---- navigation -----------------------------------------------------------------------

  private setTransform(transform: ZoomTransform): void {
    select(this.canvas).call(this.zoomBehavior.transform, transform);
  }

  fit(): void {
    const width = this.canvas.clientWidth || 800;
    const height = this.canvas.clientHeight || 600;
    const b = this.bounds();
    const k = clamp(Math.min((width - 40) / b.w, (height - 40) / b.h), MIN_SCALE, 1.5);
    this.setTransform(
      zoomIdentity
        .translate(width / 2 - (b.x + b.w / 2) * k, height / 2 - (b.y + b.h / 2) * k)
        .scale(k),
    );
  }

  /** Pans (keeping the zoom, at least readable) so that the item is in the middle. */
  private centreOn(key: ItemKey): void {
    const item = this.placedByKey.get(key);
    if (!item) return;
    const width = this.canvas.clientWidth || 800;
    const height = this.canvas.clientHeight || 600;
    const k = Math.max(this.transform.k, 0.8);
    this.setTransform(
      zoomIdentity
        .translate(width / 2 - (item.x + item.w / 2) * k, height / 2 - (item.y + item.h / 2) * k)
        .scale(k),
    );
  }

  private ensureVisible(key: ItemKey): void {
    const item = this.placedByKey.get(key);
    if (!item) return;
    const { k, x, y } = this.transform;
    const sx = item.x * k + x;
    const sy = item.y * k + y;
    if (
      sx < 0 ||
      sy < 0 ||
      sx + item.w * k > this.canvas.clientWidth ||
      sy + item.h * k > this.canvas.clientHeight
    )
      this.centreOn(key);
  }

  private focus(key: ItemKey | null): void {
    this.focused = key;
    this.describe(key);
    if (key) this.ensureVisible(key);
    this.scheduleDraw();
  }

  /** The status line: what the focused item is, and its overlay values and colours. */
  private describe(key: ItemKey | null): void {
    const model = this.model;
    const status = this.status;
    for (const attribute of ['key', 'fillValue', 'fillColour', 'borderValue', 'borderColour'])
      delete status.dataset[attribute];
    if (!model || key === null) {
      status.textContent = '';
      return;
    }
    status.dataset.key = key;
    const parts = [model.label(key)];
    const op = model.op(key);
    if (op) parts.push(op);
    if (model.isGroup(key)) {
      const id = model.id(key);
      const open = this.expanded.has(id);
      parts.push(`${model.nodeCount(key)} nodes, ${open ? 'expanded' : 'collapsed'}`);
      const groups = model.children(id).filter((child) => model.isGroup(child));
      const names = groups.slice(0, 5).map((child) => model.label(child));
      if (open && groups.length)
        parts.push(`groups ${names.join(', ')}${groups.length > 5 ? '…' : ''}`);
    } else {
      const tensors = model.tensorsOf(key).length;
      if (tensors) parts.push(`${tensors} stored tensor${tensors === 1 ? '' : 's'}`);
    }
    for (const channel of ['fill', 'border'] as const) {
      const scale = this.scales[channel];
      const value = this.values[channel].get(key);
      if (!scale || value === null || value === undefined) continue;
      const colour = scale.colour(value);
      status.dataset[`${channel}Value`] = String(value);
      status.dataset[`${channel}Colour`] = colour;
      parts.push(`${scale.metric.label} ${scale.metric.format(value)}`);
    }
    status.textContent = parts.join(' · ');
  }

  private hit(event: MouseEvent): Placed | undefined {
    const rect = this.canvas.getBoundingClientRect();
    const [wx, wy] = this.transform.invert([event.clientX - rect.left, event.clientY - rect.top]);
    let best: Placed | undefined;
    for (const item of this.placed) {
      if (wx < item.x || wx > item.x + item.w || wy < item.y || wy > item.y + item.h) continue;
      if (!best || item.depth >= best.depth) best = item;
    }
    return best;
  }

  private async onClick(event: MouseEvent): Promise<void> {
    const item = this.hit(event);
    if (!item) return;
    this.canvas.focus();
    await this.activate(item.key);
  }

  /**
   * A right-click: VS Code's webview menu reads `data-vscode-context` from the clicked element
   * after this listener ran (its own listener is on the window), so the canvas carries the
   * stored tensors of the node or group under the pointer, the same context as a table row's
   * (Compress… then compresses those tensors).
   */
  private onContextMenu(event: MouseEvent): void {
    const item = this.hit(event);
    const tensors = item && this.model ? this.model.tensorsOf(item.key) : [];
    this.canvas.dataset.vscodeContext = JSON.stringify({
      ...(tensors.length > 0 ? { webviewSection: 'tensorRow', tensorIndices: [...tensors] } : {}),
      preventDefaultContextMenuItems: true,
    });
    if (item) this.focus(item.key);
  }

  /** Enter or a click: a group opens or closes, a node is selected. */
  private async activate(key: ItemKey): Promise<void> {
    const model = this.model!;
    if (model.isGroup(key)) {
      await this.toggle(key);
      return;
    }
    this.selected = key;
    this.focus(key);
    const tensors = model.tensorsOf(key);
    if (tensors.length) this.events.selectTensors(tensors);
  }

  private async onKeyDown(event: KeyboardEvent): Promise<void> {
    const model = this.model;
    if (!model) return;
    const key = event.key;
    const arrows: Record<string, [number, number]> = {
      ArrowUp: [0, -1],
      ArrowDown: [0, 1],
      ArrowLeft: [-1, 0],
      ArrowRight: [1, 0],
    };
    if (key in arrows) {
      event.preventDefault();
      this.moveFocus(arrows[key]!);
    } else if (key === 'Enter' || key === ' ') {
      event.preventDefault();
      if (this.focused) await this.activate(this.focused);
    } else if (key === 'Escape' || key === 'Backspace') {
      event.preventDefault();
      const parent = this.focused ? model.parent(this.focused) : undefined;
      if (parent !== undefined && parent !== ROOT_GROUP) {
        await this.toggle(groupKey(parent), false);
      }
    } else if (key === '+' || key === '=') {
      event.preventDefault();
      select(this.canvas).call(this.zoomBehavior.scaleBy, 1.25);
    } else if (key === '-') {
      event.preventDefault();
      select(this.canvas).call(this.zoomBehavior.scaleBy, 0.8);
    } else if (key === 'f' || key === 'F') {
      event.preventDefault();
      this.fit();
    } else if (key === '/') {
      event.preventDefault();
      this.searchInput.focus();
    }
  }

  /** Focus the nearest item in a direction (frames included: they are groups too). */
  private moveFocus([dx, dy]: [number, number]): void {
    const from = this.focused ? this.placedByKey.get(this.focused) : undefined;
    if (!from) {
      this.focus(this.placed[0]?.key ?? null);
      return;
    }
    const cx = from.x + from.w / 2;
    const cy = from.y + from.h / 2;
    let best: Placed | undefined;
    let bestScore = Infinity;
    for (const item of this.placed) {
      if (item === from) continue;
      const ix = item.x + item.w / 2;
      const iy = item.y + item.h / 2;
      const along = (ix - cx) * dx + (iy - cy) * dy;
      if (along <= 1) continue;
      const across = Math.abs((ix - cx) * dy) + Math.abs((iy - cy) * dx);
      const score = along + 3 * across;
      if (score < bestScore) {
        bestScore = score;
        best = item;
      }
    }
    if (best) this.focus(best.key);
  }

  private onMinimapClick(event: MouseEvent): void {
    const b = this.bounds();
    const scale = Math.min(this.minimap.width / b.w, this.minimap.height / b.h);
    const rect = this.minimap.getBoundingClientRect();
    const wx = ((event.clientX - rect.left) * (this.minimap.width / rect.width)) / scale + b.x;
    const wy = ((event.clientY - rect.top) * (this.minimap.height / rect.height)) / scale + b.y;
    const { k } = this.transform;
    this.setTransform(
      zoomIdentity
        .translate(this.canvas.clientWidth / 2 - wx * k, this.canvas.clientHeight / 2 - wy * k)
        .scale(k),
    );
  }

  // ---- search ---------------------------------------------------------------------------

  /** A new search: the one before it is no longer wanted. */
  private newSearch(): AbortSignal {
    this.searchAbort.abort();
    this.searchAbort = new AbortController();
    return this.searchAbort.signal;
  }

  /** The search box changed: the server searches every node, closed groups included. */
  private updateMatches(): void {
    const signal = this.newSearch();
    const text = this.searchInput.value;
    // The last search's matches and count go at once: they are not this text's.
    this.setMatches({ total: 0, chains: [] });
    if (!this.model || !text.trim()) {
      this.searching = Promise.resolve();
      return;
    }
    this.searchCount.textContent = 'searching…';
    this.searching = this.events.find({ text }, signal).then(
      (found) => {
        if (!signal.aborted) this.setMatches(found);
      },
      (error: unknown) => {
        if (!signal.aborted)
          this.status.textContent = `Cannot search the graph: ${error instanceof Error ? error.message : String(error)}`;
      },
    );
  }

  private setMatches(found: GraphMatches): void {
    this.matches = found.chains;
    this.matchTotal = found.total;
    this.matchIndex = -1;
    this.searchCount.textContent = this.searchInput.value.trim() ? `${found.total} found` : '';
    this.markMatches();
  }

  /** The items on screen that hold a match (a collapsed group holding one is marked too). */
  private markMatches(): void {
    this.matchKeys = new Set();
    for (const chain of this.matches) {
      const shown = [...chain].reverse().find((key) => this.placedByKey.has(key));
      if (shown) this.matchKeys.add(shown);
    }
    this.scheduleDraw();
  }

  /** Opens the groups around the next match, centres it and focuses it. */
  async nextMatch(step: 1 | -1 = 1): Promise<void> {
    await this.searching;
    const model = this.model;
    if (!model || this.matches.length === 0) return;
    this.matchIndex = (this.matchIndex + step + this.matches.length) % this.matches.length;
    const chain = this.matches[this.matchIndex]!;
    const target = chain[chain.length - 1]!;
    let changed = false;
    for (const key of chain.slice(0, -1)) {
      const id = model.id(key);
      if (!this.expanded.has(id)) {
        this.expanded.add(id);
        changed = true;
      }
    }
    // An opened group changes the size of every group around it.
    if (changed) {
      for (const key of chain.slice(0, -1)) this.layouts.delete(model.id(key));
      await this.relayout();
    }
    const more = this.matchTotal > this.matches.length ? ` (first ${this.matches.length})` : '';
    this.searchCount.textContent = `${this.matchIndex + 1} of ${this.matchTotal}${more}`;
    this.markMatches();
    this.selected = target;
    this.centreOn(target);
    this.focus(target);
  }

  // ---- overlays -------------------------------------------------------------------------

  private updateOverlays(): void {
    const model = this.model;
    this.legends.replaceChildren();
    for (const channel of ['fill', 'border'] as const) {
      const metric = this.overlay[channel];
      this.values[channel] = new Map();
      if (!model || metric.id === 'none') {
        delete this.scales[channel];
        continue;
      }
      const shown: number[] = [];
      for (const item of this.placed) {
        const rows = model.tensorsOf(item.key).flatMap((index) => {
          const row = this.events.row(index);
          return row ? [row] : [];
        });
        const value = metric.item ? metric.item(item.key) : aggregateValue(metric, rows);
        this.values[channel].set(item.key, value);
        if (value !== null && !item.frame) shown.push(value);
      }
      const scale = new ColourScale(metric, shown, channel);
      this.scales[channel] = scale;
      this.legends.append(scale.legend());
    }
    this.describe(this.focused);
    this.scheduleDraw();
  }
}

function clamp(value: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, value));
}

/** The last part of a scoped name (`/encoder/layer.0/MatMul` → `MatMul`). */
function shortName(name: string): string {
  const parts = name.split('/').filter((part) => part !== '');
  return parts[parts.length - 1] ?? name;
}

/** Black or white text, whichever reads better on the fill colour. */
function readableOn(hex: string): string {
  const value = Number.parseInt(hex.slice(1), 16);
  if (Number.isNaN(value)) return '#000000';
  const luminance =
    0.299 * ((value >> 16) & 255) + 0.587 * ((value >> 8) & 255) + 0.114 * (value & 255);
  return luminance > 140 ? '#000000' : '#ffffff';
}

/** The theme's colours, from VS Code's CSS variables. */
function themeColours() {
  const style = getComputedStyle(document.body);
  const get = (name: string, fallback: string) =>
    style.getPropertyValue(`--vscode-${name}`).trim() || fallback;
  return {
    background: get('editor-background', '#1e1e1e'),
    foreground: get('editor-foreground', '#cccccc'),
    muted: get('descriptionForeground', '#9d9d9d'),
    node: get('editorWidget-background', '#252526'),
    group: get('sideBar-background', '#181818'),
    frame: get('sideBar-background', '#181818'),
    border: get('widget-border', '#454545'),
    edge: get('descriptionForeground', '#9d9d9d'),
    badge: get('charts-blue', '#3794ff'),
    focus: get('focusBorder', '#0078d4'),
    selection: get('charts-orange', '#d18616'),
    match: get('charts-yellow', '#cca700'),
  };
}

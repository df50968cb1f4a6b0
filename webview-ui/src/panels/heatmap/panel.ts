/**
 * The selected tensor's heatmap on a canvas: the server computes each tile (pooled to its
 * zoom level) and the panel only draws them; zoom with the wheel or the buttons, pan by
 * dragging. Tiles no longer in view are cancelled. Below: the structured sparsity numbers.
 * The view's maths, the tile cache and the cancellation are in ./viewport, ./tileCache and
 * ./requests; this module is the DOM: controls, painting, legend.
 */
import { DTYPES } from '../../../../src/shared/dtypes';
import { formatCount, formatPercent, formatStat } from '../../../../src/shared/format';
import {
  decodeTileValues,
  matrixShape,
  type HeatmapInfo,
  type HeatmapLayer,
  type HeatmapTile,
  type Int4BlockSize,
} from '../../../../src/shared/heatmap';
import { isCancellation, requestErrorOf, type ModelApi } from '../../platform/api';
import { element } from '../../platform/dom';
import type { TensorRow } from '../../table/tensorRows';
import { BlockScaleView, hasBlockScales } from './blockScales';
import { colourTable, cssVariable } from './colours';
import { LAYER_COLOURS, legendGradient, legendRange, paintTile } from './paint';
import { LatestRequest, TileRequests } from './requests';
import { renderStructuredSparsity } from './sparsityTable';
import { heatmapInfoKey, TileCache, tileKey, TILE_CACHE_SIZE } from './tileCache';
import { Viewport, ZOOM_STEP, type DragStart } from './viewport';

const CANVAS_HEIGHT = 380;
const LEGEND_WIDTH = 180;

type LayerKind = HeatmapLayer['kind'];

const LAYER_CHOICES: readonly { kind: LayerKind; label: string; title: string }[] = [
  {
    kind: 'magnitude',
    label: '|W|',
    title: 'Mean |w| of the cells a pixel covers, on a log colour scale',
  },
  { kind: 'zeros', label: 'Zeros', title: 'Fraction of exact zeros' },
  {
    kind: 'nm',
    label: '2:4',
    title: 'Fraction of values in groups of 4 (along a row) with more than 2 non-zeros',
  },
  {
    kind: 'int4',
    label: 'Int4 error',
    title: 'Relative error of each block after a symmetric absmax int4 round trip',
  },
];

export function hasHeatmap(row: TensorRow): boolean {
  const matrix = matrixShape(row.info.shape);
  const dtype = DTYPES[row.info.dtype];
  return matrix !== null && matrix.rows * matrix.cols > 0 && dtype.numeric && dtype.bits >= 8;
}

interface DrawnTile {
  readonly image: HTMLCanvasElement;
  readonly tile: HeatmapTile;
  readonly values: Float32Array;
}

export class HeatmapPanel {
  readonly element: HTMLElement;
  private readonly message: HTMLParagraphElement;
  private readonly view: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly levelLabel: HTMLSpanElement;
  private readonly hover: HTMLParagraphElement;
  private readonly legend: HTMLDivElement;
  private readonly structured: HTMLDivElement;
  private readonly layerButtons = new Map<LayerKind, HTMLButtonElement>();
  private readonly blockSelect: HTMLSelectElement;
  /** The quantization grid (block scales) instead of the tiles, for ggml block tensors. */
  private readonly gridButton: HTMLButtonElement;
  private readonly gridView: BlockScaleView;
  private showGrid = false;
  private row: TensorRow | undefined;
  private visible = false;
  private layerKind: LayerKind = 'magnitude';
  private info: HeatmapInfo | null = null;
  private readonly infoRequest = new LatestRequest();
  private infoKey = '';
  private readonly viewport = new Viewport();
  private readonly tiles = new TileCache<DrawnTile>(TILE_CACHE_SIZE);
  private readonly tileRequests = new TileRequests();
  private colourTable: Uint8ClampedArray | null = null;
  private frame = 0;
  private drag: DragStart | null = null;

  constructor(private readonly api: ModelApi) {
    this.message = element('p', { className: 'll-detail-message' });
    const layers = element('div', {
      className: 'll-segmented',
      attrs: { role: 'group', 'aria-label': 'Heatmap layer', 'data-testid': 'heatmap-layers' },
    });
    for (const choice of LAYER_CHOICES) {
      const button = element('button', {
        className: 'll-segment',
        text: choice.label,
        attrs: { type: 'button', title: choice.title, 'data-layer': choice.kind },
      });
      button.addEventListener('click', () => this.setLayer(choice.kind));
      this.layerButtons.set(choice.kind, button);
      layers.append(button);
    }
    this.blockSelect = element('select', {
      className: 'll-select',
      attrs: {
        'data-testid': 'heatmap-block',
        'aria-label': 'Int4 block size',
        title: 'Int4 block size',
      },
    });
    for (const block of [32, 128]) {
      this.blockSelect.append(
        element('option', { text: `block ${block}`, attrs: { value: block } }),
      );
    }
    this.blockSelect.addEventListener('change', () => this.loadInfo());
    this.gridButton = element('button', {
      className: 'll-segment',
      text: 'Block scales',
      attrs: {
        type: 'button',
        title:
          'Quantization grid: one cell per block, coloured by its scale d (K-quants: the super-block scale)',
        'data-testid': 'heatmap-block-scales-toggle',
      },
    });
    this.gridButton.addEventListener('click', () => {
      this.showGrid = !this.showGrid;
      this.updateGrid();
    });
    this.gridView = new BlockScaleView(api);
    const zoomButton = (text: string, testId: string, title: string, action: () => void) => {
      const button = element('button', {
        className: 'll-segment',
        text,
        attrs: { type: 'button', title, 'data-testid': testId, 'aria-label': title },
      });
      button.addEventListener('click', action);
      return button;
    };
    this.levelLabel = element('span', {
      className: 'll-heatmap-level',
      attrs: { 'data-testid': 'heatmap-level' },
    });
    const zoom = element(
      'div',
      {
        className: 'll-segmented',
        attrs: { role: 'group', 'aria-label': 'Zoom', 'data-testid': 'heatmap-zoom' },
      },
      [
        zoomButton('−', 'heatmap-zoom-out', 'Zoom out', () => this.zoomAt(1 / ZOOM_STEP)),
        zoomButton('Fit', 'heatmap-fit', 'Fit the whole matrix', () => this.fit()),
        zoomButton('+', 'heatmap-zoom-in', 'Zoom in', () => this.zoomAt(ZOOM_STEP)),
      ],
    );
    const toolbar = element('div', { className: 'll-panel-toolbar' }, [
      layers,
      this.blockSelect,
      element('div', { className: 'll-segmented' }, [this.gridButton]),
      zoom,
      this.levelLabel,
    ]);
    this.canvas = element('canvas', {
      className: 'll-heatmap-canvas',
      attrs: {
        'data-testid': 'heatmap',
        height: CANVAS_HEIGHT,
        tabindex: 0,
        'aria-label':
          'Heatmap of the weight matrix; wheel or +/- to zoom, drag or arrow keys to pan',
      },
    });
    this.view = element('div', { className: 'll-heatmap-view' }, [this.canvas]);
    this.hover = element('p', {
      className: 'll-heatmap-hover',
      attrs: { 'data-testid': 'heatmap-hover' },
    });
    this.legend = element('div', {
      className: 'll-heatmap-legend',
      attrs: { 'data-testid': 'heatmap-legend' },
    });
    this.structured = element('div', {
      className: 'll-structured',
      attrs: { 'data-testid': 'structured-sparsity' },
    });
    this.element = element(
      'section',
      {
        className: 'll-analysis-panel',
        attrs: { 'data-testid': 'heatmap-panel', 'aria-label': 'Sparsity heatmap' },
      },
      [
        toolbar,
        this.gridView.element,
        this.message,
        this.view,
        this.legend,
        this.hover,
        this.structured,
      ],
    );
    this.bindPointer();
    new ResizeObserver(() => {
      if (this.visible && this.info && this.canvas.width !== this.view.clientWidth)
        this.scheduleDraw();
    }).observe(this.view);
    this.updateGrid();
  }

  show(row: TensorRow | undefined, visible: boolean): void {
    const changed = row?.info.index !== this.row?.info.index;
    this.row = row;
    this.visible = visible;
    if (changed) {
      this.reset();
      this.gridView.reset();
    }
    this.updateGrid();
  }

  /** The grid toggle exists for tensors with block scales; when on, the grid replaces the tiles. */
  private updateGrid(): void {
    const grid = this.gridShown();
    this.updateLayerButtons();
    this.gridButton.hidden = !hasBlockScales(this.row);
    this.gridButton.setAttribute('aria-pressed', String(grid));
    this.gridView.element.hidden = !grid;
    if (!grid) {
      if (this.visible) this.loadInfo();
      return;
    }
    // The tiles' requests stop; the heatmap is asked for again when the grid is switched off.
    this.reset();
    for (const part of [this.message, this.view, this.legend, this.hover, this.structured])
      part.hidden = true;
    if (this.visible) this.gridView.show(this.row!);
  }

  private layer(): HeatmapLayer {
    switch (this.layerKind) {
      case 'magnitude':
      case 'zeros':
        return { kind: this.layerKind };
      case 'nm':
        return { kind: 'nm', n: 2, m: 4 };
      case 'int4':
        return { kind: 'int4', block: Number(this.blockSelect.value) as Int4BlockSize };
    }
  }

  /** A layer button shows that layer's tiles (the quantization grid, if shown, goes). */
  private setLayer(kind: LayerKind): void {
    if (kind === this.layerKind && !this.gridShown()) return;
    this.layerKind = kind;
    this.showGrid = false;
    this.updateGrid();
  }

  private gridShown(): boolean {
    return this.showGrid && hasBlockScales(this.row);
  }

  private updateLayerButtons(): void {
    const grid = this.gridShown();
    for (const [kind, button] of this.layerButtons)
      button.setAttribute('aria-pressed', String(!grid && kind === this.layerKind));
    this.blockSelect.hidden = grid || this.layerKind !== 'int4';
  }

  /** Forget the tensor's tiles and requests (another row, or another layer). */
  private reset(): void {
    this.infoRequest.cancel();
    this.infoKey = '';
    this.info = null;
    this.tileRequests.reset();
    this.tiles.clear();
    this.canvas.dataset.tilesDrawn = '0';
  }

  private loadInfo(): void {
    const row = this.row;
    if (!row || !hasHeatmap(row)) {
      this.reset();
      this.setMessage(
        row
          ? 'This tensor has no heatmap: it needs two or more dimensions of numeric values.'
          : 'Select a row to see its heatmap.',
      );
      return;
    }
    const layer = this.layer();
    const key = heatmapInfoKey(row.info.index, layer);
    if (key === this.infoKey) {
      if (this.info) this.scheduleDraw();
      return;
    }
    const keepView = this.info !== null && this.info.index === row.info.index;
    this.reset();
    this.infoKey = key;
    const controller = this.infoRequest.start();
    this.setMessage('Building the heatmap…');
    this.api.request('heatmapInfo', { index: row.info.index, layer }, controller.signal).then(
      (info) => {
        if (!this.infoRequest.finish(controller)) return;
        this.info = info;
        this.colourTable = colourTable(LAYER_COLOURS[info.layer.kind]);
        this.setMessage(null);
        if (!keepView) this.fit();
        else this.scheduleDraw();
        this.renderLegend(info);
        renderStructuredSparsity(this.structured, info.structured);
      },
      (error: unknown) => {
        if (controller.signal.aborted || isCancellation(error)) return;
        this.infoRequest.finish(controller);
        this.infoKey = '';
        this.setMessage(`No heatmap: ${requestErrorOf(error).message}`, true);
      },
    );
  }

  private setMessage(text: string | null, isError = false): void {
    this.message.hidden = text === null;
    this.message.textContent = text ?? '';
    this.message.classList.toggle('ll-detail-error', isError);
    const ready = text === null;
    this.view.hidden = !ready;
    this.legend.hidden = !ready;
    this.hover.hidden = !ready;
    this.structured.hidden = !ready;
    this.element.dataset.state = ready ? 'ready' : isError ? 'error' : 'waiting';
  }

  private fit(): void {
    const info = this.info;
    if (!info) return;
    this.viewport.fit(info, Math.max(1, this.view.clientWidth), CANVAS_HEIGHT);
    this.scheduleDraw();
  }

  /** Zoom by `factor` keeping the matrix point under (x, y) in place (the centre by default). */
  private zoomAt(factor: number, x = this.canvas.width / 2, y = CANVAS_HEIGHT / 2): void {
    const info = this.info;
    if (!info) return;
    this.viewport.zoomAt(info, factor, x, y, this.canvas.width, CANVAS_HEIGHT);
    this.scheduleDraw();
  }

  private bindPointer(): void {
    this.canvas.addEventListener(
      'wheel',
      (event) => {
        if (!this.info) return;
        event.preventDefault();
        const box = this.canvas.getBoundingClientRect();
        this.zoomAt(
          event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP,
          event.clientX - box.left,
          event.clientY - box.top,
        );
      },
      { passive: false },
    );
    this.canvas.addEventListener('pointerdown', (event) => {
      if (!this.info) return;
      this.canvas.setPointerCapture(event.pointerId);
      this.drag = this.viewport.startDrag(event.clientX, event.clientY);
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (this.drag) {
        this.viewport.dragTo(this.drag, event.clientX, event.clientY);
        this.scheduleDraw();
      }
      const box = this.canvas.getBoundingClientRect();
      this.describePoint(event.clientX - box.left, event.clientY - box.top);
    });
    const endDrag = () => {
      this.drag = null;
    };
    this.canvas.addEventListener('pointerup', endDrag);
    this.canvas.addEventListener('pointercancel', endDrag);
    this.canvas.addEventListener('keydown', (event) => {
      const moves: Record<string, () => void> = {
        '+': () => this.zoomAt(ZOOM_STEP),
        '=': () => this.zoomAt(ZOOM_STEP),
        '-': () => this.zoomAt(1 / ZOOM_STEP),
        ArrowLeft: () => this.viewport.panSteps(-1, 0),
        ArrowRight: () => this.viewport.panSteps(1, 0),
        ArrowUp: () => this.viewport.panSteps(0, -1),
        ArrowDown: () => this.viewport.panSteps(0, 1),
      };
      const move = moves[event.key];
      if (!move || !this.info) return;
      event.preventDefault();
      move();
      this.scheduleDraw();
    });
  }

  private scheduleDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const info = this.info;
    if (!info || !this.visible) return;
    const width = Math.max(1, this.view.clientWidth);
    if (this.canvas.width !== width) this.canvas.width = width;
    const context = this.canvas.getContext('2d')!;
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, width, CANVAS_HEIGHT);
    const { level, tiles } = this.viewport.visibleTiles(info, width, CANVAS_HEIGHT);
    const wanted = new Set<string>();
    let drawn = 0;
    for (const { tileX, tileY } of tiles) {
      const key = this.tileKey(level, tileX, tileY);
      wanted.add(key);
      const tile = this.tiles.use(key);
      if (tile) {
        this.drawTile(context, tile, level);
        drawn++;
      } else {
        this.drawPlaceholder(context, level, tileX, tileY);
        this.requestTile(key, level, tileX, tileY);
      }
    }
    // Requests for tiles that left the view (or another level) are cancelled.
    this.tileRequests.cancelWhere((key) => !wanted.has(key));
    context.strokeStyle =
      cssVariable('--vscode-panel-border') || cssVariable('--vscode-widget-border');
    const outline = this.viewport.matrixRect(info);
    context.strokeRect(outline.x, outline.y, outline.width, outline.height);
    const cellsPerPixel = 2 ** level;
    this.levelLabel.textContent = `level ${level} · ${cellsPerPixel === 1 ? '1 cell' : `${cellsPerPixel}×${cellsPerPixel} cells`} per pixel · ${formatStat(this.viewport.scale, 3)} px per cell`;
    this.levelLabel.dataset.level = String(level);
    this.canvas.dataset.level = String(level);
    this.canvas.dataset.tilesDrawn = String(drawn);
    this.canvas.dataset.tilesWanted = String(wanted.size);
    this.canvas.dataset.tileRequests = String(this.tileRequests.started);
  }

  private tileKey(level: number, tileX: number, tileY: number): string {
    return tileKey(this.infoKey, level, tileX, tileY);
  }

  private drawTile(context: CanvasRenderingContext2D, drawn: DrawnTile, level: number): void {
    const { tile } = drawn;
    const rect = this.viewport.tileRect(
      this.info!.tileSize,
      level,
      tile.tileX,
      tile.tileY,
      tile.width,
      tile.height,
    );
    context.drawImage(drawn.image, rect.x, rect.y, rect.width, rect.height);
  }

  /** While a tile loads, the part of a coarser tile already here that covers it is shown, stretched. */
  private drawPlaceholder(
    context: CanvasRenderingContext2D,
    level: number,
    tileX: number,
    tileY: number,
  ): void {
    const info = this.info!;
    for (let coarser = level + 1; coarser <= info.maxLevel; coarser++) {
      const shift = coarser - level;
      const parent = this.tiles.peek(this.tileKey(coarser, tileX >> shift, tileY >> shift));
      if (!parent) continue;
      const part = info.tileSize >> shift;
      const sourceX = (tileX - ((tileX >> shift) << shift)) * part;
      const sourceY = (tileY - ((tileY >> shift) << shift)) * part;
      const width = Math.min(part, parent.tile.width - sourceX);
      const height = Math.min(part, parent.tile.height - sourceY);
      if (width <= 0 || height <= 0) return;
      const rect = this.viewport.tileRect(info.tileSize, coarser, 0, 0, width, height);
      const at = this.viewport.tileRect(info.tileSize, level, tileX, tileY, 0, 0);
      context.drawImage(
        parent.image,
        sourceX,
        sourceY,
        width,
        height,
        at.x,
        at.y,
        rect.width,
        rect.height,
      );
      return;
    }
  }

  /** Asks for a tile unless it is on its way; answers to cancelled requests are dropped. */
  private requestTile(key: string, level: number, tileX: number, tileY: number): void {
    if (!this.row) return;
    const controller = this.tileRequests.start(key);
    if (!controller) return;
    const info = this.info!;
    this.tileRequests.track(
      key,
      controller,
      this.api.request(
        'heatmapTile',
        { index: this.row.info.index, layer: info.layer, level, tileX, tileY },
        controller.signal,
      ),
      {
        onTile: (tile) => {
          const values = decodeTileValues(tile.values);
          this.tiles.set(key, { tile, values, image: this.paint(tile, values, info) });
          this.scheduleDraw();
        },
        onError: (error) => {
          if (isCancellation(error)) return;
          this.setMessage(`A heatmap tile failed: ${requestErrorOf(error).message}`, true);
        },
      },
    );
  }

  /** The tile's pixels in the layer's colours, on a canvas of the tile's own size. */
  private paint(tile: HeatmapTile, values: Float32Array, info: HeatmapInfo): HTMLCanvasElement {
    return paintTile(tile, values, info, this.colourTable!);
  }

  /** The value under a canvas point, from the tile drawn there. */
  private describePoint(x: number, y: number): void {
    const info = this.info;
    if (!info) return;
    const cell = this.viewport.locate(info, x, y);
    if (!cell) {
      this.hover.textContent = '';
      return;
    }
    const { cellX, cellY, level, span, pixelX, pixelY, tileX, tileY } = cell;
    const drawn = this.tiles.peek(this.tileKey(level, tileX, tileY));
    const rowStart = pixelY * span;
    const colStart = pixelX * span;
    const where =
      span === 1
        ? `row ${formatCount(cellY)}, column ${formatCount(cellX)}`
        : `rows ${formatCount(rowStart)}–${formatCount(Math.min(info.rows, rowStart + span) - 1)}, columns ${formatCount(colStart)}–${formatCount(Math.min(info.cols, colStart + span) - 1)}`;
    const value = drawn?.values[cell.inTileY * drawn.tile.width + cell.inTileX];
    this.hover.textContent = `${where}: ${value === undefined ? '…' : describeValue(info, value)}`;
  }

  private renderLegend(info: HeatmapInfo): void {
    const gradient = legendGradient(this.colourTable!, LEGEND_WIDTH);
    const [low, high] = legendRange(info);
    const what: Record<LayerKind, string> = {
      magnitude: 'mean |w| per pixel (log scale; zeros in the background colour)',
      zeros: 'fraction of exact zeros per pixel',
      nm: 'fraction of values in 2:4-violating groups (4 consecutive along a row, more than 2 non-zeros)',
      int4: `relative int4 error of the ${info.layer.kind === 'int4' ? info.layer.block : ''}-value blocks (symmetric absmax)`,
    };
    this.legend.replaceChildren(
      element('span', { className: 'll-legend-value', text: formatStat(low, 3) }),
      gradient,
      element('span', { className: 'll-legend-value', text: formatStat(high, 3) }),
      element('span', {
        className: 'll-legend-text',
        text: `${what[info.layer.kind]} · ${formatCount(info.rows)} × ${formatCount(info.cols)}`,
      }),
    );
  }
}

function describeValue(info: HeatmapInfo, value: number): string {
  switch (info.layer.kind) {
    case 'magnitude':
      return `mean |w| ${formatStat(value)}`;
    case 'zeros':
      return `${formatPercent(value)} zeros`;
    case 'nm':
      return `${formatPercent(value)} in violating groups`;
    case 'int4':
      return `relative error ${formatStat(value)}`;
  }
}

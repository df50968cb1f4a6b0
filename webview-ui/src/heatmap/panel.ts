/**
 * The selected tensor's heatmap on a canvas: the server computes each tile (pooled to its
 * zoom level) and the panel only draws them; zoom with the wheel or the buttons, pan by
 * dragging. Tiles no longer in view are cancelled. Below: the structured sparsity numbers.
 */
import { color, interpolateRgbBasis } from 'd3';
import { DTYPES } from '../../../src/shared/dtypes';
import { formatCount, formatPercent, formatStat } from '../../../src/shared/format';
import {
  decodeTileValues,
  heatmapLayerKey,
  matrixShape,
  tileGrid,
  type HeatmapInfo,
  type HeatmapLayer,
  type HeatmapTile,
  type Int4BlockSize,
  type StructuredSparsity,
} from '../../../src/shared/heatmap';
import { isCancellation, requestErrorOf, type ModelApi } from '../api';
import { definitionList, element } from '../dom';
import type { TensorRow } from '../tensorRows';

const CANVAS_HEIGHT = 380;
const ZOOM_STEP = 1.5;
/** Most screen pixels one matrix cell may cover. */
const MAX_CELL_PIXELS = 32;
/** Tiles kept drawn off screen (LRU), per panel. */
const TILE_CACHE_SIZE = 192;
const LEGEND_WIDTH = 180;
/** The magnitude scale spans at most this ratio below the largest |w|. */
const LOG_DECADES_SHOWN = 1e-4;

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

/** Theme colours each layer's scale runs through, low to high (CSS variables of VS Code's theme). */
const LAYER_COLOURS: Readonly<Record<LayerKind, readonly string[]>> = {
  magnitude: ['--vscode-editor-background', '--vscode-charts-blue', '--vscode-charts-yellow'],
  zeros: ['--vscode-editor-background', '--vscode-charts-green'],
  nm: ['--vscode-editor-background', '--vscode-charts-red'],
  int4: ['--vscode-editor-background', '--vscode-charts-purple', '--vscode-charts-red'],
};

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
  private row: TensorRow | undefined;
  private visible = false;
  private layerKind: LayerKind = 'magnitude';
  private info: HeatmapInfo | null = null;
  private infoRequest: AbortController | null = null;
  private infoKey = '';
  /** Screen pixels per matrix cell, and the matrix cell at the canvas's top-left corner. */
  private scale = 1;
  private offsetX = 0;
  private offsetY = 0;
  private readonly tiles = new Map<string, DrawnTile>();
  private readonly inFlight = new Map<string, AbortController>();
  private colourTable: Uint8ClampedArray | null = null;
  private frame = 0;
  private drag: { x: number; y: number; offsetX: number; offsetY: number } | null = null;
  private tileRequests = 0;

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
      [toolbar, this.message, this.view, this.legend, this.hover, this.structured],
    );
    this.bindPointer();
    new ResizeObserver(() => {
      if (this.visible && this.info && this.canvas.width !== this.view.clientWidth)
        this.scheduleDraw();
    }).observe(this.view);
    this.updateLayerButtons();
  }

  show(row: TensorRow | undefined, visible: boolean): void {
    const changed = row?.info.index !== this.row?.info.index;
    this.row = row;
    this.visible = visible;
    if (changed) this.reset();
    if (visible) this.loadInfo();
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

  private setLayer(kind: LayerKind): void {
    if (kind === this.layerKind) return;
    this.layerKind = kind;
    this.updateLayerButtons();
    this.loadInfo();
  }

  private updateLayerButtons(): void {
    for (const [kind, button] of this.layerButtons)
      button.setAttribute('aria-pressed', String(kind === this.layerKind));
    this.blockSelect.hidden = this.layerKind !== 'int4';
  }

  /** Forget the tensor's tiles and requests (another row, or another layer). */
  private reset(): void {
    this.infoRequest?.abort();
    this.infoRequest = null;
    this.infoKey = '';
    this.info = null;
    this.cancelTiles(() => true);
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
    const key = `${row.info.index}|${heatmapLayerKey(layer)}`;
    if (key === this.infoKey) {
      if (this.info) this.scheduleDraw();
      return;
    }
    const keepView = this.info !== null && this.info.index === row.info.index;
    this.reset();
    this.infoKey = key;
    const controller = new AbortController();
    this.infoRequest = controller;
    this.setMessage('Building the heatmap…');
    this.api.heatmapInfo(row.info.index, layer, controller.signal).then(
      (info) => {
        if (controller.signal.aborted) return;
        this.infoRequest = null;
        this.info = info;
        this.colourTable = colourTable(LAYER_COLOURS[info.layer.kind]);
        this.setMessage(null);
        if (!keepView) this.fit();
        else this.scheduleDraw();
        this.renderLegend(info);
        this.renderStructured(info.structured);
      },
      (error: unknown) => {
        if (controller.signal.aborted || isCancellation(error)) return;
        this.infoRequest = null;
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

  /** The zoom level whose pixels are closest to (not smaller than) a screen pixel. */
  private level(): number {
    const info = this.info!;
    const level = Math.floor(Math.log2(1 / this.scale) + 1e-9);
    return Math.max(0, Math.min(info.maxLevel, level));
  }

  private fit(): void {
    const info = this.info;
    if (!info) return;
    const width = Math.max(1, this.view.clientWidth);
    this.scale = Math.min(width / info.cols, CANVAS_HEIGHT / info.rows, MAX_CELL_PIXELS);
    this.offsetX = -(width / this.scale - info.cols) / 2;
    this.offsetY = -(CANVAS_HEIGHT / this.scale - info.rows) / 2;
    this.scheduleDraw();
  }

  /** Zoom by `factor` keeping the matrix point under (x, y) in place (the centre by default). */
  private zoomAt(factor: number, x = this.canvas.width / 2, y = CANVAS_HEIGHT / 2): void {
    const info = this.info;
    if (!info) return;
    const fitScale = Math.min(this.canvas.width / info.cols, CANVAS_HEIGHT / info.rows);
    const next = Math.max(
      Math.min(fitScale / 2, 1),
      Math.min(MAX_CELL_PIXELS, this.scale * factor),
    );
    const cellX = this.offsetX + x / this.scale;
    const cellY = this.offsetY + y / this.scale;
    this.scale = next;
    this.offsetX = cellX - x / next;
    this.offsetY = cellY - y / next;
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
      this.drag = {
        x: event.clientX,
        y: event.clientY,
        offsetX: this.offsetX,
        offsetY: this.offsetY,
      };
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (this.drag) {
        this.offsetX = this.drag.offsetX - (event.clientX - this.drag.x) / this.scale;
        this.offsetY = this.drag.offsetY - (event.clientY - this.drag.y) / this.scale;
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
      const step = 40 / this.scale;
      const moves: Record<string, () => void> = {
        '+': () => this.zoomAt(ZOOM_STEP),
        '=': () => this.zoomAt(ZOOM_STEP),
        '-': () => this.zoomAt(1 / ZOOM_STEP),
        ArrowLeft: () => (this.offsetX -= step),
        ArrowRight: () => (this.offsetX += step),
        ArrowUp: () => (this.offsetY -= step),
        ArrowDown: () => (this.offsetY += step),
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
    const level = this.level();
    const span = info.tileSize * 2 ** level;
    const { tilesX, tilesY } = tileGrid(info.rows, info.cols, level, info.tileSize);
    const firstX = Math.max(0, Math.floor(this.offsetX / span));
    const firstY = Math.max(0, Math.floor(this.offsetY / span));
    const lastX = Math.min(tilesX - 1, Math.floor((this.offsetX + width / this.scale) / span));
    const lastY = Math.min(
      tilesY - 1,
      Math.floor((this.offsetY + CANVAS_HEIGHT / this.scale) / span),
    );
    const wanted = new Set<string>();
    let drawn = 0;
    for (let tileY = firstY; tileY <= lastY; tileY++) {
      for (let tileX = firstX; tileX <= lastX; tileX++) {
        const key = this.tileKey(level, tileX, tileY);
        wanted.add(key);
        const tile = this.tiles.get(key);
        if (tile) {
          this.tiles.delete(key);
          this.tiles.set(key, tile);
          this.drawTile(context, tile, level);
          drawn++;
        } else {
          this.drawPlaceholder(context, level, tileX, tileY);
          this.requestTile(key, level, tileX, tileY);
        }
      }
    }
    // Requests for tiles that left the view (or another level) are cancelled.
    this.cancelTiles((key) => !wanted.has(key));
    context.strokeStyle =
      cssVariable('--vscode-panel-border') || cssVariable('--vscode-widget-border');
    context.strokeRect(
      Math.round(-this.offsetX * this.scale) + 0.5,
      Math.round(-this.offsetY * this.scale) + 0.5,
      Math.round(info.cols * this.scale),
      Math.round(info.rows * this.scale),
    );
    const cellsPerPixel = 2 ** level;
    this.levelLabel.textContent = `level ${level} · ${cellsPerPixel === 1 ? '1 cell' : `${cellsPerPixel}×${cellsPerPixel} cells`} per pixel · ${formatStat(this.scale, 3)} px per cell`;
    this.levelLabel.dataset.level = String(level);
    this.canvas.dataset.level = String(level);
    this.canvas.dataset.tilesDrawn = String(drawn);
    this.canvas.dataset.tilesWanted = String(wanted.size);
    this.canvas.dataset.tileRequests = String(this.tileRequests);
  }

  private tileKey(level: number, tileX: number, tileY: number): string {
    return `${this.infoKey}|${level}|${tileX}|${tileY}`;
  }

  private tileScreenRect(
    level: number,
    tileX: number,
    tileY: number,
    width: number,
    height: number,
  ) {
    const span = 2 ** level;
    const size = this.info!.tileSize * span;
    const x = (tileX * size - this.offsetX) * this.scale;
    const y = (tileY * size - this.offsetY) * this.scale;
    return { x, y, width: width * span * this.scale, height: height * span * this.scale };
  }

  private drawTile(context: CanvasRenderingContext2D, drawn: DrawnTile, level: number): void {
    const { tile } = drawn;
    const rect = this.tileScreenRect(level, tile.tileX, tile.tileY, tile.width, tile.height);
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
      const parent = this.tiles.get(this.tileKey(coarser, tileX >> shift, tileY >> shift));
      if (!parent) continue;
      const part = info.tileSize >> shift;
      const sourceX = (tileX - ((tileX >> shift) << shift)) * part;
      const sourceY = (tileY - ((tileY >> shift) << shift)) * part;
      const width = Math.min(part, parent.tile.width - sourceX);
      const height = Math.min(part, parent.tile.height - sourceY);
      if (width <= 0 || height <= 0) return;
      const rect = this.tileScreenRect(coarser, 0, 0, width, height);
      const size = info.tileSize * 2 ** level;
      context.drawImage(
        parent.image,
        sourceX,
        sourceY,
        width,
        height,
        (tileX * size - this.offsetX) * this.scale,
        (tileY * size - this.offsetY) * this.scale,
        rect.width,
        rect.height,
      );
      return;
    }
  }

  private requestTile(key: string, level: number, tileX: number, tileY: number): void {
    if (this.inFlight.has(key) || !this.row) return;
    const controller = new AbortController();
    this.inFlight.set(key, controller);
    this.tileRequests++;
    const info = this.info!;
    this.api
      .heatmapTile(this.row.info.index, info.layer, level, tileX, tileY, controller.signal)
      .then(
        (tile) => {
          if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
          if (controller.signal.aborted || this.info !== info) return;
          const values = decodeTileValues(tile.values);
          this.tiles.set(key, { tile, values, image: this.paint(tile, values, info) });
          while (this.tiles.size > TILE_CACHE_SIZE)
            this.tiles.delete(this.tiles.keys().next().value as string);
          this.scheduleDraw();
        },
        (error: unknown) => {
          if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
          if (controller.signal.aborted || isCancellation(error)) return;
          this.setMessage(`A heatmap tile failed: ${requestErrorOf(error).message}`, true);
        },
      );
  }

  private cancelTiles(predicate: (key: string) => boolean): void {
    for (const [key, controller] of [...this.inFlight]) {
      if (!predicate(key)) continue;
      controller.abort();
      this.inFlight.delete(key);
    }
  }

  /** The tile's pixels in the layer's colours, on a canvas of the tile's own size. */
  private paint(tile: HeatmapTile, values: Float32Array, info: HeatmapInfo): HTMLCanvasElement {
    const image = document.createElement('canvas');
    image.width = Math.max(1, tile.width);
    image.height = Math.max(1, tile.height);
    const context = image.getContext('2d')!;
    const pixels = context.createImageData(image.width, image.height);
    const table = this.colourTable!;
    const position = colourPosition(info);
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (Number.isNaN(value)) continue;
      const entry = Math.round(position(value) * 255) * 4;
      pixels.data[i * 4] = table[entry]!;
      pixels.data[i * 4 + 1] = table[entry + 1]!;
      pixels.data[i * 4 + 2] = table[entry + 2]!;
      pixels.data[i * 4 + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
    return image;
  }

  /** The value under a canvas point, from the tile drawn there. */
  private describePoint(x: number, y: number): void {
    const info = this.info;
    if (!info) return;
    const level = this.level();
    const span = 2 ** level;
    const cellX = Math.floor(this.offsetX + x / this.scale);
    const cellY = Math.floor(this.offsetY + y / this.scale);
    if (cellX < 0 || cellY < 0 || cellX >= info.cols || cellY >= info.rows) {
      this.hover.textContent = '';
      return;
    }
    const pixelX = cellX >> level;
    const pixelY = cellY >> level;
    const tileX = Math.floor(pixelX / info.tileSize);
    const tileY = Math.floor(pixelY / info.tileSize);
    const drawn = this.tiles.get(this.tileKey(level, tileX, tileY));
    const rowStart = pixelY * span;
    const colStart = pixelX * span;
    const where =
      span === 1
        ? `row ${formatCount(cellY)}, column ${formatCount(cellX)}`
        : `rows ${formatCount(rowStart)}–${formatCount(Math.min(info.rows, rowStart + span) - 1)}, columns ${formatCount(colStart)}–${formatCount(Math.min(info.cols, colStart + span) - 1)}`;
    const value =
      drawn?.values[
        (pixelY - tileY * info.tileSize) * drawn.tile.width + (pixelX - tileX * info.tileSize)
      ];
    this.hover.textContent = `${where}: ${value === undefined ? '…' : describeValue(info, value)}`;
  }

  private renderLegend(info: HeatmapInfo): void {
    const gradient = element('canvas', {
      className: 'll-legend-gradient',
      attrs: { width: LEGEND_WIDTH, height: 10 },
    });
    const context = gradient.getContext('2d');
    const table = this.colourTable!;
    if (context) {
      for (let x = 0; x < LEGEND_WIDTH; x++) {
        const entry = Math.round((x / (LEGEND_WIDTH - 1)) * 255) * 4;
        context.fillStyle = `rgb(${table[entry]},${table[entry + 1]},${table[entry + 2]})`;
        context.fillRect(x, 0, 1, 10);
      }
    }
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

  private renderStructured(structured: StructuredSparsity): void {
    const share = (count: number, total: number) =>
      `${formatCount(count)} of ${formatCount(total)} (${formatPercent(total > 0 ? count / total : 0)})`;
    const entries: [string, string | Node][] = [
      ['All-zero rows', share(structured.zeroRows, structured.rows)],
      ['All-zero columns', share(structured.zeroCols, structured.cols)],
    ];
    if (structured.channels) {
      const { outChannels, zeroOutChannels, inChannels, zeroInChannels } = structured.channels;
      entries.push(
        ['All-zero output channels', share(zeroOutChannels, outChannels)],
        ['All-zero input channels', share(zeroInChannels, inChannels)],
      );
    }
    const compliance = structured.groups > 0 ? structured.compliantGroups / structured.groups : 0;
    entries.push([
      `${structured.n}:${structured.m}-compliant groups`,
      element('span', {
        text: share(structured.compliantGroups, structured.groups),
        attrs: { 'data-testid': 'nm-compliance', 'data-value': compliance },
      }),
    ]);
    this.structured.replaceChildren(
      element('h3', { className: 'll-subsection-title', text: 'Structured sparsity' }),
      definitionList(entries, 'll-facts ll-stats-list'),
    );
  }
}

function legendRange(info: HeatmapInfo): [number, number] {
  if (info.layer.kind === 'zeros' || info.layer.kind === 'nm') return [0, 1];
  if (info.layer.kind === 'int4') return [0, info.max > 0 ? info.max : 1];
  // Four decades below the largest magnitude: tinier values share the lowest colour.
  const high = Math.max(info.max, 1e-30);
  return [Math.max(info.min > 0 ? info.min : 0, high * LOG_DECADES_SHOWN), high];
}

/** Where a value falls on the layer's colour scale, 0…1. */
function colourPosition(info: HeatmapInfo): (value: number) => number {
  const [low, high] = legendRange(info);
  if (info.scale === 'log') {
    const logLow = Math.log10(low);
    const range = Math.max(1e-9, Math.log10(high) - logLow);
    return (value) =>
      value > 0 ? Math.min(1, Math.max(0, (Math.log10(value) - logLow) / range)) : 0;
  }
  return (value) => Math.min(1, Math.max(0, (value - low) / (high - low)));
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

function cssVariable(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** 256 RGBA entries running through the theme colours `variables`. */
function colourTable(variables: readonly string[]): Uint8ClampedArray {
  const fallback = cssVariable('--vscode-editor-foreground') || 'gray';
  const stops = variables.map((name) => cssVariable(name) || fallback);
  const interpolate = interpolateRgbBasis(stops);
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const rgb = color(interpolate(i / 255))?.rgb();
    table[i * 4] = rgb?.r ?? 128;
    table[i * 4 + 1] = rgb?.g ?? 128;
    table[i * 4 + 2] = rgb?.b ?? 128;
    table[i * 4 + 3] = 255;
  }
  return table;
}

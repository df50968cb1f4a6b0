/**
 * The heatmap's quantization grid: for a tensor stored as ggml blocks (GGUF), one cell per
 * block coloured by the block's scale d (K-quants: the super-block's), from the server's
 * layerlens/blockScales. The whole grid is one image, stretched over the view.
 */
import { formatCount, formatStat } from '../../../../src/shared/format';
import { decodeTileValues, type BlockScaleGrid } from '../../../../src/shared/heatmap';
import { isCancellation, requestErrorOf, type ModelApi } from '../../platform/api';
import { element } from '../../platform/dom';
import type { TensorRow } from '../../table/tensorRows';
import { colourTable } from './colours';
import { LatestRequest } from './requests';

const SCALE_COLOURS = [
  '--vscode-charts-blue',
  '--vscode-editor-background',
  '--vscode-charts-orange',
];

/** Whether the server reads the tensor's block scales (decoded ggml block types). */
export function hasBlockScales(row: TensorRow | undefined): boolean {
  return row?.info.encoding?.blockScales === true;
}

export class BlockScaleView {
  readonly element: HTMLElement;
  private readonly message: HTMLParagraphElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly legend: HTMLParagraphElement;
  private readonly hover: HTMLParagraphElement;
  private readonly request = new LatestRequest();
  private index: number | null = null;
  private grid: { info: BlockScaleGrid; values: Float32Array } | null = null;

  constructor(private readonly api: ModelApi) {
    this.message = element('p', { className: 'll-detail-message' });
    this.canvas = element('canvas', {
      className: 'll-block-scales-canvas',
      attrs: {
        'data-testid': 'heatmap-block-scales',
        'aria-label': 'Quantization grid: the scale of every block of the tensor',
      },
    });
    this.legend = element('p', {
      className: 'll-heatmap-hover',
      attrs: { 'data-testid': 'heatmap-block-scales-legend' },
    });
    this.hover = element('p', { className: 'll-heatmap-hover' });
    this.canvas.addEventListener('pointermove', (event) => {
      const box = this.canvas.getBoundingClientRect();
      this.describePoint(
        (event.clientX - box.left) / Math.max(1, box.width),
        (event.clientY - box.top) / Math.max(1, box.height),
      );
    });
    this.element = element('div', { attrs: { 'data-testid': 'heatmap-block-scales-view' } }, [
      this.message,
      element('div', { className: 'll-heatmap-view' }, [this.canvas]),
      this.legend,
      this.hover,
    ]);
  }

  /** Show the grid of `row` (asked for once per tensor). */
  show(row: TensorRow): void {
    const { index } = row.info;
    if (index === this.index) return;
    this.index = index;
    this.grid = null;
    this.setMessage('Reading the block scales…');
    const controller = this.request.start();
    this.api.request('blockScales', { index }, controller.signal).then(
      (info) => {
        if (!this.request.finish(controller)) return;
        this.grid = { info, values: decodeTileValues(info.values) };
        this.paint();
      },
      (error: unknown) => {
        if (controller.signal.aborted || isCancellation(error)) return;
        this.request.finish(controller);
        this.index = null;
        this.setMessage(`No quantization grid: ${requestErrorOf(error).message}`, true);
      },
    );
  }

  /** Forget the tensor (another row): its request is cancelled. */
  reset(): void {
    this.request.cancel();
    this.index = null;
    this.grid = null;
  }

  private setMessage(text: string | null, isError = false): void {
    this.message.hidden = text === null;
    this.message.textContent = text ?? '';
    this.message.classList.toggle('ll-detail-error', isError);
    this.canvas.hidden = text !== null;
    this.element.dataset.state = text === null ? 'ready' : isError ? 'error' : 'waiting';
  }

  private paint(): void {
    const { info, values } = this.grid!;
    this.canvas.width = Math.max(1, info.cols);
    this.canvas.height = Math.max(1, info.rows);
    const context = this.canvas.getContext('2d');
    if (context) {
      const pixels = context.createImageData(this.canvas.width, this.canvas.height);
      const table = colourTable(SCALE_COLOURS);
      // Signed scales are centred on zero: the background colour is d = 0.
      const extent = Math.max(Math.abs(info.min), Math.abs(info.max)) || 1;
      for (let i = 0; i < values.length; i++) {
        const entry = Math.round(((values[i]! / extent + 1) / 2) * 255) * 4;
        pixels.data.set(table.subarray(entry, entry + 4), i * 4);
      }
      context.putImageData(pixels, 0, 0);
    }
    const pooled =
      info.rowsPerCell > 1 ? `, ${formatCount(info.rowsPerCell)} rows per cell (mean)` : '';
    this.legend.textContent = `${info.scheme} block scales d: ${formatCount(info.rows)} × ${formatCount(info.cols)} blocks of ${info.blockSize} weights${pooled} · from ${formatStat(info.min, 3)} to ${formatStat(info.max, 3)}`;
    this.hover.textContent = '';
    this.setMessage(null);
  }

  /** The block under a point given as fractions of the canvas's width and height. */
  private describePoint(x: number, y: number): void {
    if (!this.grid) return;
    const { info, values } = this.grid;
    const col = Math.min(info.cols - 1, Math.max(0, Math.floor(x * info.cols)));
    const row = Math.min(info.rows - 1, Math.max(0, Math.floor(y * info.rows)));
    const firstRow = row * info.rowsPerCell;
    const rows =
      info.rowsPerCell > 1
        ? `rows ${formatCount(firstRow)}–${formatCount(Math.min(info.matrixRows, firstRow + info.rowsPerCell) - 1)}`
        : `row ${formatCount(firstRow)}`;
    const columns = `columns ${formatCount(col * info.blockSize)}–${formatCount((col + 1) * info.blockSize - 1)}`;
    this.hover.textContent = `${rows}, ${columns}: d ${formatStat(values[row * info.cols + col]!)}`;
  }
}

/**
 * Where the heatmap's canvas looks: screen pixels per matrix cell and the matrix cell at the
 * canvas's top-left corner, with zooming, panning, the zoom level to draw and the tiles in
 * view. Plain numbers only (no DOM), so that it runs in Node's tests too.
 */
import { tileGrid } from '../../../../src/shared/heatmap';

/** Each zoom step scales by this factor (in or out). */
export const ZOOM_STEP = 1.5;
/** Most screen pixels one matrix cell may cover. */
export const MAX_CELL_PIXELS = 32;
/** Screen pixels an arrow key pans by. */
export const PAN_STEP_PIXELS = 40;

/** The matrix and its tile pyramid, as the server describes them. */
export interface MatrixGrid {
  readonly rows: number;
  readonly cols: number;
  readonly tileSize: number;
  readonly maxLevel: number;
}

/** Tiles of one level in view, row by row (tileY outer, tileX inner). */
export interface VisibleTiles {
  readonly level: number;
  readonly tiles: readonly { readonly tileX: number; readonly tileY: number }[];
}

/** A rectangle in canvas pixels. */
export interface ScreenRect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Where a canvas point falls: its matrix cell, and the pixel and tile of `level` covering it. */
export interface CellLocation {
  readonly cellX: number;
  readonly cellY: number;
  readonly level: number;
  /** Matrix cells per side of one pixel of `level`. */
  readonly span: number;
  readonly pixelX: number;
  readonly pixelY: number;
  readonly tileX: number;
  readonly tileY: number;
  /** The pixel's place in its tile, column and row. */
  readonly inTileX: number;
  readonly inTileY: number;
}

/** Where a drag started: the pointer and the view's offset then. */
export interface DragStart {
  readonly x: number;
  readonly y: number;
  readonly offsetX: number;
  readonly offsetY: number;
}

export class Viewport {
  /** Screen pixels per matrix cell. */
  scale = 1;
  /** The matrix column and row at the canvas's top-left corner. */
  offsetX = 0;
  offsetY = 0;

  /** The zoom level whose pixels are closest to (not smaller than) a screen pixel. */
  level(maxLevel: number): number {
    const level = Math.floor(Math.log2(1 / this.scale) + 1e-9);
    return Math.max(0, Math.min(maxLevel, level));
  }

  /** The whole matrix in a `width` × `height` canvas, centred, cells at most MAX_CELL_PIXELS. */
  fit(matrix: MatrixGrid, width: number, height: number): void {
    this.scale = Math.min(width / matrix.cols, height / matrix.rows, MAX_CELL_PIXELS);
    this.offsetX = -(width / this.scale - matrix.cols) / 2;
    this.offsetY = -(height / this.scale - matrix.rows) / 2;
  }

  /**
   * Zoom by `factor` keeping the matrix point under (x, y) in place; the scale stays between
   * half the fitted scale (at most 1) and MAX_CELL_PIXELS.
   */
  zoomAt(
    matrix: MatrixGrid,
    factor: number,
    x: number,
    y: number,
    width: number,
    height: number,
  ): void {
    const fitScale = Math.min(width / matrix.cols, height / matrix.rows);
    const next = Math.max(
      Math.min(fitScale / 2, 1),
      Math.min(MAX_CELL_PIXELS, this.scale * factor),
    );
    const cellX = this.offsetX + x / this.scale;
    const cellY = this.offsetY + y / this.scale;
    this.scale = next;
    this.offsetX = cellX - x / next;
    this.offsetY = cellY - y / next;
  }

  /** Move the view by whole steps of PAN_STEP_PIXELS (negative: left or up). */
  panSteps(stepsX: number, stepsY: number): void {
    const step = PAN_STEP_PIXELS / this.scale;
    if (stepsX !== 0) this.offsetX += stepsX * step;
    if (stepsY !== 0) this.offsetY += stepsY * step;
  }

  startDrag(x: number, y: number): DragStart {
    return { x, y, offsetX: this.offsetX, offsetY: this.offsetY };
  }

  /** The pointer moved to (x, y) since `drag` started: the matrix follows it. */
  dragTo(drag: DragStart, x: number, y: number): void {
    this.offsetX = drag.offsetX - (x - drag.x) / this.scale;
    this.offsetY = drag.offsetY - (y - drag.y) / this.scale;
  }

  /** The tiles of the current level that a `width` × `height` canvas shows. */
  visibleTiles(matrix: MatrixGrid, width: number, height: number): VisibleTiles {
    const level = this.level(matrix.maxLevel);
    const span = matrix.tileSize * 2 ** level;
    const { tilesX, tilesY } = tileGrid(matrix.rows, matrix.cols, level, matrix.tileSize);
    const firstX = Math.max(0, Math.floor(this.offsetX / span));
    const firstY = Math.max(0, Math.floor(this.offsetY / span));
    const lastX = Math.min(tilesX - 1, Math.floor((this.offsetX + width / this.scale) / span));
    const lastY = Math.min(tilesY - 1, Math.floor((this.offsetY + height / this.scale) / span));
    const tiles: { tileX: number; tileY: number }[] = [];
    for (let tileY = firstY; tileY <= lastY; tileY++) {
      for (let tileX = firstX; tileX <= lastX; tileX++) tiles.push({ tileX, tileY });
    }
    return { level, tiles };
  }

  /**
   * Where `width` × `height` pixels of `level`, from the top-left corner of tile
   * (tileX, tileY), lie on the canvas.
   */
  tileRect(
    tileSize: number,
    level: number,
    tileX: number,
    tileY: number,
    width: number,
    height: number,
  ): ScreenRect {
    const span = 2 ** level;
    const size = tileSize * span;
    const x = (tileX * size - this.offsetX) * this.scale;
    const y = (tileY * size - this.offsetY) * this.scale;
    return { x, y, width: width * span * this.scale, height: height * span * this.scale };
  }

  /** The matrix's outline on the canvas, rounded to whole pixels. */
  matrixRect(matrix: MatrixGrid): ScreenRect {
    return {
      x: Math.round(-this.offsetX * this.scale) + 0.5,
      y: Math.round(-this.offsetY * this.scale) + 0.5,
      width: Math.round(matrix.cols * this.scale),
      height: Math.round(matrix.rows * this.scale),
    };
  }

  /** The cell, pixel and tile under canvas point (x, y); null off the matrix. */
  locate(matrix: MatrixGrid, x: number, y: number): CellLocation | null {
    const level = this.level(matrix.maxLevel);
    const span = 2 ** level;
    const cellX = Math.floor(this.offsetX + x / this.scale);
    const cellY = Math.floor(this.offsetY + y / this.scale);
    if (cellX < 0 || cellY < 0 || cellX >= matrix.cols || cellY >= matrix.rows) return null;
    const pixelX = cellX >> level;
    const pixelY = cellY >> level;
    const tileX = Math.floor(pixelX / matrix.tileSize);
    const tileY = Math.floor(pixelY / matrix.tileSize);
    return {
      cellX,
      cellY,
      level,
      span,
      pixelX,
      pixelY,
      tileX,
      tileY,
      inTileX: pixelX - tileX * matrix.tileSize,
      inTileY: pixelY - tileY * matrix.tileSize,
    };
  }
}

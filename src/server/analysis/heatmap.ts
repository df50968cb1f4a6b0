/**
 * Heatmap tiles of a weight matrix, computed without ever holding the matrix as pixels:
 *
 * - per-cell values of a layer (|w|, zero mask, N:M violations, int4 block error) for any
 *   block of rows and a column range aligned to the layer's groups;
 * - a pooled pyramid: one pass over the whole matrix sums the cell values into pixels of
 *   2^P × 2^P cells (P chosen so the base holds at most PYRAMID_MAX_PIXELS), with the
 *   structured-sparsity counts and the value range gathered in the same pass; coarser
 *   levels are sums of 2 × 2 pixels of the level below;
 * - tiles: from the pyramid at levels ≥ P, from the rows they cover at finer levels.
 *
 * Every pixel is the mean of the cell values it covers (partial pixels at the edges too).
 */
import {
  DEFAULT_NM,
  HEATMAP_TILE_SIZE,
  maxHeatmapLevel,
  type HeatmapLayer,
  type StructuredSparsity,
} from '../../shared/heatmap';

export type MatrixValues = Float32Array | Float64Array;

/**
 * Pixels of the pyramid's finest stored level. 4096² float32 sums are 64 MB (all levels of
 * a 16384² matrix about 85 MB); with it, no tile of a matrix up to 16384² covers more than
 * 512 × 512 cells that must be read again.
 */
export const PYRAMID_MAX_PIXELS = 4096 * 4096;

/** Values of rows [rowStart, rowEnd) and columns [colStart, colEnd), row-major. */
export interface MatrixReader {
  readonly rows: number;
  readonly cols: number;
  read(rowStart: number, rowEnd: number, colStart: number, colEnd: number): MatrixValues;
}

/** Columns per group of the layer: values of one group depend on each other. */
export function layerGroupSize(layer: HeatmapLayer): number {
  if (layer.kind === 'nm') return layer.m;
  if (layer.kind === 'int4') return layer.block;
  return 1;
}

/** Symmetric absmax int4 levels: q ∈ [−8, 7], scale = absmax / 7. */
const INT4_MAX_LEVEL = 7;
const INT4_MIN_LEVEL = -8;

/**
 * Writes the layer's value of every cell of a `rowCount` × `width` block into `out`.
 * The block's first column must be a multiple of the layer's group size, and it must end
 * at a group boundary or at the matrix's last column.
 */
export function cellValues(
  layer: HeatmapLayer,
  values: MatrixValues,
  rowCount: number,
  width: number,
  out: Float32Array,
): void {
  const total = rowCount * width;
  switch (layer.kind) {
    case 'magnitude':
      for (let i = 0; i < total; i++) {
        const magnitude = Math.abs(values[i]!);
        out[i] = magnitude < Infinity ? magnitude : 0;
      }
      return;
    case 'zeros':
      for (let i = 0; i < total; i++) out[i] = values[i] === 0 ? 1 : 0;
      return;
    case 'nm':
      for (let row = 0; row < rowCount; row++) {
        const base = row * width;
        for (let start = 0; start < width; start += layer.m) {
          const end = Math.min(width, start + layer.m);
          let nonzeros = 0;
          for (let i = base + start; i < base + end; i++) if (values[i] !== 0) nonzeros++;
          const violating = nonzeros > layer.n ? 1 : 0;
          for (let i = base + start; i < base + end; i++) out[i] = violating;
        }
      }
      return;
    case 'int4':
      for (let row = 0; row < rowCount; row++) {
        const base = row * width;
        for (let start = 0; start < width; start += layer.block) {
          const end = Math.min(width, start + layer.block);
          const error = int4BlockError(values, base + start, base + end);
          for (let i = base + start; i < base + end; i++) out[i] = error;
        }
      }
      return;
  }
}

/** ‖w − ŵ‖ / ‖w‖ over values[start, end) after a symmetric absmax int4 round trip (0 for an all-zero block). */
export function int4BlockError(values: MatrixValues, start: number, end: number): number {
  let absmax = 0;
  for (let i = start; i < end; i++) {
    const magnitude = Math.abs(values[i]!);
    if (magnitude > absmax && magnitude < Infinity) absmax = magnitude;
  }
  if (absmax === 0) return 0;
  const scale = absmax / INT4_MAX_LEVEL;
  let error = 0;
  let norm = 0;
  for (let i = start; i < end; i++) {
    const value = values[i]!;
    if (!(Math.abs(value) < Infinity)) continue;
    const level = Math.min(INT4_MAX_LEVEL, Math.max(INT4_MIN_LEVEL, Math.round(value / scale)));
    const difference = value - level * scale;
    error += difference * difference;
    norm += value * value;
  }
  return norm > 0 ? Math.sqrt(error / norm) : 0;
}

/** Sums of cell values per pixel over a window of pixels at one level. */
export interface PixelSums {
  readonly level: number;
  /** Pixel coordinates of the window's top-left pixel. */
  readonly pixelX: number;
  readonly pixelY: number;
  readonly width: number;
  readonly height: number;
  /** Float32 in stored pyramid levels (a pixel's mean needs no more), float64 while a tile is pooled. */
  readonly sums: Float32Array | Float64Array;
}

/**
 * Adds cell values of a block (rows from `rowStart`, columns from `colStart`, `width`
 * wide) to the pixels of `target`, skipping cells outside [clipStart, clipEnd) columns.
 */
function poolInto(
  target: PixelSums,
  cells: Float32Array,
  rowStart: number,
  rowCount: number,
  colStart: number,
  width: number,
  clipStart: number,
  clipEnd: number,
): void {
  const shift = target.level;
  const from = Math.max(colStart, clipStart) - colStart;
  const to = Math.min(colStart + width, clipEnd) - colStart;
  for (let row = 0; row < rowCount; row++) {
    const pixelRow = ((rowStart + row) >>> shift) - target.pixelY;
    if (pixelRow < 0 || pixelRow >= target.height) continue;
    const sumsBase = pixelRow * target.width - target.pixelX;
    const cellBase = row * width;
    if (shift === 0) {
      for (let i = from; i < to; i++) target.sums[sumsBase + colStart + i]! += cells[cellBase + i]!;
      continue;
    }
    for (let i = from; i < to; i++) {
      target.sums[sumsBase + ((colStart + i) >>> shift)]! += cells[cellBase + i]!;
    }
  }
}

/** Cells a pixel at (x, y) of `level` covers (fewer at the matrix's right and bottom edges). */
export function pixelCellCount(
  rows: number,
  cols: number,
  level: number,
  x: number,
  y: number,
): number {
  const span = 2 ** level;
  return Math.min(span, cols - x * span) * Math.min(span, rows - y * span);
}

/** Mean per pixel of a window of sums, as float32. */
export function pixelMeans(sums: PixelSums, rows: number, cols: number): Float32Array {
  const means = new Float32Array(sums.width * sums.height);
  for (let y = 0; y < sums.height; y++) {
    for (let x = 0; x < sums.width; x++) {
      const count = pixelCellCount(rows, cols, sums.level, sums.pixelX + x, sums.pixelY + y);
      means[y * sums.width + x] = count > 0 ? sums.sums[y * sums.width + x]! / count : NaN;
    }
  }
  return means;
}

/** The pyramid's finest stored level for a matrix: the first whose pixels fit PYRAMID_MAX_PIXELS. */
export function pyramidBaseLevel(
  rows: number,
  cols: number,
  maxPixels = PYRAMID_MAX_PIXELS,
): number {
  let level = 0;
  while (Math.ceil(rows / 2 ** level) * Math.ceil(cols / 2 ** level) > maxPixels) level++;
  return level;
}

export interface PyramidBase {
  readonly sums: PixelSums;
  /** Range of the cell values (magnitude: smallest non-zero and largest finite |w|). */
  readonly min: number;
  readonly max: number;
  readonly structured: StructuredSparsity;
}

export interface PyramidOptions {
  readonly maxPixels?: number;
  /** Rows read at a time are chosen to hold about this many values. */
  readonly bandValues?: number;
  /** Shape of the tensor, for channel counts of convolution kernels. */
  readonly shape?: readonly number[];
  /** Polled between bands; throw to stop. */
  readonly checkCancelled?: () => void;
}

/**
 * What one pass over rows [rowStart, rowEnd) of the matrix gathers: the pyramid base's
 * pixel rows for them, the value range and the structured-sparsity counts.
 */
export interface PyramidPart {
  readonly sums: PixelSums;
  readonly min: number;
  readonly max: number;
  readonly zeroRows: number;
  readonly groups: number;
  readonly compliantGroups: number;
  /** 1 for every column with a non-zero value in these rows. */
  readonly nonzeroColumns: Uint8Array;
}

/**
 * Row ranges for `count` passes that can run side by side: whole pixel rows of the
 * pyramid's base each, in order.
 */
export function pyramidRowRanges(
  rows: number,
  cols: number,
  count: number,
  maxPixels?: number,
): [number, number][] {
  const span = 2 ** pyramidBaseLevel(rows, cols, maxPixels);
  const pixelRows = Math.ceil(rows / span);
  const perPart = Math.ceil(pixelRows / Math.max(1, count));
  const ranges: [number, number][] = [];
  for (let start = 0; start < pixelRows; start += perPart) {
    ranges.push([start * span, Math.min(rows, (start + perPart) * span)]);
  }
  return ranges;
}

/**
 * One pass over rows [rowStart, rowEnd) (rowStart a multiple of the base's pixel span):
 * the pyramid base's pixels of `layer` for those rows, the layer's value range, and the
 * structured-sparsity counts (N:M with the layer's n:m, else 2:4).
 */
export function buildPyramidPart(
  reader: MatrixReader,
  layer: HeatmapLayer,
  rowStart: number,
  rowEnd: number,
  options: PyramidOptions = {},
): PyramidPart {
  const { rows, cols } = reader;
  const level = pyramidBaseLevel(rows, cols, options.maxPixels);
  const span = 2 ** level;
  if (rowStart % span !== 0) throw new RangeError(`row ${rowStart} does not start a pixel row`);
  const width = Math.ceil(cols / span);
  const height = Math.ceil((rowEnd - rowStart) / span);
  const sums: PixelSums = {
    level,
    pixelX: 0,
    pixelY: rowStart / span,
    width,
    height,
    sums: new Float32Array(width * height),
  };
  const nm = layer.kind === 'nm' ? { n: layer.n, m: layer.m } : DEFAULT_NM;
  const bandValues = options.bandValues ?? 4 * 1024 * 1024;
  const bandRows = Math.max(span, Math.floor(bandValues / Math.max(1, cols) / span) * span);
  // One row at a time through every step, so that its cells stay in the cache.
  const rowCells = new Float32Array(cols);
  const nonzeroColumns = new Uint8Array(cols);
  const positiveOnly = layer.kind === 'magnitude';
  const pixelSums = sums.sums;
  let zeroRows = 0;
  let groups = 0;
  let compliantGroups = 0;
  let min = Infinity;
  let max = -Infinity;

  for (let bandStart = rowStart; bandStart < rowEnd; bandStart += bandRows) {
    options.checkCancelled?.();
    const bandEnd = Math.min(rowEnd, bandStart + bandRows);
    const values = reader.read(bandStart, bandEnd, 0, cols);
    for (let row = 0; row < bandEnd - bandStart; row++) {
      const rowValues = values.subarray(row * cols, (row + 1) * cols);
      cellValues(layer, rowValues, 1, cols, rowCells);
      const pixelBase = ((bandStart + row - rowStart) >>> level) * width;
      for (let col = 0; col < cols; col++) {
        const cell = rowCells[col]!;
        pixelSums[pixelBase + (col >>> level)]! += cell;
        if (cell > max) max = cell;
        if (cell < min && (cell > 0 || !positiveOnly)) min = cell;
      }
      let rowHasNonzero = false;
      for (let start = 0; start < cols; start += nm.m) {
        const end = Math.min(cols, start + nm.m);
        let nonzeros = 0;
        for (let col = start; col < end; col++) {
          if (rowValues[col] !== 0) {
            nonzeros++;
            nonzeroColumns[col] = 1;
          }
        }
        if (nonzeros > 0) rowHasNonzero = true;
        groups++;
        if (nonzeros <= nm.n) compliantGroups++;
      }
      if (!rowHasNonzero) zeroRows++;
    }
  }
  return { sums, min, max, zeroRows, groups, compliantGroups, nonzeroColumns };
}

/** The pyramid base of the whole matrix from passes over consecutive row ranges. */
export function mergePyramidParts(
  parts: readonly PyramidPart[],
  rows: number,
  cols: number,
  layer: HeatmapLayer,
  shape?: readonly number[],
): PyramidBase {
  const first = parts[0]!.sums;
  const span = 2 ** first.level;
  const height = Math.ceil(rows / span);
  // A single pass over every row already holds the whole base.
  const sums =
    parts.length === 1 && first.height === height
      ? first.sums
      : new Float32Array(first.width * height);
  const nonzeroColumns = new Uint8Array(cols);
  let zeroRows = 0;
  let groups = 0;
  let compliantGroups = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const part of parts) {
    if (part.sums.sums !== sums) sums.set(part.sums.sums, part.sums.pixelY * first.width);
    for (let col = 0; col < cols; col++) nonzeroColumns[col]! |= part.nonzeroColumns[col]!;
    zeroRows += part.zeroRows;
    groups += part.groups;
    compliantGroups += part.compliantGroups;
    min = Math.min(min, part.min);
    max = Math.max(max, part.max);
  }
  let zeroCols = 0;
  for (let col = 0; col < cols; col++) if (nonzeroColumns[col] === 0) zeroCols++;
  const nm = layer.kind === 'nm' ? { n: layer.n, m: layer.m } : DEFAULT_NM;
  return {
    sums: { level: first.level, pixelX: 0, pixelY: 0, width: first.width, height, sums },
    min: min === Infinity ? 0 : min,
    max: max === -Infinity ? 0 : max,
    structured: {
      rows,
      cols,
      zeroRows,
      zeroCols,
      channels: channelCounts(shape, rows, cols, nonzeroColumns, zeroRows),
      n: nm.n,
      m: nm.m,
      groups,
      compliantGroups,
    },
  };
}

/**
 * One pass over the whole matrix: the pyramid's base level of `layer`, the layer's value
 * range, and the structured sparsity (N:M counted with the layer's n:m, else 2:4).
 */
export function buildPyramidBase(
  reader: MatrixReader,
  layer: HeatmapLayer,
  options: PyramidOptions = {},
): PyramidBase {
  const part = buildPyramidPart(reader, layer, 0, reader.rows, options);
  return mergePyramidParts([part], reader.rows, reader.cols, layer, options.shape);
}

/** Output and input channels of a convolution kernel [out, in, k…] whose weights are all zero. */
function channelCounts(
  shape: readonly number[] | undefined,
  rows: number,
  cols: number,
  nonzeroColumns: Uint8Array,
  zeroRows: number,
): StructuredSparsity['channels'] {
  if (!shape || shape.length < 3 || shape[0] !== rows) return null;
  const inChannels = shape[1]!;
  const kernel = cols / inChannels;
  if (!Number.isInteger(kernel)) return null;
  let zeroInChannels = 0;
  for (let channel = 0; channel < inChannels; channel++) {
    let allZero = true;
    for (let col = channel * kernel; col < (channel + 1) * kernel && allZero; col++) {
      if (nonzeroColumns[col] !== 0) allZero = false;
    }
    if (allZero) zeroInChannels++;
  }
  return { outChannels: rows, zeroOutChannels: zeroRows, inChannels, zeroInChannels };
}

/** The next coarser level of a full-matrix level: sums of 2 × 2 pixels. */
export function coarserLevel(finer: PixelSums): PixelSums {
  const width = Math.ceil(finer.width / 2);
  const height = Math.ceil(finer.height / 2);
  const sums = new Float32Array(width * height);
  for (let y = 0; y < finer.height; y++) {
    const target = (y >>> 1) * width;
    const source = y * finer.width;
    for (let x = 0; x < finer.width; x++) sums[target + (x >>> 1)]! += finer.sums[source + x]!;
  }
  return { level: finer.level + 1, pixelX: 0, pixelY: 0, width, height, sums };
}

/** Every level from the base to the one where the matrix fits a tile. */
export function pyramidLevels(
  base: PixelSums,
  rows: number,
  cols: number,
  tileSize = HEATMAP_TILE_SIZE,
): PixelSums[] {
  const levels = [base];
  const top = Math.max(base.level, maxHeatmapLevel(rows, cols, tileSize));
  while (levels[levels.length - 1]!.level < top) levels.push(coarserLevel(levels.at(-1)!));
  return levels;
}

/** A tile's window of pixels at `level`, cut from a full-matrix level. */
export function tileFromLevel(
  level: PixelSums,
  rows: number,
  cols: number,
  tileX: number,
  tileY: number,
  tileSize = HEATMAP_TILE_SIZE,
): { width: number; height: number; values: Float32Array } {
  const x0 = tileX * tileSize;
  const y0 = tileY * tileSize;
  const width = Math.max(0, Math.min(tileSize, level.width - x0));
  const height = Math.max(0, Math.min(tileSize, level.height - y0));
  const values = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const count = pixelCellCount(rows, cols, level.level, x0 + x, y0 + y);
      values[y * width + x] = level.sums[(y0 + y) * level.width + x0 + x]! / count;
    }
  }
  return { width, height, values };
}

/** A tile at a level finer than the pyramid's base, computed from the rows it covers. */
export function tileFromRows(
  reader: MatrixReader,
  layer: HeatmapLayer,
  level: number,
  tileX: number,
  tileY: number,
  tileSize = HEATMAP_TILE_SIZE,
): { width: number; height: number; values: Float32Array } {
  const { rows, cols } = reader;
  const span = 2 ** level;
  const rowStart = tileY * tileSize * span;
  const rowEnd = Math.min(rows, rowStart + tileSize * span);
  const colStart = tileX * tileSize * span;
  const colEnd = Math.min(cols, colStart + tileSize * span);
  if (rowStart >= rowEnd || colStart >= colEnd) {
    return { width: 0, height: 0, values: new Float32Array(0) };
  }
  const group = layerGroupSize(layer);
  const readStart = Math.floor(colStart / group) * group;
  const readEnd = Math.min(cols, Math.ceil(colEnd / group) * group);
  const width = readEnd - readStart;
  const sums: PixelSums = {
    level,
    pixelX: colStart / span,
    pixelY: rowStart / span,
    width: Math.ceil((colEnd - colStart) / span),
    height: Math.ceil((rowEnd - rowStart) / span),
    sums: new Float64Array(
      Math.ceil((colEnd - colStart) / span) * Math.ceil((rowEnd - rowStart) / span),
    ),
  };
  // Bands of rows keep the cell buffer small when a pixel covers many rows.
  const bandRows = Math.max(span, Math.floor((1 << 20) / width / span) * span);
  const cells = new Float32Array(Math.min(rowEnd - rowStart, bandRows) * width);
  for (let start = rowStart; start < rowEnd; start += bandRows) {
    const end = Math.min(rowEnd, start + bandRows);
    const values = reader.read(start, end, readStart, readEnd);
    cellValues(layer, values, end - start, width, cells);
    poolInto(sums, cells, start, end - start, readStart, width, colStart, colEnd);
  }
  return { width: sums.width, height: sums.height, values: pixelMeans(sums, rows, cols) };
}

/** A reader over values already in memory (row-major rows × cols). */
export function memoryMatrix(values: MatrixValues, rows: number, cols: number): MatrixReader {
  if (values.length < rows * cols) {
    throw new RangeError(
      `${rows} × ${cols} matrix needs ${rows * cols} values, got ${values.length}`,
    );
  }
  return {
    rows,
    cols,
    read(rowStart, rowEnd, colStart, colEnd) {
      if (colStart === 0 && colEnd === cols) return values.subarray(rowStart * cols, rowEnd * cols);
      const width = colEnd - colStart;
      const out = new (values instanceof Float32Array ? Float32Array : Float64Array)(
        (rowEnd - rowStart) * width,
      );
      for (let row = rowStart; row < rowEnd; row++) {
        out.set(
          values.subarray(row * cols + colStart, row * cols + colEnd),
          (row - rowStart) * width,
        );
      }
      return out;
    },
  };
}

/** A tile's pixel values as the protocol carries them (HeatmapTile.values; decodeTileValues reads them). */
export function encodeTileValues(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

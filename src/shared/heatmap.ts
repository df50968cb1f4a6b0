/**
 * Heatmaps of weight matrices, served as tiles, and the structured-sparsity numbers of a
 * tensor: the view-model types and the pure helpers the server and the webview share.
 *
 * A tensor is shown as the matrix `matrixShape` gives (the first dimension by the product
 * of the others, so a convolution kernel [out, in, kh, kw] is out × in·kh·kw). At zoom
 * level L one tile pixel covers a square of 2^L × 2^L cells; level 0 shows every cell.
 * A pixel is the mean of the per-cell values of the layer over the cells it covers.
 *
 * N:M groups and int4 blocks run along the matrix's columns: m (or block) consecutive
 * values of a row, which is consecutive memory, the input dimension of [out, in] layouts
 * (PyTorch Linear, Gemm with transB, LSTM/GRU, Conv).
 */

/** Tile side in pixels. */
export const HEATMAP_TILE_SIZE = 256;

export type Int4BlockSize = 32 | 128;

/** What a heatmap shows; each defines a value per cell, pooled by its mean. */
export type HeatmapLayer =
  /** |w|, coloured on a log scale. */
  | { readonly kind: 'magnitude' }
  /** 1 for an exact zero, else 0: a pixel is the fraction of zeros it covers. */
  | { readonly kind: 'zeros' }
  /** 1 for every value of a group of m with more than n non-zeros: a pixel is the violating fraction. */
  | { readonly kind: 'nm'; readonly n: number; readonly m: number }
  /**
   * ‖w − ŵ‖/‖w‖ of the value's block after a symmetric absmax int4 round trip
   * (scale = absmax/7, q = clamp(round(w/scale), −8, 7)).
   */
  | { readonly kind: 'int4'; readonly block: Int4BlockSize };

export const DEFAULT_NM = { n: 2, m: 4 } as const;

/** Largest m of an N:M pattern the server accepts. */
export const MAX_NM_GROUP = 64;

export interface StructuredSparsity {
  readonly rows: number;
  readonly cols: number;
  readonly zeroRows: number;
  readonly zeroCols: number;
  /** Convolution kernels (rank ≥ 3): output channels (filters) and input channels whose weights are all zero. */
  readonly channels: {
    readonly outChannels: number;
    readonly zeroOutChannels: number;
    readonly inChannels: number;
    readonly zeroInChannels: number;
  } | null;
  readonly n: number;
  readonly m: number;
  /** Groups of m consecutive values along a row (a shorter last group per row counts too). */
  readonly groups: number;
  /** Groups with at most n non-zeros. */
  readonly compliantGroups: number;
}

export interface HeatmapInfo {
  readonly index: number;
  readonly rows: number;
  readonly cols: number;
  readonly tileSize: number;
  /** Coarsest level: the whole matrix fits one tile there. */
  readonly maxLevel: number;
  readonly layer: HeatmapLayer;
  /** Colour scale of the layer: log for magnitudes, linear for fractions and errors. */
  readonly scale: 'log' | 'linear';
  /** Range of the per-cell values (magnitude: smallest non-zero and largest |w|). */
  readonly min: number;
  readonly max: number;
  readonly structured: StructuredSparsity;
  readonly elapsedMs: number;
}

export interface HeatmapTile {
  readonly level: number;
  readonly tileX: number;
  readonly tileY: number;
  /** Pixels of this tile (smaller than the tile size at the matrix's right and bottom edges). */
  readonly width: number;
  readonly height: number;
  /** Base64 of a little-endian Float32Array of width·height pixel values, row by row. */
  readonly values: string;
  readonly elapsedMs: number;
}

/**
 * The quantization grid of a block-quantized tensor (GGUF): the scale d of every block
 * (K-quants: of every super-block), one cell per block, `cols` blocks across each row of
 * the tensor's matrix. Grids with more than MAX_BLOCK_SCALE_CELLS cells pool
 * `rowsPerCell` consecutive rows into one grid row (the mean of their scales).
 */
export interface BlockScaleGrid {
  readonly index: number;
  /** The block type (`Q4_K`…) and its weights per block. */
  readonly scheme: string;
  readonly blockSize: number;
  readonly rows: number;
  readonly cols: number;
  readonly rowsPerCell: number;
  /** Rows of the tensor's matrix (rows · rowsPerCell or fewer: the last cell may pool fewer). */
  readonly matrixRows: number;
  /** Range of the cells' values. */
  readonly min: number;
  readonly max: number;
  /** Base64 of a little-endian Float32Array of rows·cols cell values, row by row. */
  readonly values: string;
}

/** The matrix a tensor is shown as: leading 1-dimensions dropped, then shape[0] × the rest. */
export function matrixShape(shape: readonly number[]): { rows: number; cols: number } | null {
  let dims = [...shape];
  while (dims.length > 2 && dims[0] === 1) dims = dims.slice(1);
  if (dims.length < 2) return null;
  return { rows: dims[0]!, cols: dims.slice(1).reduce((product, dim) => product * dim, 1) };
}

/** Coarsest level for a matrix: the level at which it fits one tile. */
export function maxHeatmapLevel(rows: number, cols: number, tileSize = HEATMAP_TILE_SIZE): number {
  let level = 0;
  while (Math.max(rows, cols) > tileSize * 2 ** level) level++;
  return level;
}

/** Tiles across and down at `level`. */
export function tileGrid(
  rows: number,
  cols: number,
  level: number,
  tileSize = HEATMAP_TILE_SIZE,
): { tilesX: number; tilesY: number } {
  const span = tileSize * 2 ** level;
  return { tilesX: Math.ceil(cols / span), tilesY: Math.ceil(rows / span) };
}

/** Stable text key of a layer, for caches. */
export function heatmapLayerKey(layer: HeatmapLayer): string {
  switch (layer.kind) {
    case 'magnitude':
    case 'zeros':
      return layer.kind;
    case 'nm':
      return `nm${layer.n}:${layer.m}`;
    case 'int4':
      return `int4/${layer.block}`;
  }
}

/** Decode a tile's pixel values. */
export function decodeTileValues(base64: string): Float32Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer, 0, bytes.byteLength >> 2);
}

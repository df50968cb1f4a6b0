/**
 * Spectra and heatmaps of model tensors, over the models ModelService opens: loads a
 * tensor's values, runs the computation (heatmap pyramids in worker threads), and caches
 * results per (file, file identity, tensor, parameters). Requests asking for the same
 * result while it is computed share one computation; each can be cancelled on its own.
 */
import { availableParallelism } from 'node:os';
import {
  HEATMAP_TILE_SIZE,
  heatmapLayerKey,
  MAX_NM_GROUP,
  maxHeatmapLevel,
  tileGrid,
  type BlockScaleGrid,
  type HeatmapInfo,
  type HeatmapLayer,
  type HeatmapTile,
  type StructuredSparsity,
} from '../shared/heatmap';
import type { ComputeBackend } from '../shared/settings';
import {
  AUTO_SPECTRUM_MAX_ELEMENTS,
  hasSpectralMetrics,
  SPECTRUM_METHODS,
  type Spectrum,
  type SpectrumMethod,
  type SpectrumOptions,
} from '../shared/spectrum';
import { blockScaleGrid } from './analysis/blockScales';
import { tensorCodes } from './analysis/codes';
import type { TensorCodes } from '../shared/model';
import {
  encodeTileValues,
  memoryMatrix,
  mergePyramidParts,
  pyramidLevels,
  pyramidRowRanges,
  tileFromLevel,
  tileFromRows,
  type MatrixValues,
  type PixelSums,
  type PyramidPart,
} from './analysis/heatmap';
import type { SpectrumSettings } from './analysis/spectrum';
import { disposeSpectrumWorker, spectrumOf } from './jobs/computeSpectrum';
import {
  fileMatrix,
  loadMemoryBytes,
  loadTensorValues,
  matrixFileSource,
  matrixValues,
  storedRowBytes,
  tensorMatrixShape,
  type TensorMatrixShape,
} from './analysis/tensorMatrix';
import type { TensorEntry } from './formats/types';
import { createPyramidPool, type PyramidJob } from './jobs/heatmapJobs';
import { SharedJobs } from './jobs/sharedJobs';
import type { WorkerPool } from './jobs/workerPool';
import type { ModelService } from './modelService';

/** Spectra kept (each at most a few thousand numbers). */
const SPECTRUM_CACHE_ENTRIES = 512;
/** Matrices from this many values on are split over the pyramid workers. */
const SPLIT_PYRAMID_ELEMENTS = 4 * 1024 * 1024;
/** Pyramids kept; one of a 16384² matrix holds about 85 MB of sums. */
const PYRAMID_CACHE_ENTRIES = 4;

export interface AnalysisServiceOptions {
  /** Worker threads building heatmap pyramids (one per core, at most 4, by default). */
  readonly pyramidWorkers?: number;
  /** `layerlens.compute.backend`: where the spectra's matrix products run. */
  readonly computeBackend?: ComputeBackend;
  /** `layerlens.spectrum.method`: what a request for the 'auto' method (or none) gets. */
  readonly spectrumMethod?: SpectrumMethod;
  /** Pixel budget of a heatmap pyramid's finest stored level (PYRAMID_MAX_PIXELS by default). */
  readonly pyramidMaxPixels?: number;
}

interface Pyramid {
  readonly matrix: TensorMatrixShape;
  readonly levels: readonly PixelSums[];
  readonly min: number;
  readonly max: number;
  readonly structured: StructuredSparsity;
  /** Where tiles finer than the pyramid's base read their rows (null when the base is level 0). */
  readonly source:
    | { readonly kind: 'file'; readonly path: string; readonly offset: number }
    | { readonly kind: 'memory'; readonly values: MatrixValues }
    | null;
  readonly elapsedMs: number;
}

export class AnalysisService {
  private readonly spectra = new SharedJobs<Spectrum>(SPECTRUM_CACHE_ENTRIES);
  private readonly pyramids = new SharedJobs<Pyramid>(PYRAMID_CACHE_ENTRIES);
  private pool: WorkerPool<PyramidJob, PyramidPart> | undefined;
  private computeBackend: ComputeBackend;
  private spectrumMethod: SpectrumMethod;

  constructor(
    private readonly models: ModelService,
    private readonly options: AnalysisServiceOptions = {},
  ) {
    this.computeBackend = options.computeBackend ?? 'cpu';
    this.spectrumMethod = options.spectrumMethod ?? 'auto';
  }

  /** What later 'auto' spectra compute (cached ones are keyed by the method they resolved to). */
  setSpectrumMethod(method: SpectrumMethod): void {
    this.spectrumMethod = method;
  }

  /** Where later spectra run; cached spectra are keyed by backend, so none is reused wrongly. */
  setComputeBackend(backend: ComputeBackend): void {
    this.computeBackend = backend;
  }

  /** Singular values and spectral metrics of one tensor (2-D or more, floating point). */
  async spectrum(
    path: string,
    index: number,
    options: SpectrumOptions = {},
    signal?: AbortSignal,
  ): Promise<Spectrum> {
    const { identity, entry } = await this.models.tensorEntry(path, index);
    // 'auto' (or no method) is what the setting says: 'fast' makes it the fast method.
    const method = options.method ?? 'auto';
    const normalized = normalizeSpectrumOptions({
      ...options,
      method: method === 'auto' ? this.spectrumMethod : method,
    });
    const settings: SpectrumSettings = { backend: this.computeBackend };
    const key = `${cachePrefix(path)}${identity}\n${index}\n${JSON.stringify([normalized, settings])}`;
    return this.spectra.get(
      key,
      (jobSignal) => computeSpectrum(entry, normalized, settings, jobSignal),
      signal,
    );
  }

  /**
   * The effective rank of a tensor small enough to compute without being asked
   * (AUTO_SPECTRUM_MAX_ELEMENTS); null for larger tensors and for tensors without spectral
   * metrics (no weight, or no matrix: hasSpectralMetrics).
   */
  async effectiveRankIfSmall(path: string, index: number): Promise<number | null> {
    const { entry } = await this.models.tensorEntry(path, index);
    const weights = await this.models.weightTensors(path);
    if (!hasSpectralMetrics(entry.info, weights.indices.includes(index))) return null;
    if (entry.info.parameterCount > AUTO_SPECTRUM_MAX_ELEMENTS) return null;
    return (await this.spectrum(path, index)).metrics.effectiveRank;
  }

  /** The integer codes of a quantized tensor: levels used and their histogram. */
  async tensorCodes(path: string, index: number): Promise<TensorCodes> {
    const { entry } = await this.models.tensorEntry(path, index);
    return tensorCodes(entry);
  }

  /** The quantization grid of a GGUF block-quantized tensor: the scale of each block. */
  async blockScales(path: string, index: number): Promise<BlockScaleGrid> {
    const { entry } = await this.models.tensorEntry(path, index);
    return blockScaleGrid(entry);
  }

  /** Size, levels and value range of a heatmap layer, and the tensor's structured sparsity. */
  async heatmapInfo(
    path: string,
    index: number,
    layer: HeatmapLayer,
    signal?: AbortSignal,
  ): Promise<HeatmapInfo> {
    const checked = checkLayer(layer);
    const pyramid = await this.pyramid(path, index, checked, signal);
    const { rows, cols } = pyramid.matrix;
    return {
      index,
      rows,
      cols,
      tileSize: HEATMAP_TILE_SIZE,
      maxLevel: maxHeatmapLevel(rows, cols),
      layer: checked,
      scale: checked.kind === 'magnitude' ? 'log' : 'linear',
      min: pyramid.min,
      max: pyramid.max,
      structured: pyramid.structured,
      elapsedMs: pyramid.elapsedMs,
    };
  }

  /** One tile: from the pyramid at its levels, from the rows it covers at finer ones. */
  async heatmapTile(
    path: string,
    index: number,
    layer: HeatmapLayer,
    level: number,
    tileX: number,
    tileY: number,
    signal?: AbortSignal,
  ): Promise<HeatmapTile> {
    const checked = checkLayer(layer);
    const pyramid = await this.pyramid(path, index, checked, signal);
    const started = performance.now();
    const { rows, cols } = pyramid.matrix;
    const top = maxHeatmapLevel(rows, cols);
    if (!Number.isInteger(level) || level < 0 || level > top) {
      throw new RangeError(
        `zoom level ${level} is outside 0…${top} for a ${rows} × ${cols} matrix`,
      );
    }
    const { tilesX, tilesY } = tileGrid(rows, cols, level);
    if (
      !Number.isInteger(tileX) ||
      !Number.isInteger(tileY) ||
      tileX < 0 ||
      tileY < 0 ||
      tileX >= tilesX ||
      tileY >= tilesY
    ) {
      throw new RangeError(
        `tile (${tileX}, ${tileY}) is outside the ${tilesX} × ${tilesY} tiles of level ${level}`,
      );
    }
    const base = pyramid.levels[0]!;
    let tile: { width: number; height: number; values: Float32Array };
    if (level >= base.level) {
      tile = tileFromLevel(pyramid.levels[level - base.level]!, rows, cols, tileX, tileY);
    } else if (!pyramid.source) {
      throw new Error('the heatmap has no rows to read for this level');
    } else if (pyramid.source.kind === 'memory') {
      const reader = memoryMatrix(pyramid.source.values, rows, cols);
      tile = tileFromRows(reader, checked, level, tileX, tileY);
    } else {
      const reader = fileMatrix(pyramid.source.path, pyramid.source.offset, pyramid.matrix);
      try {
        tile = tileFromRows(reader, checked, level, tileX, tileY);
      } finally {
        reader.close();
      }
    }
    const { values } = tile;
    return {
      level,
      tileX,
      tileY,
      width: tile.width,
      height: tile.height,
      values: encodeTileValues(values),
      elapsedMs: performance.now() - started,
    };
  }

  /** Drop a model's cached results. */
  close(path: string): void {
    this.spectra.forget(cachePrefix(path));
    this.pyramids.forget(cachePrefix(path));
  }

  /**
   * Drop the caches and stop the pyramid workers, leaving the spectrum worker (shared by
   * every analysis service in the process) running for the service that replaces this one.
   */
  release(): void {
    this.spectra.clear();
    this.pyramids.clear();
    this.pool?.dispose();
    this.pool = undefined;
  }

  dispose(): void {
    this.release();
    disposeSpectrumWorker();
  }

  private async pyramid(
    path: string,
    index: number,
    layer: HeatmapLayer,
    signal: AbortSignal | undefined,
  ): Promise<Pyramid> {
    const { identity, entry } = await this.models.tensorEntry(path, index);
    const key = `${cachePrefix(path)}${identity}\n${index}\n${heatmapLayerKey(layer)}`;
    return this.pyramids.get(
      key,
      (jobSignal) => this.buildPyramid(entry, layer, jobSignal),
      signal,
    );
  }

  private async buildPyramid(
    entry: TensorEntry,
    layer: HeatmapLayer,
    signal: AbortSignal,
  ): Promise<Pyramid> {
    const started = performance.now();
    const matrix = tensorMatrixShape(entry, false);
    const { rows, cols } = matrix;
    const { data, info } = entry;
    const maxPixels = this.options.pyramidMaxPixels;
    this.pool ??= createPyramidPool(
      Math.max(1, this.options.pyramidWorkers ?? Math.min(availableParallelism(), 4)),
    );
    const pool = this.pool;
    // A large matrix is split into row ranges that the pool's workers pass over side by side.
    const ranges = pyramidRowRanges(
      rows,
      cols,
      rows * cols >= SPLIT_PYRAMID_ELEMENTS ? pool.size : 1,
      maxPixels,
    );
    let source: NonNullable<Pyramid['source']>;
    let parts: Promise<PyramidPart>[];
    const base = { matrix, shape: info.shape, layer, maxPixels };
    if (data.kind === 'file') {
      source = { kind: 'file', path: data.path, offset: data.offset };
      const file = source;
      parts = ranges.map(([rowStart, rowEnd]) =>
        pool.run({ ...base, rowStart, rowEnd, source: file }, signal),
      );
    } else {
      const bytes = loadMemoryBytes(entry);
      source = { kind: 'memory', values: matrixValues(matrix, bytes.slice(), rows * cols) };
      const rowBytes = storedRowBytes(matrix);
      parts = ranges.map(([rowStart, rowEnd]) => {
        const slice = bytes.slice(rowStart * rowBytes, rowEnd * rowBytes);
        const job: PyramidJob = {
          ...base,
          rowStart,
          rowEnd,
          source: { kind: 'memory', bytes: slice },
        };
        return pool.run(job, signal, [slice.buffer]);
      });
    }
    const pyramid = mergePyramidParts(await Promise.all(parts), rows, cols, layer, info.shape);
    return {
      matrix,
      levels: pyramidLevels(pyramid.sums, rows, cols),
      min: pyramid.min,
      max: pyramid.max,
      structured: pyramid.structured,
      // Rows are read again only for levels finer than the pyramid's base.
      source: pyramid.sums.level > 0 ? source : null,
      elapsedMs: performance.now() - started,
    };
  }
}

function cachePrefix(path: string): string {
  return `${path}\n`;
}

function normalizeSpectrumOptions(options: SpectrumOptions): SpectrumOptions {
  const method = options.method ?? 'auto';
  if (!SPECTRUM_METHODS.includes(method))
    throw new RangeError(`unknown spectrum method "${method}"`);
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float64') {
    throw new RangeError(`unknown precision "${String(precision)}"`);
  }
  const conv = options.conv ?? 'flatten';
  if (conv !== 'flatten' && conv !== 'spatial')
    throw new RangeError(`unknown conv mode "${String(conv)}"`);
  return method === 'auto' && options.k === undefined
    ? { method, precision, conv }
    : { method, k: options.k, precision, conv };
}

/** A tensor's shape with leading 1-dimensions dropped (an ONNX LSTM's [1, 4h, in] is 4h × in). */
function squeezedShape(shape: readonly number[]): number[] {
  let dims = [...shape];
  while (dims.length > 2 && dims[0] === 1) dims = dims.slice(1);
  return dims;
}

async function computeSpectrum(
  entry: TensorEntry,
  options: SpectrumOptions,
  settings: SpectrumSettings,
  signal: AbortSignal,
): Promise<Spectrum> {
  const matrix = tensorMatrixShape(entry, true);
  const shape = squeezedShape(entry.info.shape);
  // A plain range of a file is read by the spectrum worker itself.
  const source = matrixFileSource(entry, matrix);
  const input = source ? { source } : { values: await loadTensorValues(entry, matrix) };
  return spectrumOf(input, shape, entry.info.index, options, settings, signal);
}

function checkLayer(layer: HeatmapLayer): HeatmapLayer {
  switch (layer?.kind) {
    case 'magnitude':
    case 'zeros':
      return { kind: layer.kind };
    case 'nm': {
      const { n, m } = layer;
      if (
        !Number.isInteger(n) ||
        !Number.isInteger(m) ||
        n < 0 ||
        m < 1 ||
        n >= m ||
        m > MAX_NM_GROUP
      ) {
        throw new RangeError(
          `an N:M pattern needs whole 0 ≤ n < m ≤ ${MAX_NM_GROUP}, got ${n}:${m}`,
        );
      }
      return { kind: 'nm', n, m };
    }
    case 'int4':
      if (layer.block !== 32 && layer.block !== 128) {
        throw new RangeError(`int4 blocks are 32 or 128 values, got ${String(layer.block)}`);
      }
      return { kind: 'int4', block: layer.block };
    default:
      throw new RangeError(`unknown heatmap layer ${JSON.stringify(layer)}`);
  }
}

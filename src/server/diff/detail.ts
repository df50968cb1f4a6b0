/**
 * The detail of one pair of a diff, for the Compare panel's selected row: the spectra of
 * A's and B's matrix (jobs/computeSpectrum.ts, as the editor's Spectrum tab), the heatmap
 * of |ΔW| pooled to one tile (analysis/heatmap.ts's pyramid, the magnitude layer), and the
 * fine-tune analysis of ΔW (finetune.ts). B's values are read as the diff compares them:
 * decoded from their codes, or the product of their two factors.
 */
import { basename } from 'node:path';
import type { PairDetail } from '../../shared/diff';
import { formatCount } from '../../shared/format';
import { HEATMAP_TILE_SIZE, matrixShape, type HeatmapLayer } from '../../shared/heatmap';
import { MAX_PAIR_DETAIL_ELEMENTS } from '../../shared/limits';
import {
  buildPyramidBase,
  encodeTileValues,
  memoryMatrix,
  pyramidLevels,
  tileFromLevel,
} from '../analysis/heatmap';
import type { SpectrumSettings } from '../analysis/spectrum';
import { spectrumOf } from '../jobs/computeSpectrum';
import { modelPairs, squaredNorm, updateSpectrum } from './finetune';
import { pairReaders, pairValuesProblem } from './index';
import type { ValueReader } from './values';

export interface PairDetailOptions {
  readonly signal?: AbortSignal;
  /** Where the spectra's products run. */
  readonly settings?: SpectrumSettings;
  /** Called after each step (values, two spectra, heatmap, ΔW analysis). */
  readonly onProgress?: (done: number, total: number) => void;
}

const STEPS = 5;
const MAGNITUDE: HeatmapLayer = { kind: 'magnitude' };

async function wholeValues(reader: ValueReader): Promise<Float32Array> {
  try {
    return Float32Array.from(await reader.read(0, reader.count));
  } finally {
    reader.close();
  }
}

/** |ΔW| pooled until the whole matrix fits one tile. */
function deltaHeatmap(
  delta: Float32Array,
  rows: number,
  cols: number,
  index: number,
  signal: AbortSignal | undefined,
): NonNullable<PairDetail['heatmap']> {
  const started = performance.now();
  const base = buildPyramidBase(memoryMatrix(delta, rows, cols), MAGNITUDE, {
    checkCancelled: () => signal?.throwIfAborted(),
  });
  const top = pyramidLevels(base.sums, rows, cols).at(-1)!;
  const tile = tileFromLevel(top, rows, cols, 0, 0);
  const elapsedMs = performance.now() - started;
  return {
    info: {
      index,
      rows,
      cols,
      tileSize: HEATMAP_TILE_SIZE,
      maxLevel: top.level,
      layer: MAGNITUDE,
      scale: 'log',
      min: base.min,
      max: base.max,
      structured: base.structured,
      elapsedMs,
    },
    tile: {
      level: top.level,
      tileX: 0,
      tileY: 0,
      width: tile.width,
      height: tile.height,
      values: encodeTileValues(tile.values),
      elapsedMs,
    },
  };
}

/**
 * The detail of the pair of A's tensor `indexA` in the diff of `pathA` (before) and
 * `pathB` (after); the files are only read.
 */
export async function pairDetail(
  pathA: string,
  pathB: string,
  indexA: number,
  options: PairDetailOptions = {},
): Promise<PairDetail> {
  const { signal, settings, onProgress } = options;
  const { pairs } = await modelPairs(pathA, pathB);
  const pair = pairs.find((p) => p.a.info.index === indexA);
  if (!pair) {
    throw new RangeError(
      `tensor ${indexA} of ${basename(pathA)} pairs with no tensor of ${basename(pathB)}`,
    );
  }
  const none = (why: string): PairDetail => ({
    indexA,
    spectrumA: null,
    spectrumB: null,
    spectraSkipped: why,
    heatmap: null,
    delta: null,
    deltaSkipped: why,
  });
  const { info } = pair.a;
  const matrix = matrixShape(info.shape);
  if (!matrix || matrix.rows * matrix.cols === 0) {
    return none(`[${info.shape.join(', ')}] is not a matrix: it needs two non-empty dimensions`);
  }
  const problem = pairValuesProblem(pair);
  if (problem) return none(problem);
  if (info.parameterCount > MAX_PAIR_DETAIL_ELEMENTS) {
    return none(
      `${formatCount(info.parameterCount)} values are more than the ${formatCount(MAX_PAIR_DETAIL_ELEMENTS)} (MAX_PAIR_DETAIL_ELEMENTS) the detail reads into memory`,
    );
  }
  const { rows, cols } = matrix;
  const [readerA, readerB] = await pairReaders(pair);
  const a = await wholeValues(readerA);
  const b = await wholeValues(readerB);
  onProgress?.(1, STEPS);
  const shape = [rows, cols];
  const spectrumA = await spectrumOf({ values: a }, shape, indexA, {}, settings, signal);
  onProgress?.(2, STEPS);
  const spectrumB = await spectrumOf(
    { values: b },
    shape,
    pair.b[0]!.info.index,
    {},
    settings,
    signal,
  );
  onProgress?.(3, STEPS);
  const delta = new Float32Array(a.length);
  let changed = false;
  for (let i = 0; i < delta.length; i++) {
    delta[i] = b[i]! - a[i]!;
    if (delta[i] !== 0) changed = true;
  }
  if (!changed) {
    onProgress?.(STEPS, STEPS);
    return {
      indexA,
      spectrumA,
      spectrumB,
      heatmap: null,
      delta: null,
      deltaSkipped: 'the values are identical: ΔW is zero',
    };
  }
  const heatmap = deltaHeatmap(delta, rows, cols, indexA, signal);
  onProgress?.(4, STEPS);
  const update = await updateSpectrum(info.name, rows, cols, delta, squaredNorm(a), signal);
  onProgress?.(STEPS, STEPS);
  return { indexA, spectrumA, spectrumB, heatmap, delta: update };
}

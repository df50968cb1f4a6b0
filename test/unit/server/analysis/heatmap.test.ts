/**
 * Heatmap layers and tiles on hand-made matrices (N:M violations, int4 block errors, zero
 * masks, pooling at each level, structured sparsity), the pyramid against tiles computed
 * from rows, and the service over real files: a float32 safetensors matrix large enough
 * that its finest tiles are read from the file, and Silero's constants.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  buildPyramidBase,
  buildPyramidPart,
  cellValues,
  mergePyramidParts,
  pyramidRowRanges,
  int4BlockError,
  memoryMatrix,
  pyramidBaseLevel,
  pyramidLevels,
  tileFromLevel,
  tileFromRows,
} from '../../../../src/server/analysis/heatmap';
import { AnalysisService } from '../../../../src/server/analysisService';
import { SharedJobs } from '../../../../src/server/jobs/sharedJobs';
import { isAbortError } from '../../../../src/server/jobs/workerPool';
import { ModelService } from '../../../../src/server/modelService';
import {
  decodeTileValues,
  matrixShape,
  maxHeatmapLevel,
  type HeatmapLayer,
} from '../../../../src/shared/heatmap';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

function cells(layer: HeatmapLayer, values: number[], rows: number, cols: number): number[] {
  const out = new Float32Array(rows * cols);
  cellValues(layer, Float64Array.from(values), rows, cols, out);
  return Array.from(out);
}

/** Deterministic values in [-1, 1) with some exact zeros. */
function sampleMatrix(rows: number, cols: number, seed = 7): Float32Array {
  const values = new Float32Array(rows * cols);
  let state = seed;
  for (let i = 0; i < values.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    const uniform = state / 2 ** 32;
    values[i] = uniform < 0.2 ? 0 : uniform * 2 - 1;
  }
  return values;
}

/** The reference pooling: mean over the cells of each pixel, written the slow obvious way. */
function referenceTile(
  cellAt: (row: number, col: number) => number,
  rows: number,
  cols: number,
  level: number,
  tileX: number,
  tileY: number,
  tileSize: number,
): number[] {
  const span = 2 ** level;
  const out: number[] = [];
  for (
    let py = tileY * tileSize;
    py < Math.min(Math.ceil(rows / span), (tileY + 1) * tileSize);
    py++
  ) {
    for (
      let px = tileX * tileSize;
      px < Math.min(Math.ceil(cols / span), (tileX + 1) * tileSize);
      px++
    ) {
      let sum = 0;
      let count = 0;
      for (let r = py * span; r < Math.min(rows, (py + 1) * span); r++) {
        for (let c = px * span; c < Math.min(cols, (px + 1) * span); c++) {
          sum += cellAt(r, c);
          count++;
        }
      }
      out.push(sum / count);
    }
  }
  return out;
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): void {
  assert.equal(actual.length, expected.length, 'lengths differ');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance,
      `value ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

describe('cell values of each layer', () => {
  test('2:4 marks every value of a group with more than 2 non-zeros, group by group along rows', () => {
    const row = [1, 0, 2, 0, 1, 1, 1, 0, 0, 0, 0, 0, 3, 3, 3, 3];
    assert.deepEqual(
      cells({ kind: 'nm', n: 2, m: 4 }, row, 1, 16),
      [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1],
    );
    // Groups restart on every row, and a short last group (6 columns: 4 + 2) never violates 2:4.
    assert.deepEqual(
      cells({ kind: 'nm', n: 2, m: 4 }, [1, 1, 1, 1, 5, 5, 0, 0, 1, 1, 1, 1], 2, 6),
      [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert.deepEqual(cells({ kind: 'nm', n: 1, m: 2 }, [1, 1, 0, 1], 1, 4), [1, 1, 0, 0]);
  });

  test('the zero mask is 1 exactly at zeros (negative zero included), |w| ignores non-finite values', () => {
    assert.deepEqual(cells({ kind: 'zeros' }, [0, -0, 1e-30, -2], 2, 2), [1, 1, 0, 0]);
    assert.deepEqual(cells({ kind: 'magnitude' }, [-2, 0.5, Infinity, NaN], 2, 2), [2, 0.5, 0, 0]);
  });

  test('int4 block error is the relative error of a symmetric absmax round trip', () => {
    // Values on the int4 grid of their block (absmax 0.7, scale 0.1) come back exactly.
    const onGrid = [0.7, -0.7, 0.1, 0, -0.3, 0.5, 0.2, 0.6];
    assert.ok(int4BlockError(Float64Array.from(onGrid), 0, 8) < 1e-12);
    // [1, 0.5]: scale 1/7, 0.5 → round(3.5) = 4 → 4/7; error |0.5 − 4/7| over ‖(1, 0.5)‖.
    const expected = Math.abs(0.5 - 4 / 7) / Math.hypot(1, 0.5);
    assert.ok(Math.abs(int4BlockError(Float64Array.from([1, 0.5]), 0, 2) - expected) < 1e-12);
    assert.equal(int4BlockError(new Float64Array(4), 0, 4), 0, 'an all-zero block has no error');
  });

  test('int4 blocks of 32 and 128 differ where an outlier shares a block with small values', () => {
    const row = new Array<number>(256).fill(0).map((_, i) => 0.01 * Math.sin(i + 1));
    row[0] = 10; // One outlier: its block's small values all round to zero.
    const block32 = cells({ kind: 'int4', block: 32 }, row, 1, 256);
    const block128 = cells({ kind: 'int4', block: 128 }, row, 1, 256);
    // Every value of a block carries the block's error.
    assert.equal(new Set(block32.slice(0, 32)).size, 1);
    assert.equal(new Set(block128.slice(0, 128)).size, 1);
    // The outlier's block of 32 is damaged; the next block of 32 is not, but the 128-block is.
    assert.ok(block32[40]! < 0.2, `block 32, second block: ${block32[40]}`);
    assert.equal(block128[40], block128[0]);
    assert.ok(block32[200]! < 0.2 && Math.abs(block32[200]! - block128[200]!) < 0.2);
    const reference = int4BlockError(Float64Array.from(row), 32, 64);
    assert.ok(Math.abs(block32[40]! - reference) < 1e-6);
  });
});

describe('pooling and the pyramid', () => {
  test('a pixel is the mean of the cells it covers, partial pixels at the edges too', () => {
    // 3 × 5 zero mask: level 1 pixels cover 2 × 2 cells, fewer at the right and bottom.
    const values = Float64Array.from([0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
    const reader = memoryMatrix(values, 3, 5);
    const tile = tileFromRows(reader, { kind: 'zeros' }, 1, 0, 0, 256);
    assert.equal(tile.width, 3);
    assert.equal(tile.height, 2);
    assertClose(tile.values, [1 / 4, 1, 1 / 2, 1, 1 / 2, 0], 1e-7);
    const top = tileFromRows(reader, { kind: 'zeros' }, 3, 0, 0, 256);
    assertClose(top.values, [9 / 15], 1e-7);
  });

  test('tiles from the pyramid equal tiles computed from the rows, at every level, for every layer', () => {
    const rows = 300;
    const cols = 520;
    const values = sampleMatrix(rows, cols);
    const reader = memoryMatrix(values, rows, cols);
    const tileSize = 32;
    const layers: HeatmapLayer[] = [
      { kind: 'magnitude' },
      { kind: 'zeros' },
      { kind: 'nm', n: 2, m: 4 },
      { kind: 'int4', block: 32 },
    ];
    for (const layer of layers) {
      // A small pixel budget makes the pyramid start at level 2.
      const base = buildPyramidBase(reader, layer, { maxPixels: 10_000, bandValues: 4096 });
      assert.equal(base.sums.level, pyramidBaseLevel(rows, cols, 10_000));
      assert.equal(base.sums.level, 2);
      const levels = pyramidLevels(base.sums, rows, cols, tileSize);
      assert.equal(levels.at(-1)!.level, maxHeatmapLevel(rows, cols, tileSize));
      const cellGrid = new Float32Array(rows * cols);
      cellValues(layer, values, rows, cols, cellGrid);
      for (const level of levels) {
        for (const [tileX, tileY] of [
          [0, 0],
          [1, 0],
          [Math.ceil(level.width / tileSize) - 1, Math.ceil(level.height / tileSize) - 1],
        ] as const) {
          if (tileX * tileSize >= level.width) continue;
          const fromPyramid = tileFromLevel(level, rows, cols, tileX, tileY, tileSize);
          const fromRows = tileFromRows(reader, layer, level.level, tileX, tileY, tileSize);
          const expected = referenceTile(
            (r, c) => cellGrid[r * cols + c]!,
            rows,
            cols,
            level.level,
            tileX,
            tileY,
            tileSize,
          );
          assertClose(fromPyramid.values, expected, 1e-5);
          assertClose(fromRows.values, expected, 1e-5);
        }
      }
    }
  });

  test('passes over row ranges merge into the same pyramid base as one pass', () => {
    const rows = 301;
    const cols = 77;
    const values = sampleMatrix(rows, cols, 5);
    const reader = memoryMatrix(values, rows, cols);
    const layer: HeatmapLayer = { kind: 'nm', n: 2, m: 4 };
    const maxPixels = 600;
    const whole = buildPyramidBase(reader, layer, { maxPixels });
    const ranges = pyramidRowRanges(rows, cols, 3, maxPixels);
    assert.equal(ranges.length, 3);
    assert.deepEqual([ranges[0]![0], ranges.at(-1)![1]], [0, rows]);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]![0], ranges[i - 1]![1]);
    const parts = ranges.map(([start, end]) =>
      buildPyramidPart(reader, layer, start, end, { maxPixels }),
    );
    const merged = mergePyramidParts(parts, rows, cols, layer);
    assert.deepEqual(merged.structured, whole.structured);
    assert.deepEqual([merged.min, merged.max], [whole.min, whole.max]);
    assert.deepEqual(Array.from(merged.sums.sums), Array.from(whole.sums.sums));
    assert.throws(() => buildPyramidPart(reader, layer, 1, 5, { maxPixels }), /pixel row/);
  });

  test('structured sparsity: zero rows, columns, conv channels and N:M compliance', () => {
    // A conv kernel [out 4, in 3, 2, 2]: out channel 1 and in channel 2 are all zero.
    const shape = [4, 3, 2, 2];
    const values = new Float32Array(48);
    for (let out = 0; out < 4; out++) {
      for (let input = 0; input < 3; input++) {
        for (let k = 0; k < 4; k++) {
          const zero = out === 1 || input === 2 || (out === 3 && k % 2 === 1);
          values[out * 12 + input * 4 + k] = zero ? 0 : 1 + k;
        }
      }
    }
    const { rows, cols } = matrixShape(shape)!;
    assert.deepEqual({ rows, cols }, { rows: 4, cols: 12 });
    const { structured } = buildPyramidBase(
      memoryMatrix(values, rows, cols),
      { kind: 'zeros' },
      { shape },
    );
    assert.deepEqual(structured, {
      rows: 4,
      cols: 12,
      zeroRows: 1,
      zeroCols: 4,
      channels: { outChannels: 4, zeroOutChannels: 1, inChannels: 3, zeroInChannels: 1 },
      n: 2,
      m: 4,
      groups: 12,
      // Compliant: the zero in-channel groups (rows 0, 2, 3), all of row 1, and row 3's half-zero groups.
      compliantGroups: 3 + 3 + 2,
    });
    const withPattern = buildPyramidBase(memoryMatrix(values, rows, cols), {
      kind: 'nm',
      n: 3,
      m: 4,
    });
    assert.equal(withPattern.structured.n, 3);
    // The full groups of 4 non-zeros violate 3:4 as well; every other group has at most 2.
    assert.equal(withPattern.structured.compliantGroups, 8);
    assert.equal(withPattern.structured.channels, null, 'no shape given: no channels');
  });

  test('the matrix view drops leading 1-dimensions and flattens the rest', () => {
    assert.deepEqual(matrixShape([1, 512, 128]), { rows: 512, cols: 128 });
    assert.deepEqual(matrixShape([64, 32, 3, 3]), { rows: 64, cols: 288 });
    assert.equal(matrixShape([10]), null);
    assert.equal(matrixShape([]), null);
  });
});

describe('the analysis service on real files', () => {
  let folder: string;
  let service: ModelService;
  let analysis: AnalysisService;
  let file: string;
  const rows = 2100;
  const cols = 2100;
  let values: Float32Array;

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'layerlens-heatmap-'));
    service = new ModelService({ workerCount: 1 });
    // A pixel budget below 2100²: the pyramid starts at level 1, level-0 tiles come from the file.
    analysis = new AnalysisService(service, { pyramidMaxPixels: 2048 * 2048 });
    values = sampleMatrix(rows, cols, 11);
    file = await writeSafetensors(path.join(folder, 'big.safetensors'), [
      { name: 'fc.weight', dtype: 'F32', shape: [rows, cols], data: values },
      { name: 'fc.bias', dtype: 'F32', shape: [cols], data: new Float32Array(cols) },
      { name: 'steps', dtype: 'I64', shape: [2, 2], data: new BigInt64Array(4) },
    ]);
  });

  after(async () => {
    analysis?.dispose();
    service?.dispose();
    await rm(folder, { recursive: true, force: true });
  });

  test('tiles read from the file and tiles from the pyramid match the values written', async () => {
    const layer: HeatmapLayer = { kind: 'nm', n: 2, m: 4 };
    const info = await analysis.heatmapInfo(file, 0, layer);
    assert.equal(info.rows, rows);
    assert.equal(info.maxLevel, 4);
    assert.equal(info.scale, 'linear');
    const reference = new Float32Array(rows * cols);
    cellValues(layer, values, rows, cols, reference);
    for (const [level, tileX, tileY] of [
      [0, 8, 8],
      [0, 3, 5],
      [1, 4, 4],
      [2, 0, 1],
      [4, 0, 0],
    ] as const) {
      const tile = await analysis.heatmapTile(file, 0, layer, level, tileX, tileY);
      const expected = referenceTile(
        (r, c) => reference[r * cols + c]!,
        rows,
        cols,
        level,
        tileX,
        tileY,
        256,
      );
      assert.equal(tile.width * tile.height, expected.length, `level ${level} tile size`);
      assertClose(decodeTileValues(tile.values), expected, 1e-5);
    }
    const magnitude = await analysis.heatmapInfo(file, 0, { kind: 'magnitude' });
    assert.equal(magnitude.scale, 'log');
    let max = 0;
    let min = Infinity;
    for (const value of values) {
      if (Math.abs(value) > max) max = Math.abs(value);
      if (value !== 0 && Math.abs(value) < min) min = Math.abs(value);
    }
    assert.equal(magnitude.max, max);
    assert.equal(magnitude.min, min);
  });

  test('bad requests get clear errors and the service keeps answering', async () => {
    await assert.rejects(
      analysis.heatmapInfo(file, 1, { kind: 'zeros' }),
      /fc\.bias.*two non-empty dimensions/,
    );
    await assert.rejects(analysis.spectrum(file, 2), /steps.*holds int64 values.*floating-point/);
    await assert.rejects(
      analysis.heatmapInfo(file, 0, { kind: 'int4', block: 64 as 32 }),
      /int4 blocks are 32 or 128/,
    );
    await assert.rejects(analysis.heatmapInfo(file, 0, { kind: 'nm', n: 4, m: 4 }), /0 ≤ n < m/);
    await assert.rejects(analysis.heatmapTile(file, 0, { kind: 'zeros' }, 9, 0, 0), /zoom level 9/);
    await assert.rejects(analysis.heatmapTile(file, 0, { kind: 'zeros' }, 4, 1, 0), /outside/);
    await assert.rejects(
      analysis.heatmapInfo(file, 99, { kind: 'zeros' }),
      /no tensor with index 99/,
    );
    const tile = await analysis.heatmapTile(file, 0, { kind: 'zeros' }, 4, 0, 0);
    assert.ok(tile.width > 0);
  });

  test('Silero constants (in-memory tensors): spectrum and heatmap of an LSTM weight', async () => {
    const tensors = (await service.tensors(SILERO_V5, 0, 5000)).tensors;
    const lstm = tensors.find((tensor) => tensor.name.endsWith('decoder.rnn.weight_hh'))!;
    assert.equal(lstm.location, 'constant');
    const spectrum = await analysis.spectrum(SILERO_V5, lstm.index);
    assert.equal(spectrum.singularValues.length, 128);
    const again = await analysis.spectrum(SILERO_V5, lstm.index);
    assert.equal(again, spectrum, 'the second request is answered from the cache');
    const info = await analysis.heatmapInfo(SILERO_V5, lstm.index, { kind: 'zeros' });
    assert.equal(info.structured.zeroRows, 0);
    assert.equal(info.structured.rows, 512);
  });
});

describe('shared, cancellable jobs', () => {
  test('callers share one computation; it aborts only when every caller cancelled', async () => {
    const jobs = new SharedJobs<number>(2);
    let started = 0;
    let aborted = 0;
    const compute = (signal: AbortSignal) => {
      started++;
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => resolve(42), 50);
        signal.addEventListener('abort', () => {
          aborted++;
          clearTimeout(timer);
          reject(new Error('aborted'));
        });
      });
    };
    const first = new AbortController();
    const a = jobs.get('k', compute, first.signal);
    const b = jobs.get('k', compute);
    first.abort();
    await assert.rejects(a, (error: unknown) => isAbortError(error));
    assert.equal(await b, 42);
    assert.equal(started, 1);
    assert.equal(aborted, 0);
    assert.equal(await jobs.get('k', compute), 42, 'cached');
    assert.equal(started, 1);

    const only = new AbortController();
    const c = jobs.get('other', compute, only.signal);
    only.abort();
    await assert.rejects(c, (error: unknown) => isAbortError(error));
    assert.equal(aborted, 1, 'nobody waits: the computation stopped');
    assert.equal(jobs.peek('other'), undefined);
  });
});

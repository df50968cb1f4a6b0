/**
 * Every analysis of a GGUF quantized tensor works on its dequantized values: statistics and
 * histogram (whole, and split across workers), spectrum, heatmap, and the data-free
 * sensitivity proxy. Expected numbers come from the values gguf_fixtures.py computed from
 * the block fields, not from LayerLens's decoders.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AnalysisService } from '../../../../src/server/analysisService';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { ModelService } from '../../../../src/server/modelService';
import { openModelFile } from '../../../../src/server/formats/registry';
import type { OpenedModel } from '../../../../src/server/formats/types';
import { computeSensitivity } from '../../../../src/server/sensitivity';
import { decodeTileValues } from '../../../../src/shared/heatmap';
import { float32Of, writeGgufFixtures, type GgufFixtures } from '../../../support/ggufFixtures';

const FILE = 'types-v3.gguf';
let fixtures: GgufFixtures;
let model: OpenedModel;
let path: string;

before(async () => {
  fixtures = writeGgufFixtures();
  path = fixtures.path(FILE);
  model = await openModelFile(path);
});
after(() => fixtures.remove());

function indexOf(scheme: string): number {
  return model.tensors.find((entry) => entry.info.encoding?.scheme === scheme)!.info.index;
}

function expectedOf(index: number): Float32Array {
  return float32Of(fixtures.expected[FILE]![model.tensors[index]!.info.name]!);
}

function moments(values: Float32Array): { min: number; max: number; mean: number; std: number } {
  let sum = 0;
  for (const value of values) sum += value;
  const mean = sum / values.length;
  let squares = 0;
  for (const value of values) squares += (value - mean) ** 2;
  return {
    min: Math.min(...values),
    max: Math.max(...values),
    mean,
    std: Math.sqrt(squares / values.length),
  };
}

describe('statistics in the worker pool', () => {
  const pool = new WorkerPool(2);
  after(() => pool.dispose());

  for (const scheme of ['Q4_K', 'Q6_K', 'IQ4_XS', 'MXFP4', 'Q5_1']) {
    test(`${scheme}: the statistics of the dequantized values, whole and split across workers`, async () => {
      const index = indexOf(scheme);
      const want = moments(expectedOf(index));
      const entry = model.tensors[index]!;
      const whole = await computeTensorStats(pool, entry);
      // Split into parts of 1024 values at least: a 512-value tensor is one part, so
      // a chunk size of one block of output also runs the streaming decoder.
      const split = await computeTensorStats(pool, entry, undefined, {
        splitBytes: 1,
        chunkBytes: 256 * 4,
      });
      for (const stats of [whole, split]) {
        assert.equal(stats.count, 512);
        assert.equal(stats.min, want.min);
        assert.equal(stats.max, want.max);
        assert.ok(Math.abs(stats.mean! - want.mean) <= 1e-9 * Math.max(1, Math.abs(want.mean)));
        assert.ok(Math.abs(stats.std! - want.std) <= 1e-9 * want.std);
        assert.equal(
          stats.histogram!.counts.reduce((a, b) => a + b, 0),
          512,
        );
      }
    });
  }

  test('a type that is not decoded gets its reason, and the pool keeps working', async () => {
    const listed = model.tensors.find((entry) => entry.info.encoding?.scheme === 'IQ2_XXS')!;
    await assert.rejects(computeTensorStats(pool, listed), /values not decoded.*IQ2_XXS/);
    const stats = await computeTensorStats(pool, model.tensors[indexOf('Q8_0')]!);
    assert.equal(stats.count, 512);
  });
});

describe('spectrum, heatmap and sensitivity', () => {
  let service: ModelService;
  let analysis: AnalysisService;
  before(() => {
    service = new ModelService({ workerCount: 1 });
    analysis = new AnalysisService(service);
  });
  after(() => {
    analysis.dispose();
    service.dispose();
  });

  test('the spectrum of a Q4_K matrix is that of its dequantized values', async () => {
    const index = indexOf('Q4_K');
    const values = expectedOf(index);
    // A 2 × 256 matrix: its singular values are the square roots of the eigenvalues of A·Aᵀ.
    const dot = (a: number, b: number) => {
      let sum = 0;
      for (let c = 0; c < 256; c++) sum += values[a * 256 + c]! * values[b * 256 + c]!;
      return sum;
    };
    const [p, q, r] = [dot(0, 0), dot(0, 1), dot(1, 1)];
    const root = Math.sqrt(((p - r) / 2) ** 2 + q * q);
    const want = [Math.sqrt((p + r) / 2 + root), Math.sqrt((p + r) / 2 - root)];
    const spectrum = await analysis.spectrum(path, index);
    assert.equal(spectrum.rows, 2);
    assert.equal(spectrum.cols, 256);
    for (let i = 0; i < 2; i++) {
      assert.ok(
        Math.abs(spectrum.singularValues[i]! - want[i]!) <= 1e-4 * want[0]!,
        `σ${i}: ${spectrum.singularValues[i]} vs ${want[i]}`,
      );
    }
  });

  test('heatmaps show the dequantized values: zeros where they are zero, the largest |w|', async () => {
    const index = indexOf('Q4_0');
    const values = expectedOf(index);
    const zeros = await analysis.heatmapTile(path, index, { kind: 'zeros' }, 0, 0, 0);
    assert.equal(zeros.width * zeros.height, 512);
    const cells = decodeTileValues(zeros.values);
    assert.ok(
      values.some((value) => value === 0),
      'the fixture holds zeros (code 8)',
    );
    for (let i = 0; i < 512; i++) assert.equal(cells[i], values[i] === 0 ? 1 : 0, `cell ${i}`);
    const magnitude = await analysis.heatmapInfo(path, index, { kind: 'magnitude' });
    assert.equal(magnitude.max, Math.max(...values.map(Math.abs)));
  });

  test('the data-free sensitivity proxy sweeps dequantized weights; undecoded types are left out', async () => {
    const q4k = indexOf('Q4_K');
    const listed = indexOf('IQ2_XXS');
    const result = await computeSensitivity(path, { indices: [q4k, listed], measured: false });
    const swept = result.layers.find((layer) => layer.index === q4k)!;
    assert.ok(swept.proxy.length > 0, 'proxy points');
    for (const point of swept.proxy) {
      assert.ok(Number.isFinite(point.relativeError) && point.relativeError >= 0, point.key);
    }
    // A GGUF's own sweep: the ggml block types llama.cpp could store the tensor as.
    assert.deepEqual(
      result.levels.map((level) => level.label),
      ['Q8_0', 'Q6_K', 'Q5_K', 'Q5_0', 'Q4_K', 'Q4_0', 'IQ4_NL', 'Q3_K', 'Q2_K'],
    );
    const q8 = swept.proxy.find((point) => point.key === 'ggml:Q8_0')!;
    const q2 = swept.proxy.find((point) => point.key === 'ggml:Q2_K')!;
    assert.ok(q8.relativeError > 0, 'Q8_0 changes the dequantized values');
    assert.ok(q8.relativeError < q2.relativeError, 'Q8_0 loses less than Q2_K');
    const left = result.layers.find((layer) => layer.index === listed)!;
    assert.deepEqual(left.proxy, []);
    assert.match(left.note!, /values not decoded/);
  });
});

/**
 * The quantization grid of GGUF block-quantized tensors: one scale per block, checked
 * against the scales gguf_fixtures.py wrote into the blocks (not read back by LayerLens).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AnalysisService } from '../../../../src/server/analysisService';
import { blockScaleGrid } from '../../../../src/server/analysis/blockScales';
import { openModelFile } from '../../../../src/server/formats/registry';
import type { OpenedModel } from '../../../../src/server/formats/types';
import { ModelService } from '../../../../src/server/modelService';
import { decodeTileValues } from '../../../../src/shared/heatmap';
import { float32Of, writeGgufFixtures, type GgufFixtures } from '../../../support/ggufFixtures';

const FILE = 'types-v3.gguf';
let fixtures: GgufFixtures;
let model: OpenedModel;

before(async () => {
  fixtures = writeGgufFixtures();
  model = await openModelFile(fixtures.path(FILE));
});
after(() => fixtures.remove());

function entryOf(scheme: string) {
  return model.tensors.find((entry) => entry.info.encoding?.scheme === scheme)!;
}

const SCHEMES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'MXFP4'];
const K_SCHEMES = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS'];

for (const scheme of [...SCHEMES, ...K_SCHEMES]) {
  test(`${scheme}: one cell per block, the scale the block was written with`, async () => {
    const entry = entryOf(scheme);
    const want = float32Of(fixtures.scales[entry.info.name]!);
    assert.equal(entry.info.encoding?.blockScales, true);
    const grid = await blockScaleGrid(entry);
    const blockSize = K_SCHEMES.includes(scheme) ? 256 : 32;
    assert.equal(grid.scheme, scheme);
    assert.equal(grid.blockSize, blockSize);
    // The fixture's tensors are 2 rows of 256 weights.
    assert.deepEqual(
      [grid.rows, grid.cols, grid.rowsPerCell, grid.matrixRows],
      [2, 256 / blockSize, 1, 2],
    );
    assert.equal(want.length, 2 * grid.cols);
    assert.deepEqual(decodeTileValues(grid.values), want);
    assert.equal(grid.min, Math.min(...want));
    assert.equal(grid.max, Math.max(...want));
  });
}

test('a grid over its cell limit pools rows: the mean of their scales', async () => {
  const entry = entryOf('Q8_0');
  const want = fixtures.scales[entry.info.name]!;
  const grid = await blockScaleGrid(entry, 8);
  assert.deepEqual([grid.rows, grid.cols, grid.rowsPerCell], [1, 8, 2]);
  const pooled = Float32Array.from({ length: 8 }, (_, col) => (want[col]! + want[8 + col]!) / 2);
  assert.deepEqual(decodeTileValues(grid.values), pooled);
});

test('tensors without block scales are refused with their name', async () => {
  const plain = model.tensors.find(
    (entry) => entry.info.dtype === 'float32' && !entry.data.blocks,
  )!;
  await assert.rejects(blockScaleGrid(plain), /f32_norm.weight.*not stored as quantized blocks/);
  const undecoded = entryOf('IQ2_XXS');
  assert.equal(undecoded.info.encoding?.blockScales, false);
  await assert.rejects(blockScaleGrid(undecoded), /IQ2_XXS/);
});

test('the server answers the request for a tensor of an opened model', async () => {
  const service = new ModelService({ workerCount: 1 });
  const analysis = new AnalysisService(service);
  try {
    const path = fixtures.path(FILE);
    const index = entryOf('Q4_K').info.index;
    const grid = await analysis.blockScales(path, index);
    assert.equal(grid.index, index);
    assert.deepEqual(
      decodeTileValues(grid.values),
      float32Of(fixtures.scales[entryOf('Q4_K').info.name]!),
    );
  } finally {
    analysis.dispose();
    service.dispose();
  }
});

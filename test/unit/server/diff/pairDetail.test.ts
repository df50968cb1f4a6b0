/**
 * The Compare panel's detail of a selected pair (layerlens/pairDetail's work), on the
 * synthetic fine-tune of test/support/fineTune.ts: both spectra, the |ΔW| heatmap tile
 * (one cell per pixel at this size, so each pixel is |ΔW| of its cell) and the fine-tune
 * analysis of the rank-8 update; pairs without a ΔW say why.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pairDetail } from '../../../../src/server/diff/detail';
import { openModelFile } from '../../../../src/server/formats/registry';
import { decodeTileValues } from '../../../../src/shared/heatmap';
import { writeSyntheticFineTune, type SyntheticFineTune } from '../../../support/fineTune';
import { makeTempDir } from '../../../support/safetensorsBuilder';

let remove: () => Promise<void>;
let fineTune: SyntheticFineTune;
const indexOf = new Map<string, number>();

before(async () => {
  let dir: string;
  ({ dir, remove } = await makeTempDir('layerlens-pair-detail-'));
  fineTune = await writeSyntheticFineTune(dir);
  for (const entry of (await openModelFile(fineTune.basePath)).tensors) {
    indexOf.set(entry.info.name, entry.info.index);
  }
});
after(() => remove());

test('a changed matrix: both spectra, |ΔW| as one tile, and the rank-8 update found', async () => {
  const name = 'model.layers.0.q_proj.weight';
  const progress: number[] = [];
  const detail = await pairDetail(fineTune.basePath, fineTune.tunedPath, indexOf.get(name)!, {
    onProgress: (done, total) => progress.push(done / total),
  });
  assert.equal(progress.at(-1), 1);
  const { spectrumA, spectrumB, heatmap, delta } = detail;
  assert.equal(spectrumA!.singularValues.length, 64);
  assert.equal(spectrumB!.singularValues.length, 64);
  assert.equal(spectrumA!.rows, 96);
  // B = A + U: its energy exceeds A's by about ‖U‖² (A and U are nearly orthogonal).
  const { update, noise } = fineTune.updates.get(name)!;
  const squared = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => s + x * x, 0);
  const gain = spectrumB!.frobeniusSquared - spectrumA!.frobeniusSquared;
  assert.ok(Math.abs(gain - squared(update)) < 0.1 * squared(update), `${gain}`);

  assert.equal(heatmap!.info.rows, 96);
  assert.equal(heatmap!.info.cols, 64);
  assert.equal(heatmap!.info.scale, 'log');
  assert.equal(heatmap!.tile.level, 0);
  assert.deepEqual([heatmap!.tile.width, heatmap!.tile.height], [64, 96]);
  const pixels = decodeTileValues(heatmap!.tile.values);
  let worst = 0;
  for (let i = 0; i < pixels.length; i++) {
    worst = Math.max(worst, Math.abs(pixels[i]! - Math.abs(update[i]! + noise[i]!)));
  }
  assert.ok(worst < 1e-6, `a pixel is off |ΔW| by ${worst}`);
  assert.ok(Math.abs(heatmap!.info.max - Math.max(...pixels)) < 1e-9);

  assert.equal(delta!.name, name);
  const at = (r: number) => delta!.energyAt.find((e) => e.rank === r)!.energy;
  assert.ok(at(8) > 0.999, `${at(8)}`);
  assert.ok(at(4) < 0.95, `${at(4)}`);
  assert.ok(delta!.stableRank > 1 && delta!.stableRank < 8);
  assert.equal(detail.deltaSkipped, undefined);
});

test('an unchanged matrix has spectra but no ΔW; a 1-D tensor has neither; an unknown index is refused', async () => {
  const same = await pairDetail(
    fineTune.basePath,
    fineTune.tunedPath,
    indexOf.get('embed.weight')!,
  );
  assert.deepEqual(same.spectrumA!.singularValues, same.spectrumB!.singularValues);
  assert.equal(same.heatmap, null);
  assert.equal(same.delta, null);
  assert.match(same.deltaSkipped!, /identical/);

  const norm = await pairDetail(
    fineTune.basePath,
    fineTune.tunedPath,
    indexOf.get('model.norm.weight')!,
  );
  assert.equal(norm.spectrumA, null);
  assert.match(norm.spectraSkipped!, /\[64\] is not a matrix/);

  await assert.rejects(
    pairDetail(fineTune.basePath, fineTune.tunedPath, 99),
    /tensor 99 of base\.safetensors pairs with no tensor of tuned\.safetensors/,
  );
});

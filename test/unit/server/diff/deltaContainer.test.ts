/**
 * A fine-tune packed as a delta against its base (`layerlens pack --base`) compares with
 * that base as the fine-tune itself does: its summary names the base (what "Compare with…"
 * opens it against), every tensor pairs by name, the values read through the XOR with the
 * base match the fine-tune's, and the Compare panel's detail finds the rank-8 update.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { diffModels } from '../../../../src/server/diff';
import { pairDetail } from '../../../../src/server/diff/detail';
import { openModelFile } from '../../../../src/server/formats/registry';
import { packFile } from '../../../../src/server/lossless/pack';
import { writeSyntheticFineTune, type SyntheticFineTune } from '../../../support/fineTune';
import { makeTempDir } from '../../../support/safetensorsBuilder';

let remove: () => Promise<void>;
let fineTune: SyntheticFineTune;
let packed: string;

before(async () => {
  let dir: string;
  ({ dir, remove } = await makeTempDir('layerlens-delta-diff-'));
  fineTune = await writeSyntheticFineTune(dir);
  const result = await packFile(fineTune.tunedPath, { base: fineTune.basePath });
  assert.ok(result.deltaTensors > 0);
  packed = result.out;
});
after(() => remove());

test('the delta container names its base, and its diff against the base is the fine-tune’s', async () => {
  const opened = await openModelFile(packed);
  assert.equal(opened.summary.deltaBase, fineTune.basePath);
  assert.equal((await openModelFile(fineTune.tunedPath)).summary.deltaBase, undefined);

  const [fromPacked, fromTuned] = [
    await diffModels(fineTune.basePath, packed, { deltas: true }),
    await diffModels(fineTune.basePath, fineTune.tunedPath, { deltas: true }),
  ];
  assert.deepEqual(fromPacked.notes, []);
  assert.equal(fromPacked.pairedBy.name, 4);
  assert.deepEqual(fromPacked.pairs, fromTuned.pairs);
  assert.deepEqual(fromPacked.deltas, fromTuned.deltas);
  assert.deepEqual(
    fromPacked.pairs.filter((p) => p.changed).map((p) => p.name),
    ['model.layers.0.q_proj.weight', 'model.layers.0.v_proj.weight', 'model.norm.weight'],
  );

  const q = fromPacked.pairs.find((p) => p.name === 'model.layers.0.q_proj.weight')!;
  const detail = await pairDetail(fineTune.basePath, packed, q.indexA);
  const at8 = detail.delta!.energyAt.find((e) => e.rank === 8)!.energy;
  assert.ok(at8 > 0.999, `${at8}`);
  assert.ok(detail.heatmap && detail.spectrumB);
});

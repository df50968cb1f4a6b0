import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import { openModelFile } from '../../../../src/server/formats/registry';
import { packFile, unpackFile } from '../../../../src/server/lossless/pack';
import { makeTempDir } from '../../../support/safetensorsBuilder';
import { writeTorchCheckpoints, type CheckpointReference } from '../../../support/torchCheckpoints';

let dir: string;
let removeDir: () => Promise<void>;
let reference: Readonly<Record<string, CheckpointReference>>;
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-pt-llz-'));
  reference = await writeTorchCheckpoints(dir);
});
after(() => removeDir());

test('PyTorch checkpoints pack losslessly: byte-exact unpack, and the packed file reads as the checkpoint', async () => {
  for (const name of ['checkpoint.pt', 'legacy.pt', 'deflated.ckpt']) {
    const source = join(dir, name);
    const { out } = await packFile(source, { chunkBytes: 4096 });
    const restored = join(dir, `${name}.restored`);
    await unpackFile(out, { out: restored });
    assert.ok((await readFile(restored)).equals(await readFile(source)), `${name}: byte-exact`);
    const packed = await openModelFile(out);
    assert.equal(packed.summary.format, 'pytorch', name);
    const expected = reference[name]!.tensors;
    assert.deepEqual(
      packed.tensors.map(({ info }) => info.name).sort(),
      Object.keys(expected).sort(),
    );
    for (const { info, data } of packed.tensors) {
      // views (gathered from the container's span) included
      assert.equal(
        Buffer.from(loadTensorData(data)).toString('hex'),
        expected[info.name]!.hex,
        `${name}: ${info.name}`,
      );
    }
  }
});

test('a sharded checkpoint index is refused: each shard is packed', async () => {
  await assert.rejects(
    packFile(join(dir, 'sharded', 'pytorch_model.bin.index.json')),
    /keeps its tensors in shards \(pytorch_model-00001-of-00002.bin, pytorch_model-00002-of-00002.bin\); pack each shard/,
  );
});

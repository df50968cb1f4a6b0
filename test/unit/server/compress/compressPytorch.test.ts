import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeValues } from '../../../../src/server/analysis/decode';
import { compressModel } from '../../../../src/server/compress';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import { capabilitiesOf, openModelFile } from '../../../../src/server/formats/registry';
import { safetensorsFormat } from '../../../../src/server/formats/safetensors';
import { applyRecipe } from '../../../../src/server/plan/apply';
import { planModel } from '../../../../src/server/plan';
import { makeTempDir } from '../../../support/safetensorsBuilder';
import {
  writeGaussianCheckpoint,
  writeTorchCheckpoints,
  type CheckpointReference,
} from '../../../support/torchCheckpoints';

let dir: string;
let removeDir: () => Promise<void>;
let reference: Readonly<Record<string, CheckpointReference>>;
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-pt-compress-'));
  reference = await writeTorchCheckpoints(dir);
});
after(() => removeDir());

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

test('a PyTorch checkpoint compresses into a .safetensors file next to it', async () => {
  // Compressed copies are safetensors files: the quick picks offer safetensors' int8 storage.
  assert.deepEqual(
    capabilitiesOf('pytorch').storage?.int8,
    capabilitiesOf('safetensors').storage?.int8,
  );
  assert.ok(capabilitiesOf('pytorch').compress.includes('fp16'));
  const source = join(dir, 'checkpoint.pt');
  const checksum = await sha256(source);
  const report = await compressModel(source, { tensors: [], options: { method: 'fp16' } });
  assert.equal(await sha256(source), checksum, 'the checkpoint is unchanged');
  assert.equal(basename(report.output), 'checkpoint.fp16.safetensors');
  const written = await safetensorsFormat.open(report.output);
  const expected = reference['checkpoint.pt']!.tensors;
  assert.deepEqual(
    written.tensors.map(({ info }) => info.name).sort(),
    Object.keys(expected).sort(),
  );
  for (const { info, data } of written.tensors) {
    const tensor = expected[info.name]!;
    assert.deepEqual(info.shape, tensor.shape, info.name);
    const bytes = loadTensorData(data);
    if (['FloatStorage', 'DoubleStorage', 'BFloat16Storage'].includes(tensor.storage)) {
      // cast to float16: numpy's values within float16's half-ulp
      assert.equal(info.dtype, 'float16', info.name);
      const values = decodeValues('float16', bytes, info.parameterCount);
      tensor.values.forEach((value, i) => {
        assert.ok(Math.abs(values[i]! - value) <= Math.abs(value) * 2 ** -11 + 1e-7, info.name);
      });
    } else {
      // everything else is copied byte for byte (strided views written densely)
      assert.equal(Buffer.from(bytes).toString('hex'), tensor.hex, info.name);
    }
  }
  const metadata = new Map(written.summary.metadata.map(({ key, value }) => [key, value]));
  assert.equal(metadata.get('layerlens.source_format'), 'pytorch');
  assert.equal(metadata.get('format'), 'pt');
});

test('int8 with scales on a legacy checkpoint, and a second run takes the next free name', async () => {
  const source = join(dir, 'legacy.pt');
  const model = await openModelFile(source);
  const options = { method: 'int8', storeQuantized: true } as const;
  const first = await compressModel(source, { tensors: [], options }, {}, model);
  const second = await compressModel(source, { tensors: [], options }, {}, model);
  assert.equal(basename(first.output), 'legacy.int8.safetensors');
  assert.equal(basename(second.output), 'legacy.int8-1.safetensors');
  const written = await safetensorsFormat.open(first.output);
  const names = new Map(written.tensors.map((entry) => [entry.info.name, entry.info]));
  // Stored as int8 codes, which open decoded (the file records the convention).
  assert.equal(names.get('fc.weight')?.encoding?.storedType, 'int8');
  assert.deepEqual(names.get('fc.weight.scale')?.shape, [6]);
  assert.equal(names.get('fc.weight_t')?.encoding?.storedType, 'int8');
  assert.equal(names.get('fc.weight')?.dtype, 'float32');
  const changed = first.tensors.filter((tensor) => !tensor.skipped).map((tensor) => tensor.name);
  assert.deepEqual(changed.sort(), ['fc.weight', 'fc.weight_t']);
});

test('a plan for a checkpoint meets its size target with a .safetensors file', async () => {
  const source = join(dir, 'gaussian.pt');
  writeGaussianCheckpoint(source, 8, 'float32');
  const checksum = await sha256(source);
  const target = { kind: 'ratio', value: 1.9 } as const;
  const plan = await planModel(source, { target, measured: false });
  assert.ok(plan.feasible);
  const result = await applyRecipe(source, plan.recipe, { refine: true });
  assert.equal(basename(result.report.output), 'gaussian.plan.safetensors');
  const written = (await stat(result.report.output)).size;
  assert.equal(written, result.report.fileBytesAfter);
  assert.ok(written <= plan.fileBytesBefore / target.value, `${written} bytes`);
  assert.ok(result.targetMet);
  assert.equal(await sha256(source), checksum, 'the checkpoint is unchanged');
  const reread = await safetensorsFormat.open(result.report.output);
  assert.equal(reread.tensors.length, 2);
  const names = await readdir(dir);
  assert.ok(!names.some((name) => name.includes('plan-attempt')), `attempt files left: ${names}`);
});

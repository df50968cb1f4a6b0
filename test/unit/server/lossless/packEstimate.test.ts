/**
 * The model's lossless estimate (the table toolbar's line) against a real pack: Silero VAD
 * legacy, whose two branches hold the same weights, packs to 0.385 of its file while its
 * tensors one by one pack to 0.667; the estimate stores a repeated chunk once, as the pack
 * does, and is stated against the model's size, not the tensors' alone.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LosslessService } from '../../../../src/server/lossless/service';
import { ModelService } from '../../../../src/server/modelService';
import {
  modelPackEstimate,
  packEstimateText,
  totalCompressibility,
  type TensorCompressibility,
} from '../../../../src/shared/lossless';
import { makeTempFolder } from '../../../support/onnxBuilder';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

let folder: string;
let remove: () => Promise<void>;
let models: ModelService;
let lossless: LosslessService;

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-pack-estimate-'));
  models = new ModelService();
  lossless = new LosslessService(models, 2);
});

after(async () => {
  lossless.dispose();
  await remove();
});

async function measure(file: string) {
  const summary = await models.openModel(file);
  const indices = Array.from({ length: summary.tensorCount }, (_, i) => i);
  const results = [];
  // In the webview's batch size, so that repeats across batches are found too.
  for (let start = 0; start < indices.length; start += 64) {
    results.push(...(await lossless.compressibility(file, indices.slice(start, start + 64))));
  }
  return { summary, results };
}

test('Silero legacy: the estimate matches the real pack, against the file size', async () => {
  const file = join(folder, 'silero_vad_legacy.onnx');
  await copyFile('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx', file);
  const { summary, results } = await measure(file);
  const measured = results as TensorCompressibility[];
  const oneByOne =
    measured.reduce((sum, r) => sum + r.packedBytes, 0) /
    measured.reduce((sum, r) => sum + r.rawBytes, 0);
  const estimate = modelPackEstimate(totalCompressibility(results), summary.totalBytes);
  const packed = await lossless.pack(file, { out: `${file}.llz` });
  const actual = packed.packedBytes / packed.originalBytes;
  assert.equal(estimate.modelBytes, packed.originalBytes, 'stated against the file that is packed');
  assert.ok(
    Math.abs(estimate.packedBytes - packed.packedBytes) <= 0.02 * packed.packedBytes,
    `estimate ${estimate.packedBytes} bytes, pack ${packed.packedBytes} bytes`,
  );
  assert.ok(oneByOne - actual > 0.2, `tensors one by one ${oneByOne}, pack ${actual}`);
  const { text } = packEstimateText(results, summary.totalBytes);
  assert.match(text, new RegExp(`\\(${estimate.ratio.toFixed(3)}\\)$`));
});

test('two tensors with the same bytes count once; different ones twice', async () => {
  const data = new Float32Array(64 * 1024).map((_, k) => Math.sin(k * 0.013) * 0.05);
  const other = data.map((v) => v * 1.5);
  const file = await writeSafetensors(join(folder, 'tied.safetensors'), [
    { name: 'embed.weight', dtype: 'F32', shape: [256, 256], data },
    { name: 'head.weight', dtype: 'F32', shape: [256, 256], data },
    { name: 'other.weight', dtype: 'F32', shape: [256, 256], data: other },
  ]);
  const { summary, results } = await measure(file);
  const [embed, head, distinct] = results as TensorCompressibility[];
  assert.equal(embed!.repeatedBytes, 0);
  assert.equal(head!.repeatedBytes, head!.packedBytes, 'every chunk of the tie repeats');
  assert.equal(distinct!.repeatedBytes, 0);
  assert.equal(head!.ratio, embed!.ratio, 'the column still shows the tensor on its own');
  const total = totalCompressibility(results);
  assert.equal(total.packedBytes, embed!.packedBytes + distinct!.packedBytes);
  const packed = await lossless.pack(file, { out: `${file}.llz` });
  const estimate = modelPackEstimate(total, summary.totalBytes);
  assert.ok(
    Math.abs(estimate.packedBytes - packed.packedBytes) <= 0.02 * packed.packedBytes,
    `estimate ${estimate.packedBytes} bytes, pack ${packed.packedBytes} bytes`,
  );
});

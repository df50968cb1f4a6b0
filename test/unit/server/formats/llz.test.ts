/**
 * Packed ONNX models whose weights live in an external data file: the packed file holds
 * the model file, the data file stays beside it, and opening the `.llz` reads every tensor
 * with the original's values.
 */
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import { openModelFile } from '../../../../src/server/formats/registry';
import { packFile } from '../../../../src/server/lossless/pack';
import { weightIndices } from '../../../../src/server/sensitivity/tensors';
import {
  ExternalDataFile,
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let cleanup: (() => Promise<void>) | undefined;
after(() => cleanup?.());

test('a packed ONNX model with external data opens with the original values', async () => {
  const made = await makeTempFolder('layerlens-llz-external-');
  cleanup = made.remove;
  const folder = made.folder;
  const external = new ExternalDataFile('weights.bin');
  const values = (count: number, scale: number) =>
    Array.from({ length: count }, (_, i) => Math.fround(Math.sin(i * scale)));
  const modelPath = await writeModel(
    folder,
    'model.onnx',
    model(
      graph({
        nodes: [node('MatMul', ['x', 'w'], ['h']), node('Add', ['h', 'b'], ['y'])],
        initializers: [
          external.add('w', 'float32', [16, 8], values(128, 0.37)),
          tensor('b', 'float32', [1, 8], values(8, 1.3)),
        ],
        inputs: [valueInfo('x', 'float32', [1, 16])],
        outputs: [valueInfo('y', 'float32', [1, 8])],
      }),
    ),
    [external],
  );
  const packed = await packFile(modelPath, { out: join(folder, 'model.onnx.llz') });

  const original = await openModelFile(modelPath);
  const opened = await openModelFile(packed.out);
  assert.deepEqual(opened.summary.dataFiles, ['weights.bin']);
  assert.deepEqual(
    opened.tensors.map((entry) => [entry.info.name, entry.info.location]),
    [
      ['w', 'external'],
      ['b', 'initializer'],
    ],
  );
  for (const [index, entry] of opened.tensors.entries()) {
    const expected = original.tensors[index]!;
    const read = await loadTensorValues(entry, tensorMatrixShape(entry, true));
    const wanted = await loadTensorValues(expected, tensorMatrixShape(expected, true));
    assert.deepEqual(read, wanted, entry.info.name);
  }
});

test('a packed ONNX model names the weights its inner model does', async () => {
  const made = await makeTempFolder('layerlens-llz-structure-');
  after(made.remove);
  const packed = await packFile(SILERO_V5, { out: join(made.folder, 'silero_vad_v5.onnx.llz') });
  const original = await openModelFile(SILERO_V5);
  const opened = await openModelFile(packed.out);
  const weights = await weightIndices(original);
  assert.equal(weights.length, 16);
  assert.deepEqual(await weightIndices(opened), weights);
  // Twice: the skeleton the structure is read from is written anew each time.
  assert.deepEqual(await weightIndices(opened), weights);
});

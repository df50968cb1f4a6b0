/**
 * Packed ONNX models whose weights live in an external data file: the packed file holds
 * the model file, the data file stays beside it, and opening the `.llz` reads every tensor
 * with the original's values. A packed model is read (and drawn), never compressed or swept.
 */
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import { compressModel } from '../../../../src/server/compress';
import { ModelFileError } from '../../../../src/server/formats/modelFileError';
import { compressionOf, openModelFile, sweepOf } from '../../../../src/server/formats/registry';
import { computeSensitivity } from '../../../../src/server/sensitivity';
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

/** Silero VAD v5 packed into a temporary folder (removed after the tests), opened as the original and packed. */
async function packedSilero(prefix: string) {
  const made = await makeTempFolder(prefix);
  after(made.remove);
  const packed = await packFile(SILERO_V5, { out: join(made.folder, 'silero_vad_v5.onnx.llz') });
  return {
    path: packed.out,
    original: await openModelFile(SILERO_V5),
    opened: await openModelFile(packed.out),
  };
}

test('a packed ONNX model names the weights its inner model does', async () => {
  const { original, opened } = await packedSilero('layerlens-llz-structure-');
  const weights = await weightIndices(original);
  assert.equal(weights.length, 16);
  assert.deepEqual(await weightIndices(opened), weights);
  // Twice: the skeleton the structure is read from is written anew each time.
  assert.deepEqual(await weightIndices(opened), weights);
});

test('a packed model offers reading and its graph, and refuses compression and sensitivity naming the file', async () => {
  const { path, original, opened } = await packedSilero('layerlens-llz-capabilities-');
  // The inner model's format can do all of it; the packed file only what reading allows.
  assert.ok(original.summary.capabilities!.compress.length > 0);
  assert.equal(original.summary.capabilities!.sensitivity, true);
  const { readOnly, ...capabilities } = opened.summary.capabilities!;
  assert.deepEqual(capabilities, { compress: [], run: false, sensitivity: false, graph: true });
  assert.match(readOnly!, /unpack it first \(layerlens unpack silero_vad_v5\.onnx\.llz\)/);
  const refusal = (error: unknown) =>
    error instanceof ModelFileError &&
    error.message.includes(path) &&
    /unpack it first/.test(error.message) &&
    !/not a valid ONNX model/.test(error.message);
  assert.throws(() => compressionOf(opened), refusal);
  assert.throws(() => sweepOf(opened), refusal);
  await assert.rejects(compressModel(path, { tensors: [], options: { method: 'int8' } }), refusal);
  await assert.rejects(computeSensitivity(path, { indices: [], measured: false }), refusal);
});

test("a packed model's metadata names what its original is checked by, as its version records it", async () => {
  for (const [version, key] of [
    [3, 'original SHA-256'],
    [4, 'original SHA-256 of chunk SHA-256s'],
  ] as const) {
    const opened = await openModelFile(resolve(`test/fixtures/v${version}.safetensors.llz`));
    const keys = opened.summary.metadata.map((entry) => entry.key);
    assert.ok(keys.includes(key), `version ${version}: ${keys.join(', ')}`);
  }
});

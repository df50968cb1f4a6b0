/**
 * Where LayerLens writes (src/server/outputPaths.ts): the output folder setting, the
 * `<model>.layerlens/` folder of reports and recipes, and free default names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  artifactPath,
  artifactsFolder,
  chosenOrDefault,
  defaultOutputPath,
  outputFolder,
} from '../../../src/server/outputPaths';
import { useTempFolder } from '../../support/tempFolder';

const folder = useTempFolder('layerlens-output-paths-');

test('the output folder: beside the model, or the setting (relative to the model folder)', () => {
  const source = path.join(folder(), 'models', 'v5.onnx');
  assert.equal(outputFolder(source), path.join(folder(), 'models'));
  assert.equal(outputFolder(source, '  '), path.join(folder(), 'models'));
  assert.equal(outputFolder(source, 'compressed'), path.join(folder(), 'models', 'compressed'));
  assert.equal(outputFolder(source, '../out'), path.join(folder(), 'out'));
  const absolute = path.join(folder(), 'elsewhere');
  assert.equal(outputFolder(source, absolute), absolute);
});

test('reports and recipes go into one <model>.layerlens folder beside the new model', () => {
  const source = path.join(folder(), 'models', 'v5.onnx');
  const output = path.join(folder(), 'out', 'v5.int8.onnx');
  assert.equal(artifactsFolder(source, output), path.join(folder(), 'out', 'v5.onnx.layerlens'));
  assert.equal(
    artifactPath(source, output, 'report'),
    path.join(folder(), 'out', 'v5.onnx.layerlens', 'v5.int8.onnx.report.json'),
  );
  assert.equal(
    artifactPath(source, output, 'recipe'),
    path.join(folder(), 'out', 'v5.onnx.layerlens', 'v5.int8.onnx.recipe.json'),
  );
  // A recipe for the model itself (layerlens plan) sits in the same folder.
  assert.equal(
    artifactPath(source, source, 'recipe'),
    path.join(folder(), 'models', 'v5.onnx.layerlens', 'v5.onnx.recipe.json'),
  );
});

test('a chosen path is used as given (relative to the model folder); else the name in the output folder', () => {
  const source = path.join(folder(), 'models', 'v5.onnx');
  assert.equal(
    chosenOrDefault(source, 'mine.onnx', 'v5.onnx.llz', 'out'),
    path.join(folder(), 'models', 'mine.onnx'),
  );
  assert.equal(
    chosenOrDefault(source, undefined, 'v5.onnx.llz', 'out'),
    path.join(folder(), 'models', 'out', 'v5.onnx.llz'),
  );
  assert.equal(
    chosenOrDefault(source, undefined, 'v5.onnx.llz'),
    path.join(folder(), 'models', 'v5.onnx.llz'),
  );
});

test('default names: <stem>.<method><ext>, then -1, -2… past anything that starts with the name', async () => {
  const source = path.join(folder(), 'model.onnx');
  await writeFile(source, 'x');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder(), 'model.int8.onnx'));
  await writeFile(path.join(folder(), 'model.int8.onnx'), 'taken');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder(), 'model.int8-1.onnx'));
  // A leftover sidecar, or a report in the model's .layerlens folder, also takes the name.
  await mkdir(path.join(folder(), 'model.onnx.layerlens'));
  await writeFile(
    path.join(folder(), 'model.onnx.layerlens', 'model.int8-1.onnx.report.json'),
    '{}',
  );
  await writeFile(path.join(folder(), 'model.int8-2.onnx.data'), '');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder(), 'model.int8-3.onnx'));
  // A name that only shares a prefix without a dot does not collide.
  await writeFile(path.join(folder(), 'model.fp16.onnxfoo'), '');
  assert.equal(await defaultOutputPath(source, 'fp16'), path.join(folder(), 'model.fp16.onnx'));
  assert.equal(
    await defaultOutputPath(path.join(folder(), 'weights.safetensors'), 'bf16'),
    path.join(folder(), 'weights.bf16.safetensors'),
  );
  // Another extension (a PyTorch checkpoint written as safetensors), in a folder not made yet.
  assert.equal(
    await defaultOutputPath(source, 'int8', { ext: '.safetensors', folderSetting: 'new/sub' }),
    path.join(folder(), 'new', 'sub', 'model.int8.safetensors'),
  );
});

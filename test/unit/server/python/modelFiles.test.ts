/**
 * From a path written in a script to a model file on disk: where relative paths point,
 * which file of a save_pretrained folder holds the weights, and what LayerLens says about
 * missing, unsupported and broken files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelService } from '../../../../src/server/modelService';
import {
  modelFileInFolder,
  readModelState,
  referencedFile,
  resolveScriptPath,
} from '../../../../src/server/python/modelFiles';
import type { ModelReference } from '../../../../src/server/python/scriptAnalysis';
import { writeSafetensors, writeShardedSafetensors } from '../../../support/safetensorsBuilder';

let root: string;
let service: ModelService;
const RANGE = { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } };

function reference(path: string | null, target: 'file' | 'folder' = 'file'): ModelReference {
  return { call: 'test', access: 'read', target, path, range: RANGE, pathRange: RANGE };
}

const tiny = (name: string) => ({
  name,
  dtype: 'F32' as const,
  shape: [2],
  data: new Float32Array([1, 0]),
});

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'layerlens-model-files-'));
  service = new ModelService({ workerCount: 1 });
  await mkdir(join(root, 'project', 'scripts'), { recursive: true });
  await mkdir(join(root, 'data'), { recursive: true });
  await writeSafetensors(join(root, 'project', 'scripts', 'local.safetensors'), [tiny('a')]);
  await writeSafetensors(join(root, 'project', 'local.safetensors'), [tiny('b')]);
  await writeSafetensors(join(root, 'data', 'shared.safetensors'), [tiny('c')]);
});

after(async () => {
  service.dispose();
  await rm(root, { recursive: true, force: true });
});

test("a relative path is looked up in the script's folder first, then each workspace folder", async () => {
  const script = join(root, 'project', 'scripts', 'train.py');
  const folders = [join(root, 'project'), join(root, 'data')];
  assert.deepEqual(await resolveScriptPath('local.safetensors', script, folders), {
    path: join(root, 'project', 'scripts', 'local.safetensors'),
    exists: true,
  });
  assert.deepEqual(await resolveScriptPath('shared.safetensors', script, folders), {
    path: join(root, 'data', 'shared.safetensors'),
    exists: true,
  });
  assert.deepEqual(await resolveScriptPath('../local.safetensors', script, folders), {
    path: join(root, 'project', 'local.safetensors'),
    exists: true,
  });
  // Not there yet: the script's folder is where it will be written.
  assert.deepEqual(await resolveScriptPath('out/new.onnx', script, folders), {
    path: join(root, 'project', 'scripts', 'out', 'new.onnx'),
    exists: false,
  });
  assert.deepEqual(await resolveScriptPath('/nowhere/x.onnx', script, folders), {
    path: '/nowhere/x.onnx',
    exists: false,
  });
});

test('a save_pretrained folder: model.safetensors first, then an index, any safetensors, ONNX', async () => {
  const folder = join(root, 'pretrained');
  await mkdir(folder);
  assert.equal(await modelFileInFolder(folder), null);
  await writeFile(join(folder, 'config.json'), '{}');
  await writeFile(join(folder, 'model.onnx'), 'x');
  assert.equal(await modelFileInFolder(folder), join(folder, 'model.onnx'));
  await writeSafetensors(join(folder, 'adapter.safetensors'), [tiny('d')]);
  assert.equal(await modelFileInFolder(folder), join(folder, 'model.onnx'));
  await rm(join(folder, 'model.onnx'));
  assert.equal(await modelFileInFolder(folder), join(folder, 'adapter.safetensors'));
  const index = await writeShardedSafetensors(folder, [
    { file: 'model-00001-of-00001.safetensors', tensors: [tiny('e')] },
  ]);
  assert.equal(await modelFileInFolder(folder), index);
  await writeSafetensors(join(folder, 'model.safetensors'), [tiny('f')]);
  assert.equal(await modelFileInFolder(folder), join(folder, 'model.safetensors'));

  const script = join(root, 'train.py');
  assert.deepEqual(await referencedFile(reference('pretrained', 'folder'), script, []), {
    path: join(folder, 'model.safetensors'),
    exists: true,
  });
  assert.deepEqual(await referencedFile(reference('missing-folder', 'folder'), script, []), {
    path: join(root, 'missing-folder'),
    exists: false,
  });
  assert.equal(await referencedFile(reference(null), script, []), null);
});

test('model states: a model, a missing file, a plain pickle, a broken checkpoint, a broken file', async () => {
  const model = await readModelState(service, join(root, 'data', 'shared.safetensors'));
  assert.equal(model.kind, 'model');
  assert.deepEqual(model.kind === 'model' ? model.tensors.map((tensor) => tensor.name) : [], ['c']);
  assert.deepEqual(await readModelState(service, join(root, 'none.onnx')), {
    kind: 'missing',
    path: join(root, 'none.onnx'),
  });
  const pickle = join(root, 'objects.pkl');
  await writeFile(pickle, Buffer.from([0x80, 0x02, 0x4e, 0x2e]));
  assert.deepEqual(await readModelState(service, pickle), {
    kind: 'unsupported',
    path: pickle,
    problem: 'format not supported yet',
  });
  // A .pth is read as a PyTorch checkpoint: a broken one says what is wrong with it.
  const checkpoint = join(root, 'checkpoint.pth');
  await writeFile(checkpoint, Buffer.from('PK\u0003\u0004'));
  const brokenCheckpoint = await readModelState(service, checkpoint);
  assert.equal(brokenCheckpoint.kind, 'error');
  assert.match(
    brokenCheckpoint.kind === 'error' ? brokenCheckpoint.problem : '',
    /not a readable zip archive/,
  );
  const broken = join(root, 'broken.safetensors');
  await writeFile(broken, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2]));
  const state = await readModelState(service, broken);
  assert.equal(state.kind, 'error');
  assert.ok(state.kind === 'error' && state.problem.length > 10, JSON.stringify(state));
});

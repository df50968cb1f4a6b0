/**
 * Output files of a compression: the default names and their collision suffixes, never
 * replacing a file, and nothing left behind when a job fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  defaultOutputPath,
  OutputFiles,
  withOutputFiles,
} from '../../../../src/server/compress/output';
import { ModelFileError } from '../../../../src/server/formats/types';
import { temporaryFolder } from '../../../../src/server/tempFiles';

let folder: string;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'layerlens-output-'));
});

after(async () => {
  await rm(folder, { recursive: true, force: true });
});

test('default names: <stem>.<method><ext>, then -1, -2… past any file that starts with the name', async () => {
  const source = path.join(folder, 'model.onnx');
  await writeFile(source, 'x');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder, 'model.int8.onnx'));
  await writeFile(path.join(folder, 'model.int8.onnx'), 'taken');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder, 'model.int8-1.onnx'));
  // A leftover sidecar or report alone also takes the name.
  await writeFile(path.join(folder, 'model.int8-1.onnx.report.json'), '{}');
  await writeFile(path.join(folder, 'model.int8-2.onnx.data'), '');
  assert.equal(await defaultOutputPath(source, 'int8'), path.join(folder, 'model.int8-3.onnx'));
  // A name that only shares a prefix without a dot does not collide.
  await writeFile(path.join(folder, 'model.fp16.onnxfoo'), '');
  assert.equal(await defaultOutputPath(source, 'fp16'), path.join(folder, 'model.fp16.onnx'));
  assert.equal(
    await defaultOutputPath(path.join(folder, 'weights.safetensors'), 'bf16'),
    path.join(folder, 'weights.bf16.safetensors'),
  );
});

test('commit moves the temporary file into place and refuses to replace a file', async () => {
  const files = new OutputFiles(path.join(folder, 'commit.out'));
  const temp = files.temp();
  // LayerLens's temporary folder when it shares the output's file system, else beside it.
  assert.ok(
    path.dirname(temp) === temporaryFolder() ||
      (path.dirname(temp) === folder &&
        /^\.commit\.out\.layerlens-\d+-[0-9a-f]+\.tmp$/.test(path.basename(temp))),
    temp,
  );
  await writeFile(temp, 'new');
  await files.commit();
  assert.equal(await readFile(files.path, 'utf8'), 'new');

  const clash = new OutputFiles(path.join(folder, 'commit.out'));
  await writeFile(clash.temp(), 'other');
  await assert.rejects(clash.commit(), ModelFileError);
  assert.equal(await readFile(files.path, 'utf8'), 'new', 'the existing file is untouched');
  await clash.discard();
  assert.ok(!(await readdir(folder)).some((name) => name.endsWith('.tmp')));
  assert.deepEqual(await readdir(temporaryFolder()), []);
});

test('a job that fails removes its temporary and its already committed files', async () => {
  const source = path.join(folder, 'failing.safetensors');
  await writeFile(source, 'x');
  const before = (await readdir(folder)).sort();
  await assert.rejects(
    withOutputFiles(source, 'prune', undefined, async (files) => {
      await writeFile(files.temp(`${files.path}.data`), 'sidecar');
      await files.commit(`${files.path}.data`);
      await writeFile(files.temp(), 'half a model');
      throw new Error('validation failed');
    }),
    /validation failed/,
  );
  assert.deepEqual((await readdir(folder)).sort(), before);
});

test('an explicit output path that exists, or is the source, is refused', async () => {
  const source = path.join(folder, 'explicit.onnx');
  await writeFile(source, 'x');
  await writeFile(path.join(folder, 'exists.onnx'), 'y');
  for (const outPath of ['exists.onnx', source]) {
    await assert.rejects(
      withOutputFiles(source, 'fp16', outPath, async () => 'unreachable'),
      (error: unknown) => error instanceof ModelFileError && /never overwrites/.test(error.problem),
    );
  }
  const result = await withOutputFiles(source, 'fp16', 'fresh.onnx', async (files) => files.path);
  assert.equal(result, path.join(folder, 'fresh.onnx'));
});

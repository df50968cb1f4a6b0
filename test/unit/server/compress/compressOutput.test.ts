/**
 * Output files of a compression: never replacing a file, the report in the model's
 * `.layerlens/` folder, and nothing left behind when a job fails (the names themselves:
 * test/unit/server/outputPaths.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutputFiles, withOutputFiles } from '../../../../src/server/compress/output';
import { ModelFileError } from '../../../../src/server/formats/types';
import { temporaryFolder } from '../../../../src/server/tempFiles';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-output-');

test('commit moves the temporary file into place and refuses to replace a file', async () => {
  const files = new OutputFiles(path.join(folder(), 'commit.out'));
  const temp = files.temp();
  // LayerLens's temporary folder when it shares the output's file system, else beside it.
  assert.ok(
    path.dirname(temp) === temporaryFolder() ||
      (path.dirname(temp) === folder() &&
        /^\.commit\.out\.layerlens-\d+-[0-9a-f]+\.tmp$/.test(path.basename(temp))),
    temp,
  );
  await writeFile(temp, 'new');
  await files.commit();
  assert.equal(await readFile(files.path, 'utf8'), 'new');

  const clash = new OutputFiles(path.join(folder(), 'commit.out'));
  await writeFile(clash.temp(), 'other');
  await assert.rejects(clash.commit(), ModelFileError);
  assert.equal(await readFile(files.path, 'utf8'), 'new', 'the existing file is untouched');
  await clash.discard();
  assert.ok(!(await readdir(folder())).some((name) => name.endsWith('.tmp')));
  assert.deepEqual(await readdir(temporaryFolder()), []);
});

test('a job that fails removes its temporary and its already committed files', async () => {
  const source = path.join(folder(), 'failing.safetensors');
  await writeFile(source, 'x');
  const before = (await readdir(folder())).sort();
  await assert.rejects(
    withOutputFiles(source, { name: 'prune', folder: 'out/prune' }, async (files) => {
      assert.equal(files.path, path.join(folder(), 'out', 'prune', 'failing.prune.safetensors'));
      await writeFile(files.temp(files.reportPath), '{}');
      await files.commit(files.reportPath);
      await writeFile(files.temp(`${files.path}.data`), 'sidecar');
      await files.commit(`${files.path}.data`);
      await writeFile(files.temp(), 'half a model');
      throw new Error('validation failed');
    }),
    /validation failed/,
  );
  assert.deepEqual((await readdir(folder())).sort(), before);
});

test('an explicit output path that exists, or is the source, is refused', async () => {
  const source = path.join(folder(), 'explicit.onnx');
  await writeFile(source, 'x');
  await writeFile(path.join(folder(), 'exists.onnx'), 'y');
  for (const outPath of ['exists.onnx', source]) {
    await assert.rejects(
      withOutputFiles(source, { name: 'fp16', outPath }, async () => 'unreachable'),
      (error: unknown) => error instanceof ModelFileError && /never overwrites/.test(error.problem),
    );
  }
  // A report left from an earlier file of that name refuses it too.
  await mkdir(path.join(folder(), 'explicit.onnx.layerlens'));
  await writeFile(path.join(folder(), 'explicit.onnx.layerlens', 'stale.onnx.report.json'), '{}');
  await assert.rejects(
    withOutputFiles(source, { name: 'fp16', outPath: 'stale.onnx' }, async () => 'unreachable'),
    (error: unknown) => error instanceof ModelFileError && /report file exists/.test(error.problem),
  );
  const result = await withOutputFiles(source, { name: 'fp16', outPath: 'fresh.onnx' }, (files) =>
    Promise.resolve([files.path, files.reportPath]),
  );
  assert.deepEqual(result, [
    path.join(folder(), 'fresh.onnx'),
    path.join(folder(), 'explicit.onnx.layerlens', 'fresh.onnx.report.json'),
  ]);
});

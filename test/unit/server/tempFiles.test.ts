/** LayerLens's temporary folder: one per process, swept after a kill, atomic renames kept. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, matchesGlob, relative } from 'node:path';
import { test } from 'node:test';
import {
  BESIDE_OUTPUT_TEMP_GLOB,
  besideOutputPath,
  sweepTemporaryFolders,
  temporaryFolder,
  temporaryPath,
  temporaryRoot,
  temporarySubfolder,
} from '../../../src/server/tempFiles';

test('temporary paths lie in the process folder, named without any content', () => {
  const folder = temporaryFolder();
  assert.equal(dirname(folder), temporaryRoot());
  assert.match(folder, new RegExp(`/${process.pid}-[0-9a-f]+$`));
  const target = join(temporaryRoot(), '..', 'some model ...\u0000x.onnx');
  const temp = temporaryPath(target, '.onnx');
  assert.equal(dirname(temp), folder);
  assert.match(temp, /\/[0-9a-f]{12}\.onnx$/);
  assert.notEqual(temporaryPath(target), temporaryPath(target));
  const sub = temporarySubfolder();
  assert.equal(dirname(sub), folder);
  assert.ok(statSync(sub).isDirectory());
});

test('temporary files beside an output are hidden from the explorer by the manifest', () => {
  const workspace = join(temporaryRoot(), 'workspace');
  const beside = besideOutputPath(join(workspace, 'models', 'v5.int8.onnx'));
  assert.equal(dirname(beside), join(workspace, 'models'));
  assert.ok(matchesGlob(relative(workspace, beside), BESIDE_OUTPUT_TEMP_GLOB), beside);
  assert.ok(!matchesGlob('models/v5.int8.onnx', BESIDE_OUTPUT_TEMP_GLOB));
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
    contributes: { configurationDefaults: Record<string, Record<string, boolean>> };
  };
  assert.equal(
    manifest.contributes.configurationDefaults['files.exclude']?.[BESIDE_OUTPUT_TEMP_GLOB],
    true,
  );
});

test('the folders of processes that no longer run are swept; live ones stay', () => {
  const root = temporaryRoot();
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const deadFolder = join(root, `${dead}-00c0ffee`);
  mkdirSync(deadFolder, { recursive: true });
  writeFileSync(join(deadFolder, 'left.tmp'), 'x');
  const removed = sweepTemporaryFolders();
  assert.ok(removed.includes(`${dead}-00c0ffee`), removed.join(', '));
  assert.ok(!existsSync(deadFolder));
  assert.ok(existsSync(temporaryFolder()), "this process's folder stays");
});

test('a process killed mid-write leaves a folder that the next start removes', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const t = require('./src/server/tempFiles.ts');
       const p = t.temporaryPath(require('node:path').join(require('node:os').tmpdir(), 'out.bin'));
       require('node:fs').writeFileSync(p, Buffer.alloc(1 << 20));
       console.log(p);
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const written = await new Promise<string>((resolve) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
  });
  assert.ok(existsSync(written), written);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  assert.ok(existsSync(written), 'a kill cannot clean up');
  sweepTemporaryFolders();
  assert.ok(!existsSync(dirname(written)), 'swept at the next start');
  assert.ok(!readdirSync(temporaryRoot()).some((name) => name.startsWith(`${child.pid}-`)));
});

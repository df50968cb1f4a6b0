/** `layerlens inspect --stats` exits 1 naming the tensor whose data is corrupt, and names the file on refusal. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

function inspect(file: string) {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/bin.ts', 'inspect', '--stats', resolve(file)],
    { encoding: 'utf8' },
  );
}

test('a packed file with a corrupt chunk exits 1 and names the tensor', () => {
  const result = inspect('test/fixtures/hostile/corrupt-chunk.llz');
  assert.equal(result.status, 1, result.stderr);
  assert.match(
    result.stderr,
    /layerlens: tensor "layer\.f32": .*corrupt-chunk\.llz: chunk 0 of tensor "layer\.f32" is corrupt/,
  );
  // The readable tensors are still reported.
  assert.match(result.stdout, /^layer\.int8 .* -99 +94$/m);
});

test('the intact packed file exits 0', () => {
  const result = inspect('test/fixtures/v2.safetensors.llz');
  assert.equal(result.status, 0, result.stderr);
});

test('a hostile file exits 1 with the file and the problem, not 70 with a stack', () => {
  const result = inspect('test/fixtures/hostile/deep-shape.safetensors');
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /deep-shape\.safetensors: the header nests 100002 levels deep/);
  assert.doesNotMatch(result.stderr, /\n +at /);
});

test('the bundled command decodes ONNX without a Buffer() DeprecationWarning', () => {
  // The bundle (built by npm test before the unit tests) is where protobufjs runs without
  // its Buffer support; under tsx the warning never showed.
  const result = spawnSync(
    process.execPath,
    [
      '--trace-deprecation',
      'dist/cli.js',
      'inspect',
      resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /DeprecationWarning/);
});

test('compress and sensitivity on a packed file exit 1, name the file and say to unpack it', () => {
  const file = resolve('test/fixtures/v2.safetensors.llz');
  for (const args of [
    ['compress', file, '--method', 'int8'],
    ['sensitivity', file],
  ]) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(
      result.stderr,
      /v2\.safetensors\.llz: a packed LayerLens file is only read: unpack it first \(layerlens unpack v2\.safetensors\.llz\)/,
    );
  }
});

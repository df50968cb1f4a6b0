/** `layerlens inspect` on a GGUF file (written by the tests' independent writer). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { writeGgufFixtures, type GgufFixtures } from '../../support/ggufFixtures';

let fixtures: GgufFixtures;
before(() => {
  fixtures = writeGgufFixtures();
});
after(() => fixtures.remove());

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
    encoding: 'utf8',
  });
}

test('inspect summarises a GGUF: metadata, ggml types in the DType column, statistics', () => {
  const run = layerlens('inspect', fixtures.path('types-v3.gguf'), '--stats');
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /types-v3\.gguf {2}GGUF · .* · 17 tensors/);
  assert.match(run.stdout, /tokenizer\.ggml\.tokens: \[string × 1000\] "tok0"/);
  const q4k = run.stdout.split('\n').find((line) => line.startsWith('blk.7.ffn_q4_k.weight'));
  assert.ok(q4k, run.stdout);
  assert.match(q4k, /\[2, 256\]\s+Q4_K\s+512\s+288 B/);
  const listed = run.stdout.split('\n').find((line) => line.startsWith('blk.99.ffn_iq2_xxs'));
  assert.match(listed ?? '', /IQ2_XXS.*values not decoded/);
});

test('inspect names the file and the problem of a malformed GGUF', () => {
  const run = layerlens('inspect', fixtures.path('bad-type.gguf'));
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /bad-type\.gguf.*unknown ggml type id 77/);
});

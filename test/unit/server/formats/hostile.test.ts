/**
 * The reproducers in test/fixtures/hostile (issue 20; test/fixtures/hostile/generate.ts
 * writes them): each one opens, or fails with a ModelFileError naming the file and the limit,
 * instead of a stack overflow, a file name taken from the content, or gigabytes of memory.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { jsonNestingDepth, parseFileJson } from '../../../../src/server/formats/jsonText';
import { openModelFile } from '../../../../src/server/formats/registry';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { unpackFile } from '../../../../src/server/lossless/pack';
import { ModelFileError } from '../../../../src/server/formats/types';
import {
  MAX_DENSIFIED_SPARSE_BYTES,
  MAX_JSON_DEPTH,
  MAX_LLZ_INDEX_BYTES,
  MAX_LLZ_STRUCTURE_BYTES,
  MAX_PACKED_STATS_BYTES,
} from '../../../../src/shared/limits';

const HOSTILE = resolve('test/fixtures/hostile');

async function assertRefused(name: string, problem: RegExp): Promise<void> {
  const file = resolve(HOSTILE, name);
  await assert.rejects(openModelFile(file), (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `expected a ModelFileError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.problem, problem);
    return true;
  });
}

test('the nesting depth counts brackets outside strings only', () => {
  assert.equal(jsonNestingDepth('{"a":[1,[2]],"b":"[[[[{{"}'), 3);
  assert.equal(jsonNestingDepth('"\\"[["'), 0);
  assert.equal(jsonNestingDepth('[]'), 1);
  const limit = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
  assert.deepEqual(parseFileJson('/f.json', limit, 'the file') instanceof Array, true);
  assert.throws(
    () => parseFileJson('/f.json', `[${limit}]`, 'the file'),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.file === '/f.json' &&
      error.problem ===
        `the file nests ${MAX_JSON_DEPTH + 1} levels deep, more than the limit of ${MAX_JSON_DEPTH}`,
  );
  assert.throws(() => parseFileJson('/f.json', '{', 'the file'), /the file is not valid JSON/);
});

for (const name of ['deep-metadata', 'deep-shape', 'deep-offsets']) {
  test(`safetensors with 100k-deep JSON (${name}) is refused by its depth`, async () => {
    await assertRefused(
      `${name}.safetensors`,
      /^the header nests 100002 levels deep, more than the limit of 64$/,
    );
  });
}

test('a sharded index whose metadata nests 100k deep is refused by its depth', async () => {
  await assertRefused(
    'deep-index/model.safetensors.index.json',
    /^the index nests 100002 levels deep/,
  );
});

test('a packed file whose index inflates past the limit stops while inflating', async () => {
  await assertRefused(
    'index-bomb.llz',
    new RegExp(`index cannot be inflated to UTF-8 text of at most ${MAX_LLZ_INDEX_BYTES} bytes`),
  );
});

test('a packed file declaring 2 GB of structure is refused before anything is decoded', async () => {
  await assertRefused(
    'structure-bomb.llz',
    new RegExp(
      `structure \\(non-tensor bytes\\) is 2080374784 bytes, more than the limit of ${MAX_LLZ_STRUCTURE_BYTES}`,
    ),
  );
});

test("packed files whose original name is '..', '.', 300 characters or holds a NUL open", async () => {
  const reference = await openModelFile(resolve('test/fixtures/v2.safetensors.llz'));
  const bytesOf = (entry: (typeof reference.tensors)[number]) =>
    entry.data.kind === 'memory' ? entry.data.load() : undefined;
  const expected = reference.tensors.map(bytesOf);
  for (const name of ['name-dotdot', 'name-dot', 'name-long', 'name-nul']) {
    const opened = await openModelFile(resolve(HOSTILE, `${name}.llz`));
    assert.deepEqual(
      opened.tensors.map((entry) => entry.info.name),
      reference.tensors.map((entry) => entry.info.name),
      name,
    );
    opened.tensors.forEach((entry, i) => {
      assert.deepEqual(bytesOf(entry), expected[i], `${name}: ${entry.info.name}`);
    });
  }
});

test('a 106-byte ONNX whose sparse initializer is 1 GiB dense is not densified', async () => {
  const file = resolve(HOSTILE, 'sparse-bomb.onnx');
  const opened = await openModelFile(file);
  const [entry] = opened.tensors;
  assert.deepEqual(entry?.info.shape, [16384, 16384]);
  assert.equal(entry?.data.kind, 'memory');
  assert.throws(
    () => (entry!.data.kind === 'memory' ? entry!.data.load() : undefined),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.file === file &&
      error.problem.includes(
        `its dense form of 1073741824 bytes is more than the ${MAX_DENSIFIED_SPARSE_BYTES}`,
      ),
  );
});

test('statistics of a packed tensor over MAX_PACKED_STATS_BYTES are refused with the reason, at once', async () => {
  // A real packed tensor whose declared size is doctored past the limit (a few kilobytes of
  // .llz can declare a terabyte of zeros; decoding it would take hours).
  const opened = await openModelFile(resolve('test/fixtures/v2.safetensors.llz'));
  const entry = opened.tensors.find((candidate) => candidate.info.dtype === 'int8')!;
  assert.equal(entry.data.kind, 'memory');
  const length = MAX_PACKED_STATS_BYTES + 1;
  const huge = {
    info: { ...entry.info, shape: [length], parameterCount: length, byteLength: length },
    data: { ...entry.data, length },
  } as typeof entry;
  const pool = new WorkerPool(1);
  try {
    const started = performance.now();
    await assert.rejects(
      computeTensorStats(pool, huge),
      new RegExp(`statistics decode packed tensors of at most ${MAX_PACKED_STATS_BYTES} bytes`),
    );
    assert.ok(performance.now() - started < 5000);
  } finally {
    pool.dispose();
  }
});

test('a delta whose base model path leads out of its folder is not followed, opening or unpacking', async () => {
  const outside =
    /the base model path '\.\.\/\.\.\/\.\.\/etc\/passwd' points outside the model's folder/;
  const file = resolve(HOSTILE, 'base-outside.llz');
  // Opening shows the structure; the base is not followed (the metadata says why).
  const opened = await openModelFile(file);
  const delta = opened.summary.metadata.find(({ key }) => key === 'delta against')!;
  assert.match(delta.value, outside);
  assert.match(delta.value, /tensor values cannot be read/);
  const out = resolve(tmpdir(), `layerlens-base-outside-${process.pid}.safetensors`);
  await assert.rejects(unpackFile(file, { out }), (error: unknown) => {
    assert.ok(error instanceof ModelFileError, String(error));
    assert.equal(error.file, file);
    assert.match(error.problem, outside);
    return true;
  });
  assert.equal(existsSync(out), false);
});

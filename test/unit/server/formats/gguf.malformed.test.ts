/**
 * Malformed GGUF headers (written by test/support/gguf_fixtures.py): each is refused with a
 * ModelFileError naming the file and the problem, before any size read from it is used.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import {
  MAX_GGUF_ARRAY_DEPTH,
  MAX_GGUF_STRING_BYTES,
  MAX_GGUF_TENSOR_DIMS,
  MAX_TENSORS,
} from '../../../../src/shared/limits';
import { writeGgufFixtures, type GgufFixtures } from '../../../support/ggufFixtures';

let fixtures: GgufFixtures;
before(() => {
  fixtures = writeGgufFixtures();
});
after(() => fixtures.remove());

async function assertRefused(name: string, problem: RegExp): Promise<void> {
  const path = fixtures.path(name);
  await assert.rejects(openModelFile(path), (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `expected a ModelFileError, got ${String(error)}`);
    assert.equal(error.file, path);
    assert.match(error.problem, problem);
    return true;
  });
}

const CASES: readonly [string, RegExp][] = [
  [
    'bad-tensor-count.gguf',
    new RegExp(`1099511627776 tensors, more than the limit of ${MAX_TENSORS}`),
  ],
  ['bad-kv-count.gguf', /metadata entry count 4611686018427387904 is not a usable size/],
  ['bad-version.gguf', /GGUF version 1 .* is not read/],
  ['bad-type.gguf', /unknown ggml type id 77/],
  ['bad-dims.gguf', new RegExp(`5 dimensions, more than ggml's limit of ${MAX_GGUF_TENSOR_DIMS}`)],
  ['bad-offset.gguf', /at data offset 1073741824 lie past the end of the file/],
  ['bad-alignment.gguf', /general.alignment 48 is not a power of two/],
  ['bad-row.gguf', /rows of 100 weights are not a whole number of Q8_0 blocks of 32/],
  [
    'bad-string.gguf',
    new RegExp(
      `"general.name" claims 1000000000 bytes, more than the limit of ${MAX_GGUF_STRING_BYTES}`,
    ),
  ],
  ['bad-depth.gguf', new RegExp(`nests arrays deeper than the limit of ${MAX_GGUF_ARRAY_DEPTH}`)],
  ['bad-value-type.gguf', /"test.odd" has unknown value type 99/],
];

for (const [name, problem] of CASES) {
  test(`${name} is refused with a clear problem`, () => assertRefused(name, problem));
}

test('a string length within the limit but past the end of the file', async () => {
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  bytes.set([0x47, 0x47, 0x55, 0x46]); // GGUF
  view.setUint32(4, 3, true);
  view.setBigUint64(8, 0n, true); // tensors
  view.setBigUint64(16, 1n, true); // one metadata entry
  view.setBigUint64(24, 1000n, true); // its key claims 1000 bytes; 32 remain
  await writeFile(fixtures.path('short-key.gguf'), bytes);
  await assertRefused(
    'short-key.gguf',
    /the key of metadata entry 0 claims 1000 bytes at byte 32, past the end of the file \(64 bytes\)/,
  );
});

test('a file cut inside the tensor infos', async () => {
  const { readFile } = await import('node:fs/promises');
  const whole = await readFile(fixtures.path('types-v3.gguf'));
  await writeFile(fixtures.path('cut.gguf'), whole.subarray(0, 2000));
  await assertRefused(
    'cut.gguf',
    /past the end of the file|more than the file's 2000 bytes could hold/,
  );
});

test('a big-endian GGUF is named as such', async () => {
  const bytes = new Uint8Array(32);
  bytes.set([0x47, 0x47, 0x55, 0x46, 0, 0, 0, 3]);
  await writeFile(fixtures.path('big-endian.gguf'), bytes);
  await assertRefused('big-endian.gguf', /big-endian GGUF/);
});

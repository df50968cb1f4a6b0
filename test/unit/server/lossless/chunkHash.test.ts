import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  CHUNK_HASH_BYTES,
  chunkCheck,
  hashChunk,
  xxh64Reference,
} from '../../../../src/server/lossless/chunkHash';
import { losslessKernels } from '../../../../src/server/lossless/losslessWasm';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const text = (value: string) => new TextEncoder().encode(value);

/** Deterministic bytes that are not a repeating pattern. */
function bytesOf(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, state = 0x9e3779b9; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

test('XXH64 gives the published values of the reference implementation (seed 0)', () => {
  for (const [input, expected] of [
    ['', 'ef46db3751d8e999'],
    ['a', 'd24ec4f1a98c6e5b'],
    ['abc', '44bc2cf5ad770999'],
  ] as const) {
    assert.equal(hex(xxh64Reference(text(input))), expected, `reference, "${input}"`);
    assert.equal(hex(hashChunk('xxh64', text(input))), expected, `kernels, "${input}"`);
  }
});

test('the kernels and the TypeScript reference agree on every tail length and on views', () => {
  const kernels = losslessKernels();
  assert.ok(kernels, 'the lossless kernels load');
  const bytes = bytesOf(4096 + 64);
  // Every remainder past the 32-byte stripes, the 8- and 4-byte steps, and an odd offset.
  for (const length of [1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 1000, 4096]) {
    const view = bytes.subarray(5, 5 + length);
    assert.equal(hex(kernels.xxh64(view)), hex(xxh64Reference(view)), `length ${length}`);
  }
});

test('a chunk check is the first 32 bits of its hash, and one flipped bit changes it', () => {
  const chunk = bytesOf(2048);
  for (const kind of ['sha256', 'xxh64'] as const) {
    const digest = hashChunk(kind, chunk);
    assert.equal(digest.length, CHUNK_HASH_BYTES[kind]);
    assert.equal(chunkCheck(digest), Buffer.from(digest).readUInt32BE(0));
    const flipped = chunk.slice();
    flipped[1234]! ^= 0x10;
    assert.notEqual(hex(hashChunk(kind, flipped)), hex(digest), kind);
  }
  assert.equal(hex(hashChunk('sha256', chunk)), createHash('sha256').update(chunk).digest('hex'));
});

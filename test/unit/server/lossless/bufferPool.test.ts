/**
 * Packing and unpacking stream through reused buffers (bufferPool.ts): the pool itself, and
 * byte-exact round trips of a bf16 model through worker threads, in runs small enough that
 * every buffer comes back and is reused many times, with repeated chunks inside one run.
 */
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { BufferPool } from '../../../../src/server/lossless/bufferPool';
import { readContainer } from '../../../../src/server/lossless/container';
import {
  losslessWorkerScript,
  poolRunner,
  type LosslessJob,
  type LosslessResult,
} from '../../../../src/server/lossless/jobs';
import { extractTensor, packFile, unpackFile } from '../../../../src/server/lossless/pack';
import { seededNormal } from '../../../../src/server/runtime/sampleInputs';
import { expectedChunkDigest } from '../../../support/llzIndex';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

let folder: string;
let pool: WorkerPool<LosslessJob, LosslessResult>;

before(async () => {
  folder = await fs.mkdtemp(join(tmpdir(), 'layerlens-buffer-pool-'));
  pool = new WorkerPool<LosslessJob, LosslessResult>(2, losslessWorkerScript());
});
after(async () => {
  pool.dispose();
  await fs.rm(folder, { recursive: true, force: true });
});

/** bf16 bit patterns of N(0, 0.02²) values (rounded to nearest even). */
function bf16Normal(count: number, seed: number): Uint16Array {
  const next = seededNormal(seed);
  const word = new Uint32Array(1);
  const value = new Float32Array(word.buffer);
  return Uint16Array.from({ length: count }, () => {
    value[0] = next() * 0.02;
    return (word[0]! + 0x7fff + ((word[0]! >>> 16) & 1)) >>> 16;
  });
}

describe('buffer pool', () => {
  test('a buffer given back is taken again; others are not kept', () => {
    const buffers = new BufferPool(1024, 2);
    const first = buffers.take(100);
    assert.equal(first.length, 100);
    assert.equal(first.buffer.byteLength, 1024);
    buffers.give(first);
    const again = buffers.take(1024);
    assert.equal(again.buffer, first.buffer, 'the free buffer is reused');
    const large = buffers.take(4096);
    assert.equal(large.length, 4096, 'a longer request gets a buffer of its own');
    buffers.give(large);
    buffers.give(new Uint8Array(512));
    assert.notEqual(buffers.take(10).buffer, large.buffer, 'foreign buffers are not kept');
    const moved = buffers.take(8);
    structuredClone(moved, { transfer: [moved.buffer as ArrayBuffer] });
    buffers.give(moved);
    assert.equal(buffers.take(8).buffer.byteLength, 1024, 'a detached buffer is not kept');
  });
});

describe('streaming pack and unpack', () => {
  test('a bf16 model round-trips byte for byte through workers and reused buffers', async () => {
    // 32 chunks, so that runs hold 8: the first run is A A B A C C D E (repeats among new
    // chunks), the others are new.
    const order = [0, 0, 1, 0, 2, 2, 3, 4, ...Array.from({ length: 24 }, (_, i) => 5 + i)];
    const blocks = Array.from({ length: 29 }, (_, seed) => bf16Normal(2048, 10 + seed));
    const repeated = new Uint16Array(2048 * order.length);
    for (const [i, which] of order.entries()) repeated.set(blocks[which]!, i * 2048);
    const file = await writeSafetensors(join(folder, 'model.safetensors'), [
      { name: 'q.weight', dtype: 'BF16', shape: [256, 384], data: bf16Normal(256 * 384, 1) },
      { name: 'repeated.weight', dtype: 'BF16', shape: [32, 2048], data: repeated },
      { name: 'norm.weight', dtype: 'BF16', shape: [999], data: bf16Normal(999, 2) },
      { name: 'mlp.weight', dtype: 'BF16', shape: [300, 511], data: bf16Normal(300 * 511, 3) },
    ]);
    const original = await fs.readFile(file);
    const runner = poolRunner(pool);
    // 4 KB chunks: runs of 32 KB, so that ~30 runs pass through a handful of buffers.
    const packed = await packFile(file, { runner, chunkBytes: 4096 });
    const inProcess = await packFile(file, {
      out: join(folder, 'in-process.llz'),
      chunkBytes: 4096,
    });
    assert.ok(
      (await fs.readFile(packed.out)).equals(await fs.readFile(inProcess.out)),
      'workers and reused buffers write the same container as one thread',
    );
    const { index } = await readContainer(packed.out);
    const chunks = index.segments.find((s) => s.name === 'repeated.weight')!.chunks;
    assert.equal(chunks.length, 32);
    const offsets = chunks.map(([offset]) => offset);
    assert.equal(new Set(offsets).size, 29, 'each distinct chunk stored once');
    assert.deepEqual([offsets[1], offsets[3]], [offsets[0], offsets[0]]);
    assert.equal(offsets[5], offsets[4]);
    assert.ok(
      packed.packedBytes < 0.7 * original.length,
      `ratio ${packed.packedBytes / original.length}`,
    );

    const out = join(folder, 'restored.safetensors');
    const unpacked = await unpackFile(packed.out, { out, runner });
    assert.ok((await fs.readFile(out)).equals(original), 'byte for byte');
    const digest = expectedChunkDigest(await fs.readFile(packed.out), original);
    assert.equal(unpacked.digest, digest);
    assert.equal(packed.digest, digest);

    const tensorOut = join(folder, 'mlp.bin');
    await extractTensor(packed.out, 'mlp.weight', { out: tensorOut, runner });
    const header = original.readBigUInt64LE(0);
    const range = JSON.parse(original.subarray(8, 8 + Number(header)).toString())['mlp.weight']
      .data_offsets as [number, number];
    const start = 8 + Number(header);
    assert.ok(
      (await fs.readFile(tensorOut)).equals(original.subarray(start + range[0], start + range[1])),
      'one tensor, byte for byte',
    );
  });
});

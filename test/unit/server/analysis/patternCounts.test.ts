import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeScalar } from '../../../../src/server/analysis/decode';
import {
  countsPatterns,
  patternCounter,
  patternValues,
} from '../../../../src/server/analysis/patternCounts';
import {
  countPatternsOf,
  fileTensorBytes,
  memoryTensorBytes,
  statsOfPatternCounts,
} from '../../../../src/server/analysis/stats';
import { PATTERNS_16, statsKernel } from '../../../../src/server/analysis/wasmStats';
import { makeTempDir } from '../../../support/safetensorsBuilder';

let dir: string;
let removeDir: () => Promise<void>;
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-patterns-'));
});
after(() => removeDir());

/** Deterministic 16-bit words: mostly near a few values (repeats), some anywhere. */
function words(count: number, seed: number): Uint16Array {
  let state = seed >>> 0;
  return Uint16Array.from({ length: count }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % 7 === 0 ? state >>> 16 : 0x3c00 + ((state >>> 20) & 0x3f);
  });
}

/** The counts of each pattern, by the plainest loop. */
function plainCounts(values: Uint16Array): Float64Array {
  const counts = new Float64Array(PATTERNS_16);
  for (const word of values) counts[word]!++;
  return counts;
}

test('16-bit types are counted by pattern, others are not', () => {
  for (const dtype of ['float16', 'bfloat16', 'int16', 'uint16'] as const) {
    assert.ok(countsPatterns(dtype), dtype);
  }
  for (const dtype of ['float32', 'float64', 'int8', 'uint8', 'int32'] as const) {
    assert.ok(!countsPatterns(dtype), dtype);
  }
});

test('the kernel counts every pattern as a plain loop does, at any chunk size and byte offset', async () => {
  assert.ok(statsKernel(), 'the WebAssembly kernels load (node scripts/build-wasm.mjs)');
  const values = words(200_003, 7);
  const expected = plainCounts(values);
  // An odd byte offset: the bytes are copied into the kernel's memory in pieces.
  const shifted = new Uint8Array(values.byteLength + 1);
  shifted.set(new Uint8Array(values.buffer), 1);
  const unaligned = shifted.subarray(1);
  for (const chunkBytes of [undefined, 2, 1000, 131072 + 6]) {
    const counts = await countPatternsOf('bfloat16', values.length, memoryTensorBytes(unaligned), {
      chunkBytes,
    });
    assert.deepEqual(counts, expected, `chunk ${chunkBytes}`);
  }
  const path = join(dir, 'words.bin');
  await writeFile(path, Buffer.concat([Buffer.alloc(3, 0xee), new Uint8Array(values.buffer)]));
  for (const chunkBytes of [undefined, 4096 + 2]) {
    const counts = await countPatternsOf(
      'float16',
      values.length,
      fileTensorBytes(path, 3, values.byteLength),
      { chunkBytes },
    );
    assert.deepEqual(counts, expected, `file chunk ${chunkBytes}`);
  }
});

test('a second counter while the kernel is lent counts in plain code; the kernel is given back', () => {
  const values = words(50_001, 3);
  const bytes = new Uint8Array(values.buffer);
  const first = patternCounter();
  const second = patternCounter();
  first.add(bytes, values.length);
  second.add(bytes, values.length);
  second.add(bytes.subarray(2), values.length - 1);
  const twice = plainCounts(values);
  for (let pattern = 0; pattern < PATTERNS_16; pattern++) twice[pattern]! *= 2;
  twice[values[0]!]!--;
  assert.deepEqual(first.finish(), plainCounts(values));
  assert.deepEqual(second.finish(), twice);
  // Released after an error, the kernel's counters start from zero for the next counter.
  const failed = patternCounter();
  failed.add(bytes, 100);
  failed.release();
  const next = patternCounter();
  next.add(bytes, values.length);
  assert.deepEqual(next.finish(), plainCounts(values));
});

test('statistics from pattern counts: non-finite values, signed zeros and subnormals', () => {
  const counts = new Float64Array(PATTERNS_16);
  const add = (pattern: number, count: number) => (counts[pattern]! += count);
  add(0x0000, 3); // +0
  add(0x8000, 2); // -0
  add(0x0001, 5); // smallest subnormal float16
  add(0x3c00, 4); // 1
  add(0xc000, 1); // -2
  add(0x7c00, 2); // +Infinity
  add(0xfc00, 1); // -Infinity
  add(0x7e00, 6); // NaN
  add(0x7bff, 1); // 65504, the largest float16
  const stats = statsOfPatternCounts('float16', counts);
  const finite = [
    ...Array<number>(5).fill(0),
    ...Array<number>(5).fill(decodeScalar('float16', 1)),
    ...Array<number>(4).fill(1),
    -2,
    65504,
  ];
  const mean = finite.reduce((a, b) => a + b) / finite.length;
  const variance = finite.reduce((a, b) => a + (b - mean) ** 2, 0) / finite.length;
  assert.equal(stats.count, 25);
  assert.equal(stats.nanCount, 6);
  assert.equal(stats.infCount, 3);
  assert.equal(stats.min, -2);
  assert.equal(stats.max, 65504);
  assert.equal(stats.sparsity, 5 / 25);
  assert.ok(Math.abs(stats.mean! - mean) <= 1e-12 * 65504, `${stats.mean} vs ${mean}`);
  assert.ok(Math.abs(stats.std! - Math.sqrt(variance)) <= 1e-12 * Math.sqrt(variance));
  const histogram = stats.histogram!;
  assert.deepEqual([histogram.min, histogram.max], [-2, 65504]);
  // Bins of (65504 + 2) / 256 ≈ 255.9: -2 in bin 0 with 0, the subnormal and 1; 65504 last.
  assert.equal(histogram.counts[0], 15);
  assert.equal(histogram.counts[255], 1);
  assert.equal(
    histogram.counts.reduce((a, b) => a + b, 0),
    16,
  );
});

test('pattern values decode every pattern as the scalar decoder does', () => {
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const values = patternValues(dtype);
    for (let pattern = 0; pattern < PATTERNS_16; pattern += 97) {
      assert.ok(Object.is(values[pattern], decodeScalar(dtype, pattern)), `${dtype} ${pattern}`);
    }
  }
  const int16 = patternValues('int16');
  assert.deepEqual(
    [int16[0], int16[1], int16[0x7fff], int16[0x8000], int16[0xffff]],
    [0, 1, 32767, -32768, -1],
  );
});

import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeScalar, type NumericDType } from '../../../../src/server/analysis/decode';
import {
  computeStats,
  fileTensorBytes,
  memoryTensorBytes,
  type TensorStatsValues,
} from '../../../../src/server/analysis/stats';
import { ModelFileError } from '../../../../src/server/formats/types';
import { HISTOGRAM_BINS } from '../../../../src/shared/limits';
import { gridHistogramReference } from '../../../support/gridHistogram';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-stats-');

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normals(count: number, seed: number, mean = 0, std = 1): number[] {
  const uniform = random(seed);
  return Array.from({ length: count }, () => {
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    return mean + std * radius * Math.cos(2 * Math.PI * uniform());
  });
}

/** Neumaier's compensated sum: a reference mean that stays exact for data far from zero. */
function accurateSum(values: readonly number[]): number {
  let sum = 0;
  let compensation = 0;
  for (const value of values) {
    const next = sum + value;
    compensation += Math.abs(sum) >= Math.abs(value) ? sum - next + value : value - next + sum;
    sum = next;
  }
  return sum + compensation;
}

/**
 * The statistics computed the plain way, in float64, over the decoded values; float32's
 * histogram (`onGrid`) on GridHistogram's power-of-two grid.
 */
function reference(
  values: readonly number[],
  bins = HISTOGRAM_BINS,
  onGrid = false,
): TensorStatsValues {
  const finite = values.filter(Number.isFinite);
  const nanCount = values.filter(Number.isNaN).length;
  const zeros = values.filter((value) => value === 0).length;
  if (finite.length === 0) {
    return {
      count: values.length,
      min: null,
      max: null,
      mean: null,
      std: null,
      sparsity: values.length === 0 ? 0 : zeros / values.length,
      l2Norm: 0,
      nanCount,
      infCount: values.length - nanCount,
      histogram: null,
    };
  }
  const min = finite.reduce((a, b) => Math.min(a, b));
  const max = finite.reduce((a, b) => Math.max(a, b));
  const mean = accurateSum(finite) / finite.length;
  const variance = finite.reduce((a, b) => a + (b - mean) ** 2, 0) / finite.length;
  const low = min === max ? min - 0.5 : min;
  const high = min === max ? max + 0.5 : max;
  const counts = new Array<number>(bins).fill(0);
  for (const value of finite)
    counts[Math.min(bins - 1, Math.floor((value - low) * (bins / (high - low))))]!++;
  return {
    count: values.length,
    min,
    max,
    mean,
    std: Math.sqrt(variance),
    sparsity: zeros / values.length,
    l2Norm: Math.sqrt(finite.reduce((a, b) => a + b * b, 0)),
    nanCount,
    infCount: values.length - finite.length - nanCount,
    histogram: onGrid ? gridHistogramReference(finite, bins) : { min: low, max: high, counts },
  };
}

/** |actual - expected| within `tolerance` relative to `scale` (default: |expected|). */
function assertClose(
  actual: number | null,
  expected: number | null,
  what: string,
  tolerance = 1e-12,
  scale = Math.abs(expected ?? 0),
): void {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, what);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(scale, 1e-300),
    `${what}: ${actual} vs ${expected}`,
  );
}

function assertStats(
  actual: TensorStatsValues,
  expected: TensorStatsValues,
  label: string,
  tolerance = 1e-12,
): void {
  assert.equal(actual.count, expected.count, `${label} count`);
  assert.equal(actual.min, expected.min, `${label} min`);
  assert.equal(actual.max, expected.max, `${label} max`);
  // A mean near zero is compared at the scale of the values, where rounding happens.
  const magnitude = Math.max(Math.abs(expected.min ?? 0), Math.abs(expected.max ?? 0));
  assertClose(actual.mean, expected.mean, `${label} mean`, tolerance, magnitude);
  assertClose(actual.std, expected.std, `${label} std`, tolerance);
  assertClose(actual.l2Norm, expected.l2Norm, `${label} l2Norm`, tolerance);
  assert.equal(actual.sparsity, expected.sparsity, `${label} sparsity`);
  assert.equal(actual.nanCount, expected.nanCount, `${label} nanCount`);
  assert.equal(actual.infCount, expected.infCount, `${label} infCount`);
  assert.deepEqual(actual.histogram, expected.histogram, `${label} histogram`);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const CHUNK_SIZES = [undefined, 8, 12, 1000, 4096 * 4 + 40, 65536];

test('float32: matches a float64 reference at chunk sizes that split the tensor many times', async () => {
  const floats = new Float32Array(normals(20_011, 1, 0.3, 2));
  floats[17] = 0;
  floats[9000] = 0;
  const values = Array.from(floats);
  const expected = reference(values, HISTOGRAM_BINS, true);
  for (const chunkBytes of CHUNK_SIZES) {
    const stats = await computeStats('float32', floats.length, memoryTensorBytes(bytesOf(floats)), {
      chunkBytes,
    });
    assertStats(stats, expected, `chunk ${chunkBytes}`);
  }
  assert.equal(expected.sparsity, 2 / 20_011);
  assert.equal(
    expected.histogram!.counts.reduce((a, b) => a + b, 0),
    20_011,
  );
});

test('reads a tensor from a byte range of a file, chunk by chunk', async () => {
  const floats = new Float32Array(normals(5000, 2));
  const path = join(dir(), 'range.bin');
  const prefix = new Uint8Array(13).fill(0xee);
  const suffix = new Uint8Array(7).fill(0xee);
  await writeFile(path, Buffer.concat([prefix, bytesOf(floats), suffix]));
  const expected = reference(Array.from(floats), HISTOGRAM_BINS, true);
  for (const synchronous of [false, true]) {
    for (const chunkBytes of [undefined, 1000, 4096 * 4 + 40]) {
      const stats = await computeStats(
        'float32',
        floats.length,
        fileTensorBytes(path, 13, floats.byteLength, { synchronous }),
        { chunkBytes },
      );
      assertStats(stats, expected, `file chunk ${chunkBytes}, synchronous ${synchronous}`);
    }
  }
});

test('a large offset from zero keeps the standard deviation accurate', async () => {
  const doubles = new Float64Array(normals(30_000, 3, 1e9, 1e-3));
  const expected = reference(Array.from(doubles));
  for (const chunkBytes of [undefined, 800]) {
    const stats = await computeStats(
      'float64',
      doubles.length,
      memoryTensorBytes(bytesOf(doubles)),
      { chunkBytes },
    );
    assertClose(stats.std, expected.std, 'std', 1e-6);
    assertClose(stats.mean, expected.mean, 'mean', 1e-15);
  }
});

test('an all-zero tensor: sparsity 1, zero moments, a histogram centred on zero', async () => {
  const zeros = new Float32Array(1000);
  const stats = await computeStats('float32', zeros.length, memoryTensorBytes(bytesOf(zeros)), {
    chunkBytes: 64,
  });
  assertStats(stats, reference(Array.from(zeros)), 'zeros');
  assert.equal(stats.sparsity, 1);
  assert.equal(stats.std, 0);
  assert.equal(stats.l2Norm, 0);
  assert.deepEqual([stats.histogram!.min, stats.histogram!.max], [-0.5, 0.5]);
  assert.equal(stats.histogram!.counts[HISTOGRAM_BINS / 2], 1000);
});

test('NaN and ±Infinity are counted and left out of every other statistic', async () => {
  const floats = new Float32Array(normals(9000, 4));
  for (let i = 0; i < floats.length; i += 97) floats[i] = NaN;
  for (let i = 5; i < floats.length; i += 331) floats[i] = i % 2 ? Infinity : -Infinity;
  const expected = reference(Array.from(floats), HISTOGRAM_BINS, true);
  assert.ok(expected.nanCount > 50 && expected.infCount > 20);
  for (const chunkBytes of CHUNK_SIZES) {
    const stats = await computeStats('float32', floats.length, memoryTensorBytes(bytesOf(floats)), {
      chunkBytes,
    });
    assertStats(stats, expected, `non-finite chunk ${chunkBytes}`);
  }
});

test('only NaN and Infinity: no range, no histogram', async () => {
  const floats = new Float32Array([NaN, Infinity, NaN, -Infinity]);
  const stats = await computeStats('float32', 4, memoryTensorBytes(bytesOf(floats)));
  assertStats(stats, reference(Array.from(floats)), 'non-finite only');
  assert.equal(stats.histogram, null);
  assert.equal(stats.mean, null);
});

test('an empty tensor', async () => {
  const stats = await computeStats('float32', 0, memoryTensorBytes(new Uint8Array(0)));
  assert.deepEqual(stats, {
    count: 0,
    min: null,
    max: null,
    mean: null,
    std: null,
    sparsity: 0,
    l2Norm: 0,
    nanCount: 0,
    infCount: 0,
    histogram: null,
  });
  const path = join(dir(), 'empty.bin');
  await writeFile(path, new Uint8Array(0));
  assert.equal((await computeStats('int8', 0, fileTensorBytes(path, 0, 0))).count, 0);
});

test('float16 and bfloat16 tensors over random bit patterns (NaN and Inf included)', async () => {
  const uniform = random(5);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const bits = new Uint16Array(12_345).map(() => Math.floor(uniform() * 65536));
    const values = Array.from(bits, (pattern) => decodeScalar(dtype, pattern));
    const expected = reference(values);
    for (const chunkBytes of [undefined, 10, 3000]) {
      const stats = await computeStats(dtype, bits.length, memoryTensorBytes(bytesOf(bits)), {
        chunkBytes,
      });
      // Random bit patterns span the whole range, so sums mix magnitudes up to 1e38.
      assertStats(stats, expected, `${dtype} chunk ${chunkBytes}`, 1e-9);
    }
  }
});

test('float8 tensors decode through their tables', async () => {
  const patterns = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const dtype of [
    'float8_e4m3fn',
    'float8_e4m3fnuz',
    'float8_e5m2',
    'float8_e5m2fnuz',
  ] as const) {
    const values = Array.from(patterns, (pattern) => decodeScalar(dtype, pattern));
    const stats = await computeStats(dtype, 256, memoryTensorBytes(patterns), { chunkBytes: 16 });
    assertStats(stats, reference(values), dtype);
  }
});

test('integer, 4-bit and bool tensors', async () => {
  const uniform = random(6);
  const cases: [NumericDType, ArrayBufferView, number[]][] = [];
  const int8 = new Int8Array(7000).map(() => Math.floor(uniform() * 256) - 128);
  cases.push(['int8', int8, Array.from(int8)]);
  const int32 = new Int32Array(3000).map(() => Math.floor((uniform() - 0.5) * 2 ** 32));
  cases.push(['int32', int32, Array.from(int32)]);
  const uint16 = new Uint16Array(3001).map(() => Math.floor(uniform() * 65536));
  cases.push(['uint16', uint16, Array.from(uint16)]);
  const int64 = new BigInt64Array(2000).map(() => BigInt(Math.floor((uniform() - 0.5) * 2 ** 50)));
  cases.push(['int64', int64, Array.from(int64, Number)]);
  const bool = new Uint8Array(999).map(() => (uniform() < 0.3 ? 1 : 0));
  cases.push(['bool', bool, Array.from(bool)]);
  for (const [dtype, data, values] of cases) {
    for (const chunkBytes of [undefined, 8, 1000]) {
      const stats = await computeStats(dtype, values.length, memoryTensorBytes(bytesOf(data)), {
        chunkBytes,
      });
      assertStats(stats, reference(values), `${dtype} chunk ${chunkBytes}`);
    }
  }
  // 4-bit: 4001 elements, two per byte, low nibble first, the last byte half used.
  const nibbles = Array.from({ length: 4001 }, () => Math.floor(uniform() * 16));
  const packed = new Uint8Array(2001);
  nibbles.forEach((nibble, i) => (packed[i >> 1]! |= i & 1 ? nibble << 4 : nibble));
  packed[2000]! |= 0xf0;
  for (const chunkBytes of [undefined, 8, 100]) {
    const unsigned = await computeStats('uint4', 4001, memoryTensorBytes(packed), { chunkBytes });
    assertStats(unsigned, reference(nibbles), `uint4 chunk ${chunkBytes}`);
    const signed = await computeStats('int4', 4001, memoryTensorBytes(packed), { chunkBytes });
    assertStats(
      signed,
      reference(nibbles.map((n) => (n >= 8 ? n - 16 : n))),
      `int4 chunk ${chunkBytes}`,
    );
  }
});

test('a range wider than the largest double still bins its values', async () => {
  const doubles = new Float64Array([-1.5e308, 1.5e308, 0, 1e307]);
  const stats = await computeStats('float64', 4, memoryTensorBytes(bytesOf(doubles)));
  assert.equal(stats.min, -1.5e308);
  assert.equal(stats.max, 1.5e308);
  const counts = stats.histogram!.counts;
  assert.equal(counts[0], 1);
  assert.equal(counts[HISTOGRAM_BINS - 1], 1);
  assert.equal(counts[HISTOGRAM_BINS / 2], 1);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    4,
  );
});

test('stops with an AbortError when cancelled between chunks', async () => {
  const floats = new Float32Array(4096);
  let polls = 0;
  await assert.rejects(
    computeStats('float32', floats.length, memoryTensorBytes(bytesOf(floats)), {
      chunkBytes: 1024,
      isCancelled: () => ++polls > 3,
    }),
    { name: 'AbortError' },
  );
  assert.equal(polls, 4);
});

test('a file shorter than the tensor range, a missing file, and a wrong byte count fail clearly', async () => {
  const path = join(dir(), 'short.bin');
  await writeFile(path, new Uint8Array(400));
  await truncate(path, 100);
  for (const synchronous of [false, true]) {
    await assert.rejects(
      computeStats('float32', 100, fileTensorBytes(path, 0, 400, { synchronous }), {
        chunkBytes: 64,
      }),
      (error: unknown) =>
        error instanceof ModelFileError &&
        error.file === path &&
        /ends at byte 100, before the end of the tensor data \(byte 400\)/.test(error.problem),
    );
  }
  const missing = join(dir(), 'missing.bin');
  await assert.rejects(
    computeStats('float32', 1, fileTensorBytes(missing, 0, 4)),
    (error: unknown) =>
      error instanceof ModelFileError && error.file === missing && /ENOENT/.test(error.problem),
  );
  await assert.rejects(
    computeStats('float32', 3, memoryTensorBytes(new Uint8Array(8))),
    /need 12 bytes, but the data holds 8/,
  );
});

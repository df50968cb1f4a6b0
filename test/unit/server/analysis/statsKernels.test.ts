import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  computeStats,
  fileTensorBytes,
  HistogramAccumulator,
  memoryTensorBytes,
  MomentAccumulator,
} from '../../../../src/server/analysis/stats';
import { decodeHalfToFloat32, decodeScalar } from '../../../../src/server/analysis/decode';
import {
  float32Binning,
  PIECE_ELEMENTS,
  statsKernel,
} from '../../../../src/server/analysis/wasmStats';
import { gaussian } from '../../../support/matrices';
import { bytesOf } from '../../../support/safetensorsBuilder';
import { gridHistogramReference } from '../../../support/gridHistogram';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-kernels-');

/** Histogram counts the plain way: bin = trunc((v − min) · bins / (max − min)), last bin closed. */
function referenceCounts(values: ArrayLike<number>, bins: number): number[] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (!Number.isFinite(value)) continue;
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  const low = min === max ? min - 0.5 : min;
  const high = min === max ? max + 0.5 : max;
  const scale = bins / (high - low);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isFinite(value)) counts[Math.min(bins - 1, Math.trunc((value - low) * scale))]!++;
  }
  return counts;
}

/** The float32 numbers next to `value` (down, itself, up), as float32 bit patterns allow. */
function neighbours(value: number): number[] {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
  const step = (delta: number) => {
    const word = new Uint32Array([value >= 0 ? bits + delta : bits - delta]);
    return new Float32Array(word.buffer)[0]!;
  };
  return [step(-1), Math.fround(value), step(1)];
}

/** Deterministic shuffle (so that edge values do not sit in one run). */
function shuffled(values: number[], seed: number): Float32Array {
  const next = gaussian(seed);
  const out = Float32Array.from(values);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor((Math.abs(next()) * 1e6) % (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Values at, just below and just above every bin edge of [min, max], min and max repeated,
 * and normal values in between; an odd count.
 */
function edgeHeavyValues(min: number, max: number, bins: number, seed: number): Float32Array {
  const low = Math.fround(min);
  const high = Math.fround(max);
  const values = [low, high, high, high, low];
  for (let k = 0; k <= bins; k++) {
    for (const value of neighbours(low + (k * (high - low)) / bins)) {
      if (value >= low && value <= high) values.push(value);
    }
  }
  const next = gaussian(seed);
  while (values.length % 16 !== 13 || values.length < 5000) {
    values.push(Math.min(high, Math.max(low, (low + high) / 2 + next() * (high - low) * 0.2)));
  }
  return shuffled(values, seed);
}

function kernelCounts(values: Float32Array, bins: number): number[] {
  const moments = new MomentAccumulator();
  moments.add(values);
  const histogram = new HistogramAccumulator(moments.min, moments.max, bins);
  histogram.add(values, moments.nanCount + moments.infCount === 0);
  return Array.from(histogram.counts);
}

test('float32 bin positions: exact counts at, below and above every bin edge', () => {
  assert.notEqual(statsKernel(), null, 'the stats kernel loads');
  const ranges: [number, number][] = [
    [-0.37, 0.91],
    [-1, 1],
    [0, 255],
    [1000, 1000.5],
    [-3.5e-3, -1e-3],
    [-1e30, 2e30],
  ];
  for (const bins of [256, 7, 1000, 4096]) {
    for (const [index, [min, max]] of ranges.entries()) {
      const values = edgeHeavyValues(min, max, bins, index + 1);
      const scale = bins / (Math.fround(max) - Math.fround(min));
      assert.notEqual(
        float32Binning(Math.fround(min), scale, bins),
        null,
        'float32 binning applies',
      );
      assert.deepEqual(
        kernelCounts(values, bins),
        referenceCounts(values, bins),
        `${bins} bins over [${min}, ${max}]`,
      );
    }
  }
});

test('NaN and ±Infinity among the values are left out by the float32-checked kernel', () => {
  for (const [min, max] of [
    [-0.37, 0.91],
    [0, 255],
  ] as const) {
    const values = edgeHeavyValues(min, max, 256, 3);
    for (let i = 5; i < values.length; i += 97) values[i] = [NaN, Infinity, -Infinity][i % 3]!;
    const scale = 256 / (Math.fround(max) - Math.fround(min));
    assert.notEqual(float32Binning(Math.fround(min), scale, 256), null);
    const counts = kernelCounts(values, 256);
    assert.deepEqual(counts, referenceCounts(values, 256), `[${min}, ${max}] with NaN/±Inf`);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      values.filter(Number.isFinite).length,
    );
  }
});

test('ranges the float32 arithmetic cannot take go to the float64 kernel with the same counts', () => {
  const bins = 256;
  // Wider than 2^120, subnormal, and an origin that is not a float32 number.
  assert.equal(float32Binning(-3e38, bins / 6e38, bins), null);
  assert.equal(float32Binning(0, bins / 1e-40, bins), null);
  assert.equal(float32Binning(0.1, 256, bins), null);
  assert.equal(float32Binning(0, 1, 5000), null, 'more bins than the kernel holds');
  const cases: [string, Float32Array][] = [
    ['±3e38', edgeHeavyValues(-3e38, 3e38, bins, 7)],
    ['subnormal', edgeHeavyValues(-1e-40, 1e-40, bins, 8)],
    ['zero to subnormal', edgeHeavyValues(0, 1e-39, bins, 9)],
  ];
  // Zeros, subnormals and ordinary numbers together (a normal range, many values in bin 0).
  const mixed = edgeHeavyValues(0, 1, bins, 10);
  for (let i = 0; i < mixed.length; i += 3) mixed[i] = i % 2 ? 1e-42 * i : 0;
  cases.push(['zeros and subnormals in [0, 1]', mixed]);
  for (const [label, values] of cases) {
    assert.deepEqual(kernelCounts(values, bins), referenceCounts(values, bins), label);
  }
});

test('odd lengths, piece boundaries, repeated maxima and non-finite values through computeStats', async () => {
  const next = gaussian(11);
  for (const length of [1023, 1025, 4097, 65536 * 2 + 5, 65536 * 3 + 4096]) {
    for (const nonFinite of [false, true]) {
      const values = Float32Array.from({ length }, () => next() * 0.02);
      values[length - 1] = 0.5; // the maximum, last
      values[length >> 1] = 0.5;
      values[0] = -0.25;
      if (nonFinite) {
        values[3] = NaN;
        values[length - 2] = Infinity;
        values[70_000 % length] = -Infinity;
      }
      for (const chunkBytes of [undefined, 4 * 5000 + 8]) {
        const stats = await computeStats('float32', length, memoryTensorBytes(bytesOf(values)), {
          chunkBytes,
        });
        const label = `${length} values${nonFinite ? ' with NaN/Inf' : ''}, chunk ${chunkBytes}`;
        // float32 is binned in one pass on GridHistogram's power-of-two grid.
        const finite = Array.from(values).filter(Number.isFinite);
        assert.deepEqual(stats.histogram, gridHistogramReference(finite), label);
        assert.equal(stats.max, 0.5, label);
        assert.equal(stats.min, -0.25, label);
      }
    }
  }
});

test('a constant tensor and a two-valued tensor', async () => {
  for (const length of [4096, 70_001]) {
    const constant = new Float32Array(length).fill(-1.5);
    const stats = await computeStats('float32', length, memoryTensorBytes(bytesOf(constant)));
    assert.deepEqual(stats.histogram, gridHistogramReference(Array.from(constant)));
    assert.equal(stats.histogram!.counts[128], length);
    assert.equal(stats.std, 0);
    assert.equal(stats.mean, -1.5);
    const twoValued = Float32Array.from({ length }, (_, i) => (i % 3 ? 2 : -2));
    const two = await computeStats('float32', length, memoryTensorBytes(bytesOf(twoValued)));
    assert.deepEqual(two.histogram, gridHistogramReference(Array.from(twoValued)));
    // Bins 1/32 wide from -2: 2 lies in the 129th.
    assert.deepEqual([two.histogram!.min, two.histogram!.max], [-2, 2 + 1 / 32]);
    assert.equal(two.histogram!.counts[0], Math.ceil(length / 3));
    assert.equal(two.histogram!.counts[128], length - Math.ceil(length / 3));
  }
});

test('one-pass block moments agree with a float64 reference, an outlying first value included', () => {
  const next = gaussian(5);
  const cases: [string, Float32Array][] = [
    ['outlying first value', Float32Array.from({ length: 50_001 }, (_, i) => (i ? next() : 1e6))],
    ['far from zero', Float32Array.from({ length: 50_001 }, () => 1e4 + next() * 1e-2)],
    ['mixed scales', Float32Array.from({ length: 9_000 }, (_, i) => next() * 10 ** (i % 7))],
  ];
  for (const [label, values] of cases) {
    const moments = new MomentAccumulator();
    moments.add(values);
    let mean = 0;
    for (const value of values) mean += value;
    mean /= values.length;
    // Two passes in float64 around the mean, the values' deviations summed exactly enough.
    let m2 = 0;
    let drift = 0;
    for (const value of values) {
      m2 += (value - mean) ** 2;
      drift += value - mean;
    }
    mean += drift / values.length;
    m2 -= (drift * drift) / values.length;
    // The mean is compared at the scale of the values, where rounding happens.
    const magnitude = Math.max(Math.abs(moments.min), Math.abs(moments.max));
    assert.ok(
      Math.abs(moments.mean - mean) <= 1e-14 * magnitude,
      `${label}: ${moments.mean} vs ${mean}`,
    );
    assert.ok(Math.abs(moments.m2 - m2) <= 1e-11 * m2, `${label}: ${moments.m2} vs ${m2}`);
    assert.equal(moments.finiteCount, values.length);
  }
});

test('file chunks read into the kernel memory: same statistics, one reader at a time, released after a cancel', async () => {
  const next = gaussian(21);
  const values = Float32Array.from({ length: 300_007 }, () => next() * 0.05);
  values[12_345] = 0;
  const path = join(dir(), 'values.bin');
  await writeFile(path, bytesOf(values));
  const fromMemory = await computeStats(
    'float32',
    values.length,
    memoryTensorBytes(bytesOf(values)),
  );
  // Two readers at once in one thread: one reads into the kernel's buffers, one into its own.
  const chunkBytes = 4 * 40_000 + 8;
  const [a, b] = await Promise.all([
    computeStats('float32', values.length, fileTensorBytes(path, 0, values.byteLength), {
      chunkBytes,
    }),
    computeStats('float32', values.length, fileTensorBytes(path, 0, values.byteLength), {
      chunkBytes: 4 * 65_536,
    }),
  ]);
  for (const stats of [a, b]) {
    assert.deepEqual(stats.histogram, fromMemory.histogram);
    assert.equal(stats.sparsity, fromMemory.sparsity);
    assert.ok(Math.abs(stats.std! - fromMemory.std!) <= 1e-12 * fromMemory.std!);
  }
  let calls = 0;
  await assert.rejects(
    computeStats('float32', values.length, fileTensorBytes(path, 0, values.byteLength), {
      chunkBytes,
      isCancelled: () => ++calls > 2,
    }),
    { name: 'AbortError' },
  );
  const lent = statsKernel()!.lendReadBuffers(1024, 2);
  assert.notEqual(lent, null, 'the buffers came back after the cancelled read');
  lent!.release();
});

test('float16 and bfloat16 widened by the kernel: every bit pattern as the decode tables give it', () => {
  const kernel = statsKernel()!;
  const patterns = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    for (let start = 0; start < 65536; start += PIECE_ELEMENTS) {
      // An odd count leaves a tail for the scalar loop.
      const count = Math.min(PIECE_ELEMENTS, 65536 - start) - 3;
      const widened = kernel.widen(dtype, bytesOf(patterns.subarray(start)), count);
      for (let i = 0; i < count; i++) {
        const expected = decodeScalar(dtype, start + i);
        assert.ok(
          Object.is(widened[i], expected) || (Number.isNaN(widened[i]) && Number.isNaN(expected)),
          `${dtype} 0x${(start + i).toString(16)}: ${widened[i]} vs ${expected}`,
        );
      }
    }
    const decoded = decodeHalfToFloat32(dtype, bytesOf(patterns), 65536, new Float32Array(65536));
    for (let i = 0; i < 65536; i++) {
      const expected = decodeScalar(dtype, i);
      assert.ok(
        Object.is(decoded[i], expected) || (Number.isNaN(decoded[i]) && Number.isNaN(expected)),
      );
    }
  }
});

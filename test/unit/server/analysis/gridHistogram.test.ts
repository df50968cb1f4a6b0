import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addInOnePass,
  computeStats,
  GridHistogram,
  memoryTensorBytes,
  MomentAccumulator,
  summarise,
} from '../../../../src/server/analysis/stats';
import {
  computeOnePassPart,
  statsFromOnePassParts,
} from '../../../../src/server/analysis/statsParts';
import { HISTOGRAM_BINS } from '../../../../src/shared/limits';
import { gridHistogramReference } from '../../../support/gridHistogram';
import { gaussian } from '../../../support/matrices';

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** One pass over `values` in pieces of `piece` values, as chunks arrive. */
function onePass(values: Float32Array, piece: number, bins = HISTOGRAM_BINS) {
  const moments = new MomentAccumulator();
  const grid = new GridHistogram(bins);
  for (let start = 0; start < values.length; start += piece) {
    addInOnePass(moments, grid, values.subarray(start, start + piece));
  }
  return summarise(moments, grid).histogram;
}

/** Values whose range grows as they come: small first, then wider on both sides. */
function growing(count: number, seed: number): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: count }, (_, i) => next() * 2 ** ((i * 40) / count - 20));
}

test('re-based bins equal binning every value on the final grid, at any piece size', () => {
  const cases: [string, Float32Array][] = [
    ['growing range', growing(40_000, 1)],
    ['growing, reversed', growing(40_000, 2).reverse()],
    ['far from zero', Float32Array.from(growing(20_000, 3), (x) => 1000 + x * 1e-3)],
    ['negative only', Float32Array.from(growing(20_000, 4), (x) => -Math.abs(x) - 5)],
    [
      'zeros first, then values',
      Float32Array.from({ length: 30_000 }, (_, i) => (i < 20_000 ? 0 : Math.sin(i) * 3)),
    ],
    ['two values', Float32Array.from({ length: 9999 }, (_, i) => (i % 3 ? 0.25 : -0.75))],
    ['subnormals', Float32Array.from({ length: 5000 }, (_, i) => (i % 7) * 2 ** -149)],
    ['huge', Float32Array.from({ length: 5000 }, (_, i) => (i % 2 ? 3.4e38 : -3.4e38 + i * 1e33))],
  ];
  for (const [label, values] of cases) {
    const expected = gridHistogramReference(Array.from(values));
    for (const piece of [1, 7, 4096, 65536, values.length]) {
      assert.deepEqual(onePass(values, piece), expected, `${label}, pieces of ${piece}`);
    }
  }
});

test('grid edges are honest: powers of two around [min, max], half to all of the bins used', () => {
  for (const [seed, scale] of [
    [5, 1],
    [6, 0.02],
    [7, 3e5],
  ] as const) {
    const next = gaussian(seed);
    const values = Float32Array.from({ length: 50_000 }, () => next() * scale + scale / 3);
    const histogram = onePass(values, 4096)!;
    const min = values.reduce((a, b) => Math.min(a, b));
    const max = values.reduce((a, b) => Math.max(a, b));
    const width = (histogram.max - histogram.min) / histogram.counts.length;
    assert.equal(2 ** Math.round(Math.log2(width)), width, 'bins are 2^e wide');
    assert.equal(Math.abs(histogram.min % width), 0, 'the first edge is a multiple of the width');
    assert.ok(histogram.min <= min && min < histogram.min + width, 'min lies in the first bin');
    assert.ok(histogram.max - width <= max && max < histogram.max, 'max lies in the last bin');
    assert.ok(histogram.counts.length >= HISTOGRAM_BINS / 2);
    assert.ok(histogram.counts.length <= HISTOGRAM_BINS);
    assert.equal(
      histogram.counts.reduce((a, b) => a + b, 0),
      values.length,
    );
  }
});

test('parts merged in any order give the one-pass histogram; NaN and ±Infinity are left out', async () => {
  const values = growing(30_000, 8);
  values[100] = NaN;
  values[20_000] = Infinity;
  values[29_999] = -Infinity;
  const whole = await computeStats('float32', values.length, memoryTensorBytes(bytesOf(values)), {
    chunkBytes: 4096,
  });
  const finite = Array.from(values).filter(Number.isFinite);
  assert.deepEqual(whole.histogram, gridHistogramReference(finite));
  const bounds = [0, 1024, 7168, 7168, 25_600, 30_000];
  const parts = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const part = values.subarray(bounds[i], bounds[i + 1]);
    parts.push(await computeOnePassPart('float32', part.length, memoryTensorBytes(bytesOf(part))));
  }
  for (const order of [
    parts,
    [...parts].reverse(),
    [parts[3]!, parts[0]!, parts[4]!, parts[2]!, parts[1]!],
  ]) {
    const merged = statsFromOnePassParts(order);
    assert.deepEqual(merged.histogram, whole.histogram);
    assert.equal(merged.min, whole.min);
    assert.equal(merged.max, whole.max);
    assert.equal(merged.nanCount, 1);
    assert.equal(merged.infCount, 2);
  }
});

test('a constant float32 tensor keeps the ±0.5 histogram, even when split', async () => {
  const values = new Float32Array(10_000).fill(0.125);
  const stats = await computeStats('float32', values.length, memoryTensorBytes(bytesOf(values)), {
    chunkBytes: 1024,
  });
  assert.deepEqual([stats.histogram!.min, stats.histogram!.max], [-0.375, 0.625]);
  assert.equal(stats.histogram!.counts[HISTOGRAM_BINS / 2], 10_000);
  const halves = [values.subarray(0, 5120), values.subarray(5120)];
  const parts = await Promise.all(
    halves.map((half) =>
      computeOnePassPart('float32', half.length, memoryTensorBytes(bytesOf(half))),
    ),
  );
  assert.deepEqual(statsFromOnePassParts(parts).histogram, stats.histogram);
});

/** Values of `growing` with zeros, negative subnormals and exact grid edges mixed in. */
function awkward(count: number, seed: number, spread: number): Float32Array {
  const values = growing(count, seed);
  for (let i = 0; i < count; i += 13) {
    const kind = (i / 13) % 6;
    values[i] =
      kind === 0
        ? 0
        : kind === 1
          ? -0
          : kind === 2
            ? -(((i % 97) + 1) * 2 ** -149)
            : kind === 3
              ? ((i % 89) + 1) * 2 ** -149
              : kind === 4
                ? -spread * 2 ** -((i % 9) + 1)
                : Math.fround(spread / 2 ** ((i % 11) + 1));
  }
  return values;
}

test('the kernel bins on the grid exactly: tiny negatives below a wide range, zeros, edges, NaN and ±Infinity blocks', () => {
  // Wide ranges (bins wider than 1: a tiny negative value scales to −0 in float32) and
  // narrow ones; pieces of 1000 values take the TypeScript loop, larger ones the kernel.
  for (const [seed, spread] of [
    [11, 3e4],
    [12, 1],
    [13, 2 ** -20],
  ] as const) {
    const values = Float32Array.from(awkward(70_001, seed, spread), (x) => x * spread);
    const finite = Array.from(values);
    const expected = gridHistogramReference(finite);
    for (const piece of [1000, 4096, 65536, values.length]) {
      assert.deepEqual(onePass(values, piece), expected, `spread ${spread}, pieces of ${piece}`);
    }
    // A block of NaN and ±Infinity every 20,000 values: left out, the rest binned the same.
    const withNonFinite = Float32Array.from(values);
    for (let start = 5000; start < values.length; start += 20_000) {
      for (let i = start; i < start + 37; i++) {
        withNonFinite[i] = i % 3 === 0 ? NaN : i % 3 === 1 ? Infinity : -Infinity;
      }
    }
    const kept = Array.from(withNonFinite).filter(Number.isFinite);
    for (const piece of [1000, 65536, values.length]) {
      assert.deepEqual(
        onePass(withNonFinite, piece),
        gridHistogramReference(kept),
        `spread ${spread} with NaN and ±Infinity, pieces of ${piece}`,
      );
    }
  }
});

test('a tensor split into parts on 1024-value boundaries gives the whole one-pass statistics', async () => {
  const values = Float32Array.from(awkward(50_000, 14, 2), (x) => x * 0.02 + 0.001);
  values[7] = NaN;
  const whole = await computeStats('float32', values.length, memoryTensorBytes(bytesOf(values)));
  for (const cut of [1024, 24 * 1024, 48 * 1024]) {
    const halves = [values.subarray(0, cut), values.subarray(cut)];
    const parts = await Promise.all(
      halves.map((half) =>
        computeOnePassPart('float32', half.length, memoryTensorBytes(bytesOf(half))),
      ),
    );
    const merged = statsFromOnePassParts(parts);
    assert.deepEqual(merged.histogram, whole.histogram, `cut at ${cut}`);
    assert.equal(merged.min, whole.min);
    assert.equal(merged.max, whole.max);
    assert.equal(merged.sparsity, whole.sparsity);
    assert.equal(merged.nanCount, 1);
  }
});

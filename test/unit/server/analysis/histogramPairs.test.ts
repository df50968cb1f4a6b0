import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addInOnePass,
  GridHistogram,
  HistogramAccumulator,
  MomentAccumulator,
  summarise,
} from '../../../../src/server/analysis/stats';
import { PAIR_BINS, statsKernel } from '../../../../src/server/analysis/wasmStats';
import { HISTOGRAM_BINS } from '../../../../src/shared/limits';
import { gaussian } from '../../../support/matrices';

// float32 histograms of at most PAIR_BINS bins are counted by pairs of bins in the kernel,
// and the counts wait there until read: they must be those of binning every value with
// HistogramAccumulator's float64 loop (which Float64Array values take), bit for bit.

/** One pass in pieces of `piece` values; Float64Array values take the plain TypeScript loops. */
function onePass(values: Float32Array | Float64Array, piece: number) {
  const moments = new MomentAccumulator();
  const grid = new GridHistogram(HISTOGRAM_BINS);
  for (let start = 0; start < values.length; start += piece) {
    addInOnePass(moments, grid, values.subarray(start, start + piece));
  }
  return summarise(moments, grid);
}

function gaussianValues(count: number, seed: number, scale: number): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: count }, () => next() * scale);
}

const SUBNORMAL = 2 ** -149;

/** Zero-centred values with ±0, subnormals of both signs and negatives mixed in. */
function mixed(count: number, seed: number): Float32Array {
  const values = gaussianValues(count, seed, 0.02);
  for (let i = 0; i < count; i += 5) values[i] = i % 10 ? 0 : -0;
  for (let i = 3; i < count; i += 7) values[i] = (i % 2 ? 1 : -1) * ((i % 97) + 1) * SUBNORMAL;
  return values;
}

/** Blocks holding NaN and ±Infinity among normal values. */
function withNonFinite(count: number, seed: number): Float32Array {
  const values = gaussianValues(count, seed, 1);
  for (let i = 70_000; i < 74_096; i += 3) values[i] = [NaN, Infinity, -Infinity][i % 3]!;
  values[count - 1] = NaN;
  return values;
}

/** A range that grows chunk by chunk, on both sides. */
function growing(count: number, seed: number): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: count }, (_, i) => next() * 2 ** ((i * 30) / count - 15));
}

const cases: [string, Float32Array][] = [
  ['zero-centred', gaussianValues(300_000, 1, 0.02)],
  ['zeros, negatives, subnormals', mixed(300_000, 2)],
  ['NaN and ±Infinity blocks', withNonFinite(200_000, 3)],
  ['growing range', growing(400_000, 4)],
  ['growing, reversed', growing(400_000, 5).reverse()],
  ['far from zero', Float32Array.from(gaussianValues(200_000, 6, 1e-3), (x) => 1000 + x)],
  ['all zeros but a few', Float32Array.from({ length: 100_003 }, (_, i) => (i % 9973 ? 0 : i))],
];

test('one pass through the pair kernel gives the plain loops’ extremes, counts and histogram', () => {
  assert.ok(statsKernel(), 'the statistics kernels load');
  for (const [label, values] of cases) {
    const expected = onePass(Float64Array.from(values), 65_536);
    for (const piece of [4096, 65_536, 300_001]) {
      const actual = onePass(values, piece);
      const where = `${label}, pieces of ${piece}`;
      assert.equal(actual.min, expected.min, `${where}: min`);
      assert.equal(actual.max, expected.max, `${where}: max`);
      assert.equal(actual.count, expected.count, `${where}: count`);
      assert.equal(actual.sparsity, expected.sparsity, `${where}: zeros`);
      assert.equal(actual.nanCount, expected.nanCount, `${where}: NaN`);
      assert.equal(actual.infCount, expected.infCount, `${where}: ±Infinity`);
      assert.deepEqual(actual.histogram, expected.histogram, `${where}: histogram`);
      const scale = Math.max(Math.abs(expected.mean!), expected.std!);
      assert.ok(Math.abs(actual.mean! - expected.mean!) <= 1e-12 * scale, `${where}: mean`);
      assert.ok(Math.abs(actual.std! - expected.std!) <= 1e-12 * expected.std!, `${where}: std`);
    }
  }
});

test('counts waiting in the kernel are folded when read, when another histogram bins, and stay exact', () => {
  const values = mixed(200_000, 7);
  const low = values.reduce((a, b) => Math.min(a, b));
  const high = values.reduce((a, b) => Math.max(a, b));
  const plain = (bins: number) => {
    const histogram = new HistogramAccumulator(low, high, bins);
    histogram.add(Float64Array.from(values), true);
    return Array.from(histogram.counts);
  };
  // Two histograms binning in turn (each takes the pair counters from the other), one of
  // them read half-way, and one with more bins than pairs hold (the lane kernel).
  const first = new HistogramAccumulator(low, high, PAIR_BINS);
  const second = new HistogramAccumulator(low, high, 100);
  const wide = new HistogramAccumulator(low, high, 1000);
  let halfway: number[] = [];
  for (let start = 0; start < values.length; start += 16_384) {
    const piece = values.subarray(start, start + 16_384);
    first.add(piece, true);
    second.add(piece, true);
    wide.add(piece, true);
    first.add(piece.subarray(0, 0), true);
    if (start === 16_384 * 6) halfway = Array.from(first.counts);
  }
  assert.equal(
    halfway.reduce((sum, count) => sum + count, 0),
    16_384 * 7,
    'counts read half-way hold every value binned so far',
  );
  assert.deepEqual(Array.from(first.counts), plain(PAIR_BINS));
  assert.deepEqual(Array.from(second.counts), plain(100));
  assert.deepEqual(Array.from(wide.counts), plain(1000));
  // Read twice: folding is done once.
  assert.deepEqual(Array.from(first.counts), plain(PAIR_BINS));
});

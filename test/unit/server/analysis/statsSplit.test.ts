import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { NumericDType } from '../../../../src/server/analysis/decode';
import {
  computeStats,
  HistogramAccumulator,
  memoryTensorBytes,
  MomentAccumulator,
  type TensorStatsValues,
} from '../../../../src/server/analysis/stats';
import { splitElements } from '../../../../src/server/analysis/statsParts';
import { statsKernel } from '../../../../src/server/analysis/wasmStats';
import { safetensorsFormat } from '../../../../src/server/formats/safetensors';
import type { TensorEntry } from '../../../../src/server/formats/types';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { gaussian } from '../../../support/matrices';
import {
  makeTempDir,
  writeSafetensors,
  type SafetensorsTensor,
} from '../../../support/safetensorsBuilder';

let dir: string;
let removeDir: () => Promise<void>;
const pool = new WorkerPool(3);
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-split-'));
});
after(async () => {
  pool.dispose();
  await removeDir();
});

/** float32 values with zeros, a spread of magnitudes, and optionally NaN and ±Infinity. */
function sampleValues(count: number, seed: number, nonFinite: boolean): Float32Array {
  const next = gaussian(seed);
  const values = Float32Array.from({ length: count }, (_, i) =>
    i % 11 === 0 ? 0 : next() * (1 + (i % 5)) + 0.25,
  );
  if (nonFinite) {
    values[count >> 1] = NaN;
    values[(count >> 1) + 4097] = Infinity;
    values[count - 3] = -Infinity;
  }
  return values;
}

async function openTensors(
  name: string,
  tensors: readonly SafetensorsTensor[],
): Promise<TensorEntry[]> {
  const path = await writeSafetensors(join(dir, name), tensors);
  return [...(await safetensorsFormat.open(path)).tensors];
}

async function singlePass(entry: TensorEntry, dtype: NumericDType): Promise<TensorStatsValues> {
  assert.equal(entry.data.kind, 'file');
  if (entry.data.kind !== 'file') throw new Error('unreachable');
  const bytes = (await readFile(entry.data.path)).subarray(
    entry.data.offset,
    entry.data.offset + entry.data.length,
  );
  return computeStats(dtype, entry.info.parameterCount, memoryTensorBytes(new Uint8Array(bytes)));
}

/** Counts, extremes and histogram identical; moments equal to float rounding. */
function assertSameStats(split: TensorStatsValues, single: TensorStatsValues, label: string): void {
  const { mean, std, l2Norm, ...exact } = split;
  const { mean: mean1, std: std1, l2Norm: l2Norm1, ...exact1 } = single;
  assert.deepEqual(exact, exact1, label);
  for (const [a, b] of [
    [mean, mean1],
    [std, std1],
    [l2Norm, l2Norm1],
  ] as const) {
    if (a === null || b === null) assert.equal(a, b, label);
    else assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${label}: ${a} vs ${b}`);
  }
}

test('one large tensor split across the workers gives the statistics of a single pass', async () => {
  const count = 300_001;
  const f32 = sampleValues(count, 1, true);
  const clean = sampleValues(count, 2, false);
  const entries = await openTensors('split.safetensors', [
    { name: 'nonfinite', dtype: 'F32', shape: [count], data: f32 },
    { name: 'clean', dtype: 'F32', shape: [count], data: clean },
    { name: 'f64', dtype: 'F64', shape: [count], data: Float64Array.from(clean) },
    {
      name: 'i8',
      dtype: 'I8',
      shape: [count],
      data: Int8Array.from(clean, (x) => Math.round(x * 20)),
    },
    { name: 'nan', dtype: 'F32', shape: [5000], data: new Float32Array(5000).fill(NaN) },
    // Upper halves of float32 values: bfloat16 with NaN and ±Infinity, counted by pattern.
    {
      name: 'bf16',
      dtype: 'BF16',
      shape: [count],
      data: Uint16Array.from(new Uint32Array(f32.buffer), (bits) => bits >>> 16),
    },
  ]);
  const dtypes: NumericDType[] = ['float32', 'float32', 'float64', 'int8', 'float32', 'bfloat16'];
  for (const [i, entry] of entries.entries()) {
    const split = await computeTensorStats(pool, entry, undefined, {
      splitBytes: 4096,
      chunkBytes: 64 * 1024,
    });
    assertSameStats(split, await singlePass(entry, dtypes[i]!), entry.info.name);
  }
});

test('parts start on whole blocks and cover every element once', () => {
  const ranges = splitElements('float32', 10_000_001, 3);
  assert.equal(ranges.length, 3);
  assert.equal(
    ranges.reduce((sum, range) => sum + range.count, 0),
    10_000_001,
  );
  for (const [i, range] of ranges.entries()) {
    assert.equal(range.start % 1024, 0);
    assert.equal(range.byteOffset, range.start * 4);
    if (i > 0) assert.equal(range.start, ranges[i - 1]!.start + ranges[i - 1]!.count);
  }
  assert.throws(() => splitElements('int4', 100, 2), /not split/);
});

test('a split computation is cancelled as a whole', async () => {
  const count = 400_000;
  const [entry] = await openTensors('cancel.safetensors', [
    { name: 'w', dtype: 'F32', shape: [count], data: sampleValues(count, 3, false) },
  ]);
  const controller = new AbortController();
  const pending = computeTensorStats(pool, entry!, controller.signal, {
    splitBytes: 4096,
    chunkBytes: 256,
  });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(pending, { name: 'AbortError' });
});

test('the WebAssembly kernels give the TypeScript loops’ results', () => {
  assert.notEqual(statsKernel(), null, 'the stats kernel loads (built from source on demand)');
  for (const nonFinite of [false, true]) {
    const values = sampleValues(100_003, 4, nonFinite);
    const viaKernel = new MomentAccumulator();
    viaKernel.add(values);
    // A Float64Array copy takes the TypeScript loops, over the same blocks.
    const viaLoops = new MomentAccumulator();
    viaLoops.add(Float64Array.from(values));
    const { mean, m2, ...exact } = viaKernel;
    const { mean: mean1, m2: m21, ...exact1 } = viaLoops;
    assert.deepEqual(exact, exact1);
    assert.ok(Math.abs(mean - mean1) < 1e-14 * Math.abs(mean1));
    assert.ok(Math.abs(m2 - m21) < 1e-12 * m21);
    const finite = values.filter(Number.isFinite);
    const a = new HistogramAccumulator(viaLoops.min, viaLoops.max, 256);
    a.add(finite, true);
    const b = new HistogramAccumulator(viaLoops.min, viaLoops.max, 256);
    b.add(Float64Array.from(finite), true);
    assert.deepEqual(Array.from(a.counts), Array.from(b.counts));
    assert.equal(
      a.counts.reduce((sum, x) => sum + x, 0),
      finite.length,
    );
  }
});

/**
 * Throughput of the streaming statistics on float32, next to NumPy on the same bytes.
 *
 *   node --import tsx bench/stats.bench.ts [megabytes]     (default 256)
 *
 * Prints one table in GB/s: our full statistics (moments, extremes, sparsity, norm,
 * non-finite counts and a 256-bin histogram) from memory and from a file, each pass of
 * it alone, and NumPy's count_nonzero, sum, dot, min, max and histogram measured in the
 * same run (skipped when python3 with numpy is not available). Best of a few repetitions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeStats,
  fileTensorBytes,
  HistogramAccumulator,
  memoryTensorBytes,
  MomentAccumulator,
} from '../src/server/analysis/stats';
import { HISTOGRAM_BINS } from '../src/shared/limits';

const REPETITIONS = 3;

async function bestSeconds(run: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < REPETITIONS; i++) {
    const start = process.hrtime.bigint();
    await run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

/** Normal-ish values (sum of uniforms), generated fast and deterministically. */
function sampleWeights(count: number): Float32Array {
  const values = new Float32Array(count);
  let state = 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  for (let i = 0; i < count; i++) values[i] = (next() + next() + next() - 1.5) * 0.05;
  return values;
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
a = np.fromfile(sys.argv[1], dtype=np.float32)
def best(f):
    t = float('inf')
    for _ in range(${REPETITIONS}):
        s = time.perf_counter(); f(); t = min(t, time.perf_counter() - s)
    return t
r = {
  'count_nonzero': best(lambda: np.count_nonzero(a)),
  'sum': best(lambda: a.sum(dtype=np.float64)),
  'dot': best(lambda: np.dot(a, a)),
  'min': best(lambda: a.min()),
  'max': best(lambda: a.max()),
  'histogram': best(lambda: np.histogram(a, bins=${HISTOGRAM_BINS})),
}
r['all of the above'] = sum(r.values())
print(json.dumps({'version': np.__version__, 'seconds': r}))
`;

function numpySeconds(file: string): { version: string; seconds: Record<string, number> } | string {
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, file], { encoding: 'utf8' });
  if (result.status !== 0)
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  return JSON.parse(result.stdout) as { version: string; seconds: Record<string, number> };
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 256);
  const values = sampleWeights(Math.floor((megabytes * 1024 * 1024) / 4));
  const bytes = new Uint8Array(values.buffer);
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-bench-'));
  const file = join(dir, 'weights.f32');
  await writeFile(file, bytes);
  try {
    const rows: [string, number][] = [];
    rows.push([
      'LayerLens stats + histogram (memory)',
      await bestSeconds(() => computeStats('float32', values.length, memoryTensorBytes(bytes))),
    ]);
    rows.push([
      'LayerLens stats + histogram (file)',
      await bestSeconds(() =>
        computeStats('float32', values.length, fileTensorBytes(file, 0, bytes.byteLength)),
      ),
    ]);
    const moments = new MomentAccumulator();
    rows.push([
      '  moments pass alone',
      await bestSeconds(() => new MomentAccumulator().add(values)),
    ]);
    moments.add(values);
    rows.push([
      '  histogram pass alone',
      await bestSeconds(() =>
        new HistogramAccumulator(moments.min, moments.max, HISTOGRAM_BINS).add(values, true),
      ),
    ]);
    const numpy = numpySeconds(file);
    if (typeof numpy === 'string') {
      rows.push([`NumPy unavailable: ${numpy}`, NaN]);
    } else {
      for (const [name, seconds] of Object.entries(numpy.seconds))
        rows.push([`NumPy ${numpy.version} ${name}`, seconds]);
    }
    const width = Math.max(...rows.map(([name]) => name.length));
    console.log(`float32, ${megabytes} MB, best of ${REPETITIONS}; Node ${process.version}`);
    console.log(`${'measurement'.padEnd(width)}  ${'seconds'.padStart(8)}  ${'GB/s'.padStart(6)}`);
    for (const [name, seconds] of rows) {
      const rate = bytes.byteLength / seconds / 1e9;
      console.log(
        `${name.padEnd(width)}  ${Number.isNaN(seconds) ? '' : seconds.toFixed(3).padStart(8)}  ${Number.isNaN(rate) ? '' : rate.toFixed(2).padStart(6)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main();

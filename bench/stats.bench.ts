/**
 * Throughput of the streaming statistics on float32, next to NumPy on the same bytes.
 *
 *   node --import tsx bench/stats.bench.ts [megabytes]     (default 1024)
 *
 * Prints one table in GB/s: our full statistics (moments, extremes, sparsity, norm,
 * non-finite counts and a 256-bin histogram) from memory in this thread, from a file in
 * one worker, from a file split across the worker pool (as the server runs a large
 * tensor), in-memory bytes in one worker (copied and handed over, as the server does);
 * each pass alone; and NumPy's count_nonzero, sum, dot, min, max and histogram
 * measured in the same run (skipped when python3 with numpy is not available). The last
 * column is NumPy's time for all of those over ours. Best of a few repetitions. The
 * "CPU s" column is the process's CPU time for the same repetition (all threads), which
 * other processes on a busy machine disturb less than the wall-clock seconds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeStats,
  HistogramAccumulator,
  memoryTensorBytes,
  MomentAccumulator,
} from '../src/server/analysis/stats';
import { decodeScalar } from '../src/server/analysis/decode';
import { safetensorsFormat } from '../src/server/formats/safetensors';
import type { TensorEntry } from '../src/server/formats/types';
import { computeTensorStats } from '../src/server/jobs/computeStats';
import { defaultPoolSize, WorkerPool } from '../src/server/jobs/workerPool';
import { HISTOGRAM_BINS } from '../src/shared/limits';

const REPETITIONS = 3;

/** Wall-clock seconds of the fastest repetition, and the CPU seconds (all threads) it took. */
async function bestSeconds(run: () => unknown): Promise<[number, number]> {
  let best: [number, number] = [Infinity, NaN];
  for (let i = 0; i < REPETITIONS; i++) {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    if (seconds < best[0]) best = [seconds, (used.user + used.system) / 1e6];
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

/** float32 values rounded to bfloat16 (truncated) or float16 (NumPy-free, nearest by table search). */
function toHalves(values: Float32Array, dtype: 'bfloat16' | 'float16'): Uint8Array {
  const words = new Uint16Array(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  if (dtype === 'bfloat16') {
    for (let i = 0; i < values.length; i++) words[i] = bits[i]! >>> 16;
  } else {
    // Positive float16 values in bit order; values here are far inside float16's range.
    const table = Float32Array.from({ length: 0x7c00 }, (_, h) => decodeScalar('float16', h));
    for (let i = 0; i < values.length; i++) {
      const magnitude = Math.abs(values[i]!);
      let low = 0;
      let high = 0x7bff;
      while (low < high) {
        const middle = (low + high + 1) >> 1;
        if (table[middle]! <= magnitude) low = middle;
        else high = middle - 1;
      }
      words[i] = (values[i]! < 0 ? 0x8000 : 0) | low;
    }
  }
  return new Uint8Array(words.buffer);
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
a = np.fromfile(sys.argv[1], dtype=np.float32, offset=int(sys.argv[2]))
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

function numpySeconds(
  file: string,
  offset: number,
): { version: string; seconds: Record<string, number> } | string {
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, file, String(offset)], {
    encoding: 'utf8',
  });
  if (result.status !== 0)
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  return JSON.parse(result.stdout) as { version: string; seconds: Record<string, number> };
}

/** A safetensors file holding `bytes` as one float32 tensor; returns the data's offset. */
async function writeTensorFile(file: string, bytes: Uint8Array): Promise<number> {
  let header = JSON.stringify({
    w: { dtype: 'F32', shape: [bytes.byteLength / 4], data_offsets: [0, bytes.byteLength] },
  });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const prefix = Buffer.alloc(8 + header.length);
  prefix.writeBigUInt64LE(BigInt(header.length), 0);
  prefix.write(header, 8, 'latin1');
  const handle = await open(file, 'w');
  try {
    await handle.write(prefix);
    await handle.write(bytes);
  } finally {
    await handle.close();
  }
  return prefix.byteLength;
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 1024);
  const values = sampleWeights(Math.floor((megabytes * 1024 * 1024) / 4));
  const bytes = new Uint8Array(values.buffer);
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-bench-'));
  const file = join(dir, 'weights.safetensors');
  const offset = await writeTensorFile(file, bytes);
  const entry = (await safetensorsFormat.open(file)).tensors[0]!;
  const workers = defaultPoolSize();
  const loadBefore = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const onePool = new WorkerPool(1);
  const splitPool = new WorkerPool(workers);
  try {
    const rows: [string, number, number][] = [];
    rows.push([
      'LayerLens stats + histogram (memory, this thread)',
      ...(await bestSeconds(() =>
        computeStats('float32', values.length, memoryTensorBytes(bytes)),
      )),
    ]);
    rows.push([
      'LayerLens stats + histogram (file, 1 worker)',
      ...(await bestSeconds(() =>
        computeTensorStats(onePool, entry, undefined, { splitBytes: Infinity }),
      )),
    ]);
    rows.push([
      `LayerLens stats + histogram (file, split over ${workers} workers)`,
      ...(await bestSeconds(() =>
        computeTensorStats(splitPool, entry, undefined, { splitBytes: 0 }),
      )),
    ]);
    const inMemory: TensorEntry = {
      info: entry.info,
      data: { kind: 'memory', length: bytes.byteLength, load: () => bytes },
    };
    rows.push([
      'LayerLens stats + histogram (memory, 1 worker)',
      ...(await bestSeconds(() =>
        computeTensorStats(onePool, inMemory, undefined, { splitBytes: Infinity }),
      )),
    ]);
    const moments = new MomentAccumulator();
    rows.push([
      '  moments pass alone (this thread)',
      ...(await bestSeconds(() => new MomentAccumulator().add(values))),
    ]);
    moments.add(values);
    rows.push([
      '  histogram pass alone (this thread)',
      ...(await bestSeconds(() =>
        new HistogramAccumulator(moments.min, moments.max, HISTOGRAM_BINS).add(values, true),
      )),
    ]);
    // The same values as 16-bit floats (half the bytes; GB/s of those bytes, no NumPy column).
    const halfRows: [string, number, number][] = [];
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const halves = toHalves(values, dtype);
      halfRows.push([
        `LayerLens ${dtype} stats + histogram (memory, this thread)`,
        ...(await bestSeconds(() => computeStats(dtype, values.length, memoryTensorBytes(halves)))),
      ]);
    }
    const numpy = numpySeconds(file, offset);
    let numpyAll = NaN;
    if (typeof numpy === 'string') {
      rows.push([`NumPy unavailable: ${numpy}`, NaN, NaN]);
    } else {
      for (const [name, seconds] of Object.entries(numpy.seconds))
        rows.push([`NumPy ${numpy.version} ${name}`, seconds, NaN]);
      numpyAll = numpy.seconds['all of the above']!;
    }
    const width = Math.max(...rows.map(([name]) => name.length));
    console.log(
      `float32, ${megabytes} MB, best of ${REPETITIONS}; Node ${process.version}; ${workers} workers`,
    );
    console.log(
      `load average before: ${loadBefore}; after: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(', ')}`,
    );
    console.log(
      `${'measurement'.padEnd(width)}  ${'seconds'.padStart(8)}  ${'GB/s'.padStart(6)}  ${'NumPy all ÷ this'.padStart(16)}  ${'CPU s'.padStart(6)}`,
    );
    const cell = (value: number, digits: number, pad: number) =>
      Number.isNaN(value) ? ''.padStart(pad) : value.toFixed(digits).padStart(pad);
    const halfBytes = bytes.byteLength / 2;
    for (const [name, seconds, cpu] of [...rows, ...halfRows]) {
      const half = halfRows.some(([halfName]) => halfName === name);
      const rate = (half ? halfBytes : bytes.byteLength) / seconds / 1e9;
      const speedup = name.startsWith('LayerLens') && !half ? numpyAll / seconds : NaN;
      console.log(
        `${name.padEnd(width)}  ${cell(seconds, 3, 8)}  ${cell(rate, 2, 6)}  ${cell(speedup, 2, 16)}  ${cell(cpu, 3, 6)}`.trimEnd(),
      );
    }
  } finally {
    onePool.dispose();
    splitPool.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

void main();

/**
 * Compression kernels on a float32 matrix next to NumPy doing the same in the same run,
 * and the end-to-end time to compress and validate each Silero model with each method.
 *
 *   node --import tsx bench/compress.bench.ts [megabytes]     (default 64)
 *
 * The matrix is a MatMul weight [4096 inputs, N outputs] (N from the size). Kernels:
 * int8 symmetric per output channel; int4 symmetric per block of 32 inputs, packed two
 * per byte; magnitude pruning to 50% (exactly half zero); 2:4 pruning along the inputs.
 * NumPy runs the same arithmetic (skipped when python3 with numpy is not available).
 * Best of a few repetitions; "× NumPy" is our time over NumPy's (≤ 1 is the target).
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressionOptions } from '../src/shared/compress';
import { compressModel } from '../src/server/compress';
import {
  packNibbles,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  type MatrixLayout,
} from '../src/server/compress/kernels';

const REPETITIONS = 3;
const INPUTS = 4096;

function bestSeconds(run: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < REPETITIONS; i++) {
    const start = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

/** Normal-ish values (sum of uniforms), deterministic. */
function sampleWeights(count: number): Float32Array {
  const values = new Float32Array(count);
  let state = 0x9e3779b9;
  const next = (): number => {
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
K = ${INPUTS}
w = np.fromfile(sys.argv[1], dtype=np.float32).reshape(K, -1)
def best(f):
    t = float('inf')
    for _ in range(${REPETITIONS}):
        s = time.perf_counter(); f(); t = min(t, time.perf_counter() - s)
    return t
def int8():
    scale = np.abs(w).max(axis=0) / np.float32(127)
    scale[scale == 0] = 1
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale
def int4():
    b = w.reshape(K // 32, 32, -1)
    scale = np.abs(b).max(axis=1, keepdims=True) / np.float32(7)
    scale[scale == 0] = 1
    q = np.clip(np.rint(b / scale), -7, 7).astype(np.int8).reshape(-1)
    return (q[0::2] & 0x0F) | ((q[1::2] & 0x0F) << 4), scale
def prune():
    flat = w.reshape(-1)
    k = flat.size // 2
    out = flat.copy()
    out[np.argpartition(np.abs(flat), k)[:k]] = 0
    return out
def nm():
    g = w.reshape(K // 4, 4, -1)
    order = np.argsort(-np.abs(g), axis=1, kind='stable')
    mask = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :2, :], True, axis=1)
    return np.where(mask, g, 0).reshape(K, -1)
r = {'int8 per channel': best(int8), 'int4 block 32 + pack': best(int4), 'prune 50%': best(prune), '2:4 along inputs': best(nm)}
print(json.dumps({'version': np.__version__, 'seconds': r}))
`;

function numpySeconds(file: string): { version: string; seconds: Record<string, number> } | string {
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, file], { encoding: 'utf8' });
  if (result.status !== 0) {
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  }
  return JSON.parse(result.stdout) as { version: string; seconds: Record<string, number> };
}

function table(header: readonly string[], rows: readonly string[][]): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  for (const row of all) {
    console.log(
      row
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  '),
    );
  }
}

async function kernels(megabytes: number, dir: string): Promise<void> {
  const outputs = Math.max(1, Math.floor((megabytes * 1024 * 1024) / 4 / INPUTS));
  const values = sampleWeights(INPUTS * outputs);
  const file = join(dir, 'weights.f32');
  await writeFile(file, new Uint8Array(values.buffer));
  const layout: MatrixLayout = { rows: INPUTS, cols: outputs, inputAxis: 0 };
  const ours: Record<string, number> = {
    'int8 per channel': bestSeconds(() => quantizeInt8PerChannel(values, layout)),
    'int4 block 32 + pack': bestSeconds(() =>
      packNibbles(quantizeInt4Blocks(values, layout, 32).q),
    ),
    'prune 50%': bestSeconds(() => pruneMagnitude(values, 0.5)),
    '2:4 along inputs': bestSeconds(() => pruneNM(values, layout, 2, 4)),
  };
  const numpy = numpySeconds(file);
  const mb = (values.byteLength / 1024 / 1024).toFixed(0);
  console.log(
    `float32 [${INPUTS}, ${outputs}] (${mb} MB), best of ${REPETITIONS}; Node ${process.version}; ` +
      (typeof numpy === 'string' ? `NumPy unavailable: ${numpy}` : `NumPy ${numpy.version}`),
  );
  table(
    ['kernel', 'LayerLens s', 'NumPy s', '× NumPy'],
    Object.entries(ours).map(([name, seconds]) => {
      const reference = typeof numpy === 'string' ? NaN : (numpy.seconds[name] ?? NaN);
      return [
        name,
        seconds.toFixed(3),
        Number.isNaN(reference) ? '' : reference.toFixed(3),
        Number.isNaN(reference) ? '' : (seconds / reference).toFixed(2),
      ];
    }),
  );
}

const SILERO_METHODS: readonly CompressionOptions[] = [
  { method: 'prune', sparsity: 0.5 },
  { method: 'nm', n: 2, m: 4 },
  { method: 'int8' },
  { method: 'int4', blockSize: 32 },
  { method: 'lowrank', energy: 0.9 },
  { method: 'fp16' },
];

async function silero(dir: string): Promise<void> {
  console.log(
    '\nSilero VAD end to end: compress + write + validate in onnxruntime (cpu), one run each',
  );
  const rows: string[][] = [];
  for (const version of ['legacy', 'v5', 'v6']) {
    const path = join(dir, `silero_vad_${version}.onnx`);
    await copyFile(`node_modules/@ricky0123/vad-web/dist/silero_vad_${version}.onnx`, path);
    for (const options of SILERO_METHODS) {
      const start = process.hrtime.bigint();
      const report = await compressModel(path, { tensors: [], options });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      rows.push([
        version,
        options.method,
        seconds.toFixed(2),
        (report.elapsedMs / 1000).toFixed(2),
        `${(report.fileBytesBefore / 1024).toFixed(0)} → ${(report.fileBytesAfter / 1024).toFixed(0)}`,
      ]);
    }
  }
  table(['model', 'method', 'total s', 'report s', 'KiB'], rows);
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 64);
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-bench-compress-'));
  try {
    await kernels(megabytes, dir);
    await silero(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main();

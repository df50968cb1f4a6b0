/**
 * ggml quantizers: weights per second of each type, the WebAssembly port (what LayerLens
 * runs) beside the TypeScript reference, with and without an importance matrix, and NumPy
 * quantizing Q8_0 and Q4_0 (vectorized, the same formulas) in the same run as a reference.
 *
 *   node --import tsx bench/ggml.bench.ts [million weights]     (default 2)
 *
 * The weights are a [rows, 4096] matrix of N(0, 0.02²) values; the TypeScript reference
 * runs on an eighth of them (it is slower, and weights/s does not depend on the size).
 * Best of a few repetitions; "wasm × NumPy" is our time over NumPy's. The load average is printed, since the machine is shared.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGML_QUANT_TYPES, quantizeGgml } from '../src/server/compress/ggml';
import { gaussian } from '../test/support/matrices';

const REPETITIONS = 3;
const ROW = 4096;

function bestSeconds(run: () => unknown, repetitions = REPETITIONS): number {
  let best = Infinity;
  for (let i = 0; i < repetitions; i++) {
    const start = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
w = np.fromfile(sys.argv[1], dtype=np.float32).reshape(-1, 32)
def best(f):
    t = float('inf')
    for _ in range(${REPETITIONS}):
        s = time.perf_counter(); f(); t = min(t, time.perf_counter() - s)
    return t
def q8_0():
    amax = np.abs(w).max(axis=1, keepdims=True)
    d = amax / 127
    inv = np.divide(1, d, out=np.zeros_like(d), where=d != 0)
    q = np.round(w * inv).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1)
def q4_0():
    i = np.abs(w).argmax(axis=1)
    mx = w[np.arange(len(w)), i][:, None]
    d = mx / -8
    inv = np.divide(1, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, np.trunc(w * inv + 8.5)).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.astype(np.float16).view(np.uint8), packed], axis=1)
print(json.dumps({'Q8_0': best(q8_0), 'Q4_0': best(q4_0)}))
`;

async function numpySeconds(values: Float32Array): Promise<Record<string, number> | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-ggml-bench-'));
  try {
    const file = join(dir, 'weights.f32');
    await writeFile(file, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    const result = spawnSync('/usr/bin/python3', ['-c', NUMPY_SCRIPT, file], { encoding: 'utf8' });
    if (result.status !== 0) return undefined;
    return JSON.parse(result.stdout) as Record<string, number>;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function rate(weights: number, seconds: number): string {
  return `${(weights / seconds / 1e6).toFixed(2)}M`.padStart(9);
}

async function main(): Promise<void> {
  const millions = Number(process.argv[2] ?? 2);
  const rows = Math.max(8, Math.round((millions * 1e6) / ROW / 8) * 8);
  const next = gaussian(7);
  const values = Float32Array.from({ length: rows * ROW }, () => 0.02 * next());
  const small = values.subarray(0, (rows / 8) * ROW);
  const importance = Float32Array.from({ length: ROW }, () => Math.exp(next()));
  const numpy = await numpySeconds(values);
  quantizeGgml('Q8_0', small); // loads the module

  console.log(
    `${values.length} weights (${rows} rows of ${ROW}); TypeScript on ${small.length}; load average ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    'type     wasm w/s  TS w/s  speed-up  imatrix: wasm w/s  TS w/s   NumPy w/s  wasm × NumPy',
  );
  for (const type of GGML_QUANT_TYPES) {
    const wasm = bestSeconds(() => quantizeGgml(type, values));
    const ts = bestSeconds(() => quantizeGgml(type, small, undefined, true), 2);
    const wasmWeighted = bestSeconds(() => quantizeGgml(type, values, importance));
    const tsWeighted = bestSeconds(() => quantizeGgml(type, small, importance, true), 2);
    const reference = numpy?.[type];
    const speedup = (small.length / ts / (values.length / wasm)) ** -1;
    console.log(
      `${type.padEnd(7)} ${rate(values.length, wasm)} ${rate(small.length, ts)} ${`${speedup.toFixed(1)}×`.padStart(8)}          ${rate(values.length, wasmWeighted)} ${rate(small.length, tsWeighted)} ${reference ? rate(values.length, reference) : '        —'} ${reference ? `${(wasm / reference).toFixed(2)}`.padStart(11) : ''}`,
    );
  }
  if (!numpy) console.log('(NumPy not measured: /usr/bin/python3 with numpy did not run)');
  console.log(
    `load average after: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
}

void main();

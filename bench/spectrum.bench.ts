/**
 * Full singular spectrum of square float32 Gaussian matrices, next to NumPy on the same
 * values, with accuracy against NumPy's float64 SVD.
 *
 *   node --import tsx bench/spectrum.bench.ts [largest side]     (default 4096)
 *
 * Sides 1024, 2048, 4096 up to the largest (a smaller argument runs that side alone).
 * For each: LayerLens in float32 and float64 precision (in this thread, as the spectrum
 * worker runs it), NumPy's `eigvalsh(W.T @ W)` and `svd(W, compute_uv=False)` in float32,
 * measured in the same run; the error column is max |σᵢ − σᵢ(NumPy float64 SVD)| / σ₁.
 * NumPy's times are the best of a few runs; ours are one run each at 4096 (two below),
 * with the seconds per stage of the Gram route (Gram matrix, band reduction, bulge
 * chasing, tridiagonal eigenvalues) printed under the table.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gaussianFill } from '../src/server/analysis/randomizedSvd';
import { computeSpectrumInThread } from '../src/server/analysis/spectrum';
import type { StageTimings } from '../src/server/analysis/symmetricEigen';
import type { SpectrumPrecision } from '../src/shared/spectrum';

const SIDES = [1024, 2048, 4096];

/** Standard normal values, deterministic. */
function gaussianValues(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  gaussianFill(values, seed);
  return values;
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
n = int(sys.argv[2])
w = np.fromfile(sys.argv[1], dtype=np.float32).reshape(n, n)
reference = np.linalg.svd(w.astype(np.float64), compute_uv=False)
reference.astype(np.float64).tofile(sys.argv[3])
repeats = 3 if n <= 2048 else 2
def best(f):
    t, out = float('inf'), None
    for _ in range(repeats):
        s = time.perf_counter(); out = f(); t = min(t, time.perf_counter() - s)
    return t, out
t_eig, lam = best(lambda: np.linalg.eigvalsh(w.T @ w))
t_svd, sig = best(lambda: np.linalg.svd(w, compute_uv=False))
sig_eig = np.sqrt(np.maximum(lam[::-1].astype(np.float64), 0))
err = lambda s: float(np.max(np.abs(s.astype(np.float64) - reference)) / reference[0])
print(json.dumps({'version': np.__version__, 'eigvalsh': [t_eig, err(sig_eig)], 'svd': [t_svd, err(sig)]}))
`;

interface NumpyResult {
  readonly version: string;
  readonly eigvalsh: [number, number];
  readonly svd: [number, number];
}

function runNumpy(file: string, n: number, referenceFile: string): NumpyResult | string {
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, file, String(n), referenceFile], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (result.status !== 0) {
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  }
  return JSON.parse(result.stdout) as NumpyResult;
}

async function timeOurs(
  values: Float32Array,
  n: number,
  precision: SpectrumPrecision,
  repeats: number,
): Promise<{ seconds: number; sigma: Float64Array; backend: string; stages: StageTimings }> {
  let best = Infinity;
  let last: { sigma: Float64Array; backend: string; stages: StageTimings } | null = null;
  for (let i = 0; i < repeats; i++) {
    const stages: StageTimings = {};
    const start = process.hrtime.bigint();
    const result = await computeSpectrumInThread(
      values,
      [n, n],
      { method: 'full', precision },
      undefined,
      { stageTimings: stages },
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (seconds < best) {
      best = seconds;
      last = { sigma: result.singularValues, backend: result.backend, stages };
    }
  }
  return { seconds: best, ...last! };
}

function relativeError(sigma: Float64Array, reference: Float64Array | null): number {
  if (!reference) return NaN;
  let worst = 0;
  for (let i = 0; i < reference.length; i++) {
    worst = Math.max(worst, Math.abs(sigma[i]! - reference[i]!));
  }
  return worst / reference[0]!;
}

async function main(): Promise<void> {
  const largest = Number(process.argv[2] ?? 4096);
  const sides = SIDES.filter((side) => side <= largest);
  if (sides.length === 0) sides.push(largest);
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-spectrum-bench-'));
  const rows: [string, string, number, number, number][] = [];
  const stageLines: string[] = [];
  let numpyVersion = '';
  let numpyMissing = '';
  let backend = '';
  try {
    for (const n of sides) {
      const values = gaussianValues(n * n, n);
      const file = join(dir, `w${n}.f32`);
      const referenceFile = join(dir, `sigma${n}.f64`);
      await writeFile(file, new Uint8Array(values.buffer));
      const numpy = runNumpy(file, n, referenceFile);
      let reference: Float64Array | null = null;
      let fastest = NaN;
      if (typeof numpy === 'string') {
        numpyMissing = numpy;
      } else {
        numpyVersion = numpy.version;
        const bytes = await readFile(referenceFile);
        reference = new Float64Array(bytes.buffer, bytes.byteOffset, n);
        fastest = Math.min(numpy.eigvalsh[0], numpy.svd[0]);
        rows.push([`${n}²`, 'NumPy eigvalsh(W.T @ W) float32', ...numpy.eigvalsh, fastest]);
        rows.push([`${n}²`, 'NumPy svd(compute_uv=False) float32', ...numpy.svd, fastest]);
      }
      const repeats = n >= 4096 ? 1 : 2;
      for (const precision of ['float32', 'float64'] as const) {
        const ours = await timeOurs(values, n, precision, repeats);
        if (precision === 'float32') backend = ours.backend;
        const stages = Object.entries(ours.stages)
          .map(([stage, seconds]) => `${stage} ${seconds.toFixed(3)}`)
          .join(', ');
        stageLines.push(`${n}² ${precision}: ${stages}`);
        rows.push([
          `${n}²`,
          `LayerLens full spectrum ${precision}`,
          ours.seconds,
          relativeError(ours.sigma, reference),
          fastest,
        ]);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(
    `Full singular spectrum of n × n float32 Gaussian matrices; Node ${process.version}` +
      (numpyVersion ? `, NumPy ${numpyVersion}` : ''),
  );
  console.log(`LayerLens route: ${backend}`);
  if (numpyMissing) console.log(`NumPy unavailable (${numpyMissing}): our figures alone.`);
  const width = Math.max(...rows.map(([, name]) => name.length));
  console.log(
    `${'size'.padEnd(6)}  ${'measurement'.padEnd(width)}  ${'seconds'.padStart(8)}  ${'× NumPy best'.padStart(12)}  ${'max err / σ₁'.padStart(12)}`,
  );
  for (const [size, name, seconds, error, fastest] of rows) {
    const ratio = seconds / fastest;
    console.log(
      `${size.padEnd(6)}  ${name.padEnd(width)}  ${seconds.toFixed(3).padStart(8)}  ${Number.isNaN(ratio) ? ''.padStart(12) : ratio.toFixed(2).padStart(12)}  ${Number.isNaN(error) ? ''.padStart(12) : error.toExponential(2).padStart(12)}`,
    );
  }
  console.log('LayerLens seconds per stage (the run above):');
  for (const line of stageLines) console.log(`  ${line}`);
}

void main().then(() => process.exit(0));

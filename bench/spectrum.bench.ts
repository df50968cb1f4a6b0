/**
 * Full singular spectrum of LLM-shaped float32 and bfloat16 Gaussian matrices, next to
 * NumPy on the same values, with accuracy against NumPy's float64 eigenvalues.
 *
 *   node --import tsx bench/spectrum.bench.ts [largest side]     (default 4096)
 *   npm run bench -- spectrum [--size 2048]
 *
 * Shapes 1024², 2048², 4096² and 4096 × 11008 (an MLP's down projection), those whose
 * smaller side is at most the argument. Sources: float32 values, and bfloat16 ones (the
 * same values rounded to bfloat16, then widened: what a bf16 checkpoint's tensor becomes).
 * For each: LayerLens's full spectrum in float32 (in this thread, as the spectrum worker
 * runs it) and NumPy's `eigvalsh(G)` in float32, G the Gram matrix of the smaller side,
 * its time including forming G, measured in the same run by the `python3` on the PATH
 * (its BLAS is printed). The error column is max |σᵢ − σᵢ(ref)| / σ₁, the reference being
 * NumPy's float64 eigvalsh of the float64 Gram matrix. Times are the best of two runs
 * for both (the first run of a shape also pays for first allocations); beside each, the CPU seconds of that run
 * (all threads: process.cpuUsage for ours, time.process_time for NumPy), which the load
 * of a shared machine disturbs less than the wall time. Rows are printed as they are measured;
 * under the table the load average (before and after), and the seconds per stage of our
 * route (Gram matrix, band reduction, bulge chasing, tridiagonal eigenvalues), each with
 * its CPU seconds (all threads: twice the wall time when both cores were busy).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gaussianFill } from '../src/server/analysis/randomizedSvd';
import { float32ToBfloat16Bits } from '../src/server/compress/kernels';
import { computeSpectrumInThread } from '../src/server/analysis/spectrum';
import type { StageTimings } from '../src/server/analysis/symmetricEigen';
import type { SpectrumPrecision } from '../src/shared/spectrum';

/** Runs of each case, ours and NumPy's; the best is reported. */
const REPEATS = 2;

/** [rows, cols]: square attention projections and the MLP's down projection. */
const SHAPES: readonly (readonly [number, number])[] = [
  [1024, 1024],
  [2048, 2048],
  [4096, 4096],
  [4096, 11008],
];

type Source = 'float32' | 'bfloat16';

/** Standard normal values, deterministic; for 'bfloat16' rounded to bfloat16 and widened back. */
function gaussianValues(count: number, seed: number, source: Source): Float32Array {
  const values = new Float32Array(count);
  gaussianFill(values, seed);
  if (source === 'float32') return values;
  const bits = float32ToBfloat16Bits(values);
  const widened = new Uint32Array(values.buffer);
  for (let i = 0; i < count; i++) widened[i] = bits[i]! << 16;
  return values;
}

function loadText(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
rows, cols, repeats = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
w = np.fromfile(sys.argv[1], dtype=np.float32).reshape(rows, cols)
gram = (lambda m: m @ m.T) if rows <= cols else (lambda m: m.T @ m)
w64 = w.astype(np.float64)
reference = np.sqrt(np.maximum(np.linalg.eigvalsh(gram(w64))[::-1], 0))
del w64
reference.tofile(sys.argv[5])
t, cpu, lam = float('inf'), 0.0, None
for _ in range(repeats):
    s, c = time.perf_counter(), time.process_time()
    lam = np.linalg.eigvalsh(gram(w))
    if time.perf_counter() - s < t: t, cpu = time.perf_counter() - s, time.process_time() - c
sigma = np.sqrt(np.maximum(lam[::-1].astype(np.float64), 0))
error = float(np.max(np.abs(sigma - reference)) / reference[0])
try:
    blas = ', '.join(sorted({i.get('internal_api', '') + ' ' + i.get('version', '') for i in __import__('threadpoolctl').threadpool_info()}))
except Exception:
    config = np.show_config(mode='dicts') if hasattr(np, 'show_config') else {}
    try:
        blas = config['Build Dependencies']['blas']['name']
    except Exception:
        blas = 'unknown BLAS'
print(json.dumps({'version': np.__version__, 'blas': blas, 'eigvalsh': [t, error], 'cpu': cpu}))
`;

interface NumpyResult {
  readonly version: string;
  readonly blas: string;
  readonly eigvalsh: [number, number];
  readonly cpu: number;
}

function runNumpy(
  file: string,
  rows: number,
  cols: number,
  repeats: number,
  referenceFile: string,
): NumpyResult | string {
  const args = [file, String(rows), String(cols), String(repeats), referenceFile];
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, ...args], {
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
  shape: readonly [number, number],
  precision: SpectrumPrecision,
  repeats: number,
): Promise<{
  seconds: number;
  cpu: number;
  sigma: Float64Array;
  backend: string;
  stages: StageTimings;
}> {
  let best = Infinity;
  let last: { cpu: number; sigma: Float64Array; backend: string; stages: StageTimings } | null =
    null;
  for (let i = 0; i < repeats; i++) {
    const stages: StageTimings = {};
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const result = await computeSpectrumInThread(
      values,
      shape,
      { method: 'full', precision },
      undefined,
      { stageTimings: stages },
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpuUsed = process.cpuUsage(cpuStart);
    if (seconds < best) {
      best = seconds;
      const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
      last = { cpu, sigma: result.singularValues, backend: result.backend, stages };
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

/** The table's columns; rows are printed as they are measured. */
const NAME_WIDTH = 'LayerLens full spectrum float32'.length;

function printRow(
  size: string,
  source: string,
  name: string,
  seconds: number,
  error: number,
  numpySeconds: number,
  cpu: number,
  numpyCpu: number,
): void {
  const ratio = (ours: number, theirs: number) =>
    Number.isNaN(ours / theirs) ? ''.padStart(8) : (ours / theirs).toFixed(2).padStart(8);
  console.log(
    `${size.padEnd(10)}  ${source.padEnd(8)}  ${name.padEnd(NAME_WIDTH)}  ${seconds.toFixed(3).padStart(8)}  ${ratio(seconds, numpySeconds)}  ${cpu.toFixed(2).padStart(8)}  ${ratio(cpu, numpyCpu)}  ${Number.isNaN(error) ? ''.padStart(12) : error.toExponential(2).padStart(12)}`,
  );
}

async function main(): Promise<void> {
  const largest = Number(process.argv[2] ?? 4096);
  const shapes = SHAPES.filter(([rows, cols]) => Math.min(rows, cols) <= largest);
  if (shapes.length === 0) shapes.push([largest, largest]);
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-spectrum-bench-'));
  const stageLines: string[] = [];
  let numpyLine = '';
  let numpyMissing = '';
  let backend = '';
  const loadBefore = loadText();
  console.log(`Full singular spectrum of Gaussian matrices; Node ${process.version}`);
  console.log(
    `${'size'.padEnd(10)}  ${'source'.padEnd(8)}  ${'measurement'.padEnd(NAME_WIDTH)}  ${'seconds'.padStart(8)}  ${'× NumPy'.padStart(8)}  ${'CPU s'.padStart(8)}  ${'× NumPy'.padStart(8)}  ${'max err / σ₁'.padStart(12)}`,
  );
  try {
    for (const shape of shapes) {
      const [r, c] = shape;
      const size = r === c ? `${r}²` : `${r}×${c}`;
      for (const source of ['float32', 'bfloat16'] as const) {
        const values = gaussianValues(r * c, r + c, source);
        const file = join(dir, `w${r}x${c}.f32`);
        const referenceFile = join(dir, `sigma${r}x${c}.f64`);
        await writeFile(file, new Uint8Array(values.buffer));
        const numpy = runNumpy(file, r, c, REPEATS, referenceFile);
        await rm(file);
        let reference: Float64Array | null = null;
        let numpySeconds = NaN;
        let numpyCpu = NaN;
        if (typeof numpy === 'string') {
          numpyMissing = numpy;
        } else {
          numpyLine = `NumPy ${numpy.version} (${numpy.blas})`;
          const bytes = await readFile(referenceFile);
          reference = new Float64Array(bytes.buffer, bytes.byteOffset, Math.min(r, c));
          numpySeconds = numpy.eigvalsh[0];
          numpyCpu = numpy.cpu;
          const [seconds, error] = numpy.eigvalsh;
          printRow(
            size,
            source,
            'NumPy eigvalsh(G) float32',
            seconds,
            error,
            seconds,
            numpyCpu,
            numpyCpu,
          );
        }
        const ours = await timeOurs(values, shape, 'float32', REPEATS);
        backend = ours.backend;
        const stages = Object.entries(ours.stages)
          .filter(([stage]) => !stage.endsWith(' CPU'))
          .map(
            ([stage, seconds]) =>
              `${stage} ${seconds.toFixed(3)} (CPU ${ours.stages[`${stage} CPU`]!.toFixed(2)})`,
          )
          .join(', ');
        stageLines.push(`${size} ${source}: ${stages}`);
        printRow(
          size,
          source,
          'LayerLens full spectrum float32',
          ours.seconds,
          relativeError(ours.sigma, reference),
          numpySeconds,
          ours.cpu,
          numpyCpu,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (numpyLine) console.log(numpyLine);
  if (numpyMissing) console.log(`NumPy unavailable (${numpyMissing}): our figures alone.`);
  console.log(`LayerLens route: ${backend}`);
  console.log(`Load average (1, 5, 15 min): ${loadBefore} before, ${loadText()} after`);
  console.log('LayerLens seconds per stage (the runs above):');
  for (const line of stageLines) console.log(`  ${line}`);
}

void main().then(() => process.exit(0));

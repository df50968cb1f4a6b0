/**
 * Where `layerlens.compute.backend` sends the work: the same products, spectra and
 * sensitivity sweep on the cpu provider and on a second backend (default cuda), each
 * row with the provider that really ran (the backend line the UI shows), beside PyTorch
 * (on the GPU when it sees one) and NumPy measured in the same run.
 *
 *   node --import tsx bench/gpu.bench.ts [--backend cuda] [--size 4096]
 *   npm run bench -- gpu
 *
 * Rows, each LayerLens row timed after one warm-up of the same shape:
 * - Gram product W·Wᵀ of a size² float32 matrix (`gramOfRows`, the spectrum's first step)
 *   and a plain product [size × 11008]·[11008 × size];
 * - the full spectrum of a size² float32 matrix (Gram, band reduction, bulge chasing);
 * - the fast spectral metrics of a size² and an 11008 × size matrix (randomized top-128
 *   SVD and Lanczos quadrature), the whole-model route;
 * - the measured sensitivity sweep of a generated 4-layer MLP (width 2048, batch 256),
 *   end to end (`computeSensitivity`; width min(2048, size)).
 * A backend this onnxruntime lacks falls back to cpu, and its rows say so: on a machine
 * without a GPU the second column measures the cpu again.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { printTable } from '../src/cli/table';
import { gaussianFill } from '../src/server/analysis/randomizedSvd';
import { computeSpectrumInThread } from '../src/server/analysis/spectrum';
import { sharedMatMulRuntime } from '../src/server/runtime/matmul';
import { clearSensitivityCache, computeSensitivity } from '../src/server/sensitivity';
import { DEFAULT_SETTINGS, type ComputeBackend } from '../src/shared/settings';
import { writeMlp } from './support/mlp';

const MLP_HIDDEN = 11008;
const SWEEP_BATCH = 256;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const SIZE = Number(flag('--size', process.argv[2]?.match(/^\d+$/) ? process.argv[2] : '4096'));
const SECOND = flag('--backend', 'cuda') as ComputeBackend;
const SWEEP_WIDTH = Math.min(2048, SIZE);

function loadText(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/** A fallback's reason, cut to fit a table cell. */
function shortened(text: string): string {
  return text.length > 72 ? `${text.slice(0, 71)}…` : text;
}

function gaussian(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  gaussianFill(values, seed);
  return values;
}

/** Seconds of the second of two runs (the first builds sessions and warms the provider). */
async function timed<T>(work: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  await work();
  const start = process.hrtime.bigint();
  const result = await work();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, result };
}

interface Measured {
  readonly seconds: number;
  readonly ran: string;
}

type Case = (backend: ComputeBackend) => Promise<Measured>;

function cases(folder: string): [string, Case][] {
  const square = gaussian(SIZE * SIZE, 1);
  const tall = gaussian(MLP_HIDDEN * SIZE, 2);
  const wide = gaussian(SIZE * MLP_HIDDEN, 3);
  const providerOf = (backend: ComputeBackend): string => {
    const choice = sharedMatMulRuntime(backend).provider;
    return choice.fallback ? `${choice.provider} (${shortened(choice.fallback)})` : choice.provider;
  };
  const spectrum = (values: Float32Array, shape: [number, number], method: 'full' | 'fast') =>
    (async (backend) => {
      const { seconds } = await timed(() =>
        computeSpectrumInThread(values, shape, { method, precision: 'float32' }, undefined, {
          backend,
        }),
      );
      return { seconds, ran: providerOf(backend) };
    }) as Case;
  let mlp: string | null = null;
  return [
    [
      `Gram W·Wᵀ, ${SIZE}² float32`,
      async (backend) => {
        const runtime = sharedMatMulRuntime(backend);
        const { seconds } = await timed(() =>
          runtime.gramOfRows({ rows: SIZE, cols: SIZE, data: square }, 8),
        );
        return { seconds, ran: providerOf(backend) };
      },
    ],
    [
      `product [${SIZE}×${MLP_HIDDEN}]·[${MLP_HIDDEN}×${SIZE}] float32`,
      async (backend) => {
        const runtime = sharedMatMulRuntime(backend);
        const { seconds } = await timed(() =>
          runtime.gemm(
            { rows: SIZE, cols: MLP_HIDDEN, data: wide },
            { rows: MLP_HIDDEN, cols: SIZE, data: tall },
          ),
        );
        return { seconds, ran: providerOf(backend) };
      },
    ],
    [`full spectrum ${SIZE}² float32`, spectrum(square, [SIZE, SIZE], 'full')],
    [`fast metrics ${SIZE}²`, spectrum(square, [SIZE, SIZE], 'fast')],
    [`fast metrics ${MLP_HIDDEN}×${SIZE}`, spectrum(tall, [MLP_HIDDEN, SIZE], 'fast')],
    [
      `sensitivity sweep, MLP 4 × ${SWEEP_WIDTH}², batch ${SWEEP_BATCH}`,
      async (backend) => {
        mlp ??= await writeMlp(folder, SWEEP_WIDTH);
        const settings = {
          ...DEFAULT_SETTINGS,
          'compute.backend': backend,
          'validation.dimensions': { batch: SWEEP_BATCH },
        };
        const { seconds, result } = await timed(async () => {
          clearSensitivityCache();
          return computeSensitivity(mlp!, { indices: [], measured: true }, { settings });
        });
        return { seconds, ran: `${shortened(result.backend)} (${result.runs} runs)` };
      },
    ],
  ];
}

const REFERENCE_SCRIPT = `
import json, sys, time
import numpy as np
n, h = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
w = rng.standard_normal((n, h), dtype=np.float32)
t = rng.standard_normal((h, n), dtype=np.float32)
def best(f):
    f(); s = time.perf_counter(); f(); return time.perf_counter() - s
out = {
    'numpy gram': best(lambda: a @ a.T),
    'numpy product': best(lambda: w @ t),
    'numpy spectrum': best(lambda: np.linalg.eigvalsh(a @ a.T)),
}
try:
    import torch
    if torch.cuda.is_available():
        dev = torch.device('cuda')
        ga, gw, gt = (torch.from_numpy(x).to(dev) for x in (a, w, t))
        def cuda(f):
            def run():
                r = f(); torch.cuda.synchronize(); return r
            return run
        out['torch gram'] = best(cuda(lambda: ga @ ga.T))
        out['torch product'] = best(cuda(lambda: gw @ gt))
        out['torch spectrum'] = best(cuda(lambda: torch.linalg.eigvalsh(ga @ ga.T)))
        # With the host-to-device copy, as LayerLens pays it on every product.
        out['torch gram with copy'] = best(cuda(lambda: (lambda g: g @ g.T)(torch.from_numpy(a).to(dev)).cpu()))
        out['gpu'] = torch.cuda.get_device_name(0)
except Exception as error:
    out['torch'] = str(error)
print(json.dumps(out))
`;

function references(): Record<string, number | string> {
  const result = spawnSync('python3', ['-c', REFERENCE_SCRIPT, String(SIZE), String(MLP_HIDDEN)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (result.status !== 0) return { error: (result.stderr || 'python3 failed').trim() };
  return JSON.parse(result.stdout) as Record<string, number | string>;
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-bench-gpu-'));
  try {
    const loadBefore = loadText();
    const rows = [['WORK', 'CPU S', 'RAN ON', `${SECOND.toUpperCase()} S`, 'RAN ON', 'SPEED-UP']];
    for (const [name, run] of cases(folder)) {
      const cpu = await run('cpu');
      const other = await run(SECOND);
      rows.push([
        name,
        cpu.seconds.toFixed(3),
        cpu.ran,
        other.seconds.toFixed(3),
        other.ran,
        (cpu.seconds / other.seconds).toFixed(2),
      ]);
      console.error(`measured: ${name}`);
    }
    const reference = references();
    console.log(
      `LayerLens compute backends, ${new Date().toISOString()}, size ${SIZE}, load ${loadBefore} → ${loadText()}`,
    );
    printTable(rows);
    const refRows = [['REFERENCE (same run)', 'S']];
    for (const [key, value] of Object.entries(reference)) {
      refRows.push([key, typeof value === 'number' ? value.toFixed(3) : value]);
    }
    printTable(refRows);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

void main();

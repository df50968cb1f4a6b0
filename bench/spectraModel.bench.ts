/**
 * Spectral metrics of every matrix of a 7B-shaped model with the 'fast' method (what
 * `layerlens inspect --fast-spectra` and the `layerlens.spectrum.method` setting `fast`
 * run), and their agreement with the full spectrum on layer 0's matrices.
 *
 *   node --import tsx bench/spectraModel.bench.ts [layers] [--dist] [--keep] [--no-sparse]   (default 32 layers)
 *   npm run bench -- spectraModel [--size 4] [--dist]
 *
 * The model is a bfloat16 safetensors file of Llama-7B's matrix shapes, per layer q, k, v,
 * o (4096²), gate and up (11008 × 4096) and down (4096 × 11008): 224 matrices for 32
 * layers, 12.9 GB. Values are Gaussian with columns scaled by (1 + j)^−0.3, a spread
 * spectrum with a few large values. It is written once to .tmp/spectra-model/ under the
 * repository and reused by later runs; it is deleted at the end unless --keep is given.
 * Each matrix's spectrum is requested from the LayerLens server process, spoken to over
 * JSON-RPC as the extension's language client does (wall, and the process's CPU seconds
 * and peak RSS from /proc); then `layerlens inspect --fast-spectra` runs on it (wall, CPU
 * seconds, peak RSS from /usr/bin/time). Both run from the sources under tsx, or with
 * --dist from the bundle (dist/server.js, dist/cli.js, after `npm run build`), as the
 * packaged extension does. The largest matrix is then computed streamed and held whole in
 * this process, to show what streaming costs. Last, unless --no-sparse, the peak RSS of the
 * CLI and of the server over the whole Llama-7B as sparse shards (sparseModelRuns). The load
 * average is printed with the tables.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AnalysisService } from '../src/server/analysisService';
import { gaussianFill } from '../src/server/analysis/randomizedSvd';
import { fileMatrixPanels } from '../src/server/analysis/matrixOperand';
import {
  computeSpectrumInThread,
  computeStreamedSpectrum,
  type SpectrumComputation,
} from '../src/server/analysis/spectrum';
import {
  matrixFileSource,
  readMatrixFromFile,
  tensorMatrixShape,
} from '../src/server/analysis/tensorMatrix';
import { float32ToBfloat16Bits } from '../src/server/compress/kernels';
import { fastSpectrumWorkers } from '../src/server/jobs/computeSpectrum';
import { orderedPipeline } from '../src/server/jobs/orderedPipeline';
import { ModelService } from '../src/server/modelService';
import { MAX_PAGE_SIZE, MAX_SPECTRUM_HELD_BYTES, SPECTRUM_PANEL_BYTES } from '../src/shared/limits';
import { LspMethods } from '../src/shared/lsp';
import type { TensorInfo } from '../src/shared/model';
import type { SpectralMetrics, Spectrum, SpectrumMethod } from '../src/shared/spectrum';
import { startServer } from '../test/support/serverProcess';
import { processUsage } from './support/processCpu';

const ROOT = join(__dirname, '..');
const HIDDEN = 4096;
const INTERMEDIATE = 11008;
/** Per layer: name and [rows, cols] as stored ([out, in]). */
const LAYER_MATRICES: readonly [string, number, number][] = [
  ['self_attn.q_proj', HIDDEN, HIDDEN],
  ['self_attn.k_proj', HIDDEN, HIDDEN],
  ['self_attn.v_proj', HIDDEN, HIDDEN],
  ['self_attn.o_proj', HIDDEN, HIDDEN],
  ['mlp.gate_proj', INTERMEDIATE, HIDDEN],
  ['mlp.up_proj', INTERMEDIATE, HIDDEN],
  ['mlp.down_proj', HIDDEN, INTERMEDIATE],
];
/** Rows of a matrix generated at a time when the model is written. */
const WRITE_ROWS = 512;
/** Column scale exponent of the generated values. */
const COLUMN_DECAY = 0.3;

function loadText(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/** Writes the model (header first, then each matrix as it is generated); returns its size. */
async function writeModel(path: string, layers: number): Promise<number> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (let layer = 0; layer < layers; layer++) {
    for (const [name, rows, cols] of LAYER_MATRICES) {
      const bytes = rows * cols * 2;
      header[`model.layers.${layer}.${name}.weight`] = {
        dtype: 'BF16',
        shape: [rows, cols],
        data_offsets: [offset, offset + bytes],
      };
      offset += bytes;
    }
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(text);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  const file = await open(path, 'w');
  try {
    await file.write(prefix);
    await file.write(headerBytes);
    // Generated WRITE_ROWS rows at a time, so that writing leaves this process's peak RSS
    // (measured below) to the spectra.
    let seed = 1;
    for (let layer = 0; layer < layers; layer++) {
      for (const [, rows, cols] of LAYER_MATRICES) {
        for (let start = 0; start < rows; start += WRITE_ROWS) {
          const height = Math.min(WRITE_ROWS, rows - start);
          const values = new Float32Array(height * cols);
          gaussianFill(values, seed++);
          for (let r = 0; r < height; r++) {
            for (let c = 0; c < cols; c++) {
              values[r * cols + c]! *= 0.02 * (1 + c) ** -COLUMN_DECAY;
            }
          }
          const bits = float32ToBfloat16Bits(values);
          await file.write(new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
        }
      }
    }
  } finally {
    await file.close();
  }
  return 8 + headerBytes.byteLength + offset;
}

/** User + system seconds of a process.cpuUsage() difference (every thread of the process). */
function cpuSeconds({ user, system }: NodeJS.CpuUsage): number {
  return (user + system) / 1e6;
}

interface ChildRun {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly peakMb: number;
}

/** `node ARGS` in a child process under /usr/bin/time: wall, CPU seconds, peak RSS. */
function timedNode(args: readonly string[]): ChildRun {
  const run = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(run.stderr ?? '');
  if (run.status !== 0 || !line) {
    throw new Error(
      `${args.join(' ')} failed (${String(run.status)}): ${run.stderr?.slice(-2000)}`,
    );
  }
  return {
    seconds: Number(line[1]),
    cpuSeconds: Number(line[2]) + Number(line[3]),
    peakMb: Number(line[4]) / 1024,
  };
}

/** `layerlens inspect PATH --fast-spectra --json` (the bundle with `dist`, else the sources under tsx), timed. */
function timedCli(path: string, dist: boolean): ChildRun {
  const entry = dist ? [join('dist', 'cli.js')] : ['--import', 'tsx', join('src', 'cli', 'bin.ts')];
  return timedNode([...entry, 'inspect', path, '--fast-spectra', '--json']);
}

interface ServerRun extends ChildRun {
  readonly perShape: Map<string, { count: number; seconds: number }>;
  readonly backend: string;
}

/**
 * Every matrix's 'fast' spectrum of PATH, requested from a fresh server process (the
 * bundle with `dist`) in the environment the extension gives it: wall and CPU seconds from
 * the first request to the last answer, the process's peak RSS over its whole life.
 */
async function timedServer(path: string, dist: boolean): Promise<ServerRun> {
  const server = await startServer(
    {},
    undefined,
    dist ? join(ROOT, 'dist', 'server.js') : undefined,
  );
  try {
    const uri = pathToFileURL(path).toString();
    await server.request(LspMethods.openModel, { uri });
    const tensors: TensorInfo[] = [];
    for (let offset = 0; ; offset += MAX_PAGE_SIZE) {
      const page = (await server.request(LspMethods.tensors, { uri, offset, limit: MAX_PAGE_SIZE }))
        .tensors;
      tensors.push(...page);
      if (page.length < MAX_PAGE_SIZE) break;
    }
    const before = processUsage(server.pid);
    const started = performance.now();
    const { perShape, backend } = await fastSpectraOf(
      tensors.filter((tensor) => tensor.shape.length >= 2),
      (tensor) =>
        server.request(LspMethods.spectrum, {
          uri,
          index: tensor.index,
          options: { method: 'fast' },
        }),
    );
    const seconds = (performance.now() - started) / 1000;
    const after = processUsage(server.pid);
    if (!before || !after) throw new Error("the server process's usage needs Linux's /proc");
    return {
      seconds,
      cpuSeconds: after.cpuSeconds - before.cpuSeconds,
      peakMb: after.peakRssMb,
      perShape,
      backend,
    };
  } finally {
    server.stop();
  }
}

/**
 * Every matrix's 'fast' spectrum, as `layerlens inspect --fast-spectra` requests them: as
 * many in flight as there are fast-spectrum workers.
 */
async function fastSpectraOf(
  tensors: readonly TensorInfo[],
  spectrumOf: (tensor: TensorInfo) => Promise<Spectrum>,
) {
  const perShape = new Map<string, { count: number; seconds: number }>();
  let backend = '';
  await orderedPipeline(
    tensors.length,
    fastSpectrumWorkers(),
    (i) => spectrumOf(tensors[i]!),
    async (i, spectrum) => {
      backend = spectrum.backend;
      const key = tensors[i]!.shape.join(' × ');
      const entry = perShape.get(key) ?? { count: 0, seconds: 0 };
      perShape.set(key, {
        count: entry.count + 1,
        seconds: entry.seconds + spectrum.elapsedMs / 1000,
      });
    },
  );
  return { perShape, backend };
}

/** The matrices of a model (tensors of two or more dimensions). */
async function matricesOf(models: ModelService, path: string): Promise<TensorInfo[]> {
  const all: TensorInfo[] = [];
  for (let start = 0; ; start += MAX_PAGE_SIZE) {
    const page = (await models.tensors(path, start, MAX_PAGE_SIZE)).tensors;
    all.push(...page);
    if (page.length < MAX_PAGE_SIZE) break;
  }
  return all.filter((tensor) => tensor.shape.length >= 2);
}

/**
 * The whole Llama-7B in bfloat16 as three sparse shards (13.5 GB of holes, all zeros:
 * bench/llm_shaped.py), its vocabulary embedding and head included: peak RSS of the CLI and
 * of the server computing every matrix's 'fast' spectrum. Zeros take no products, so this
 * row is for memory (every matrix is still read), not speed.
 */
async function sparseModelRuns(dir: string, keep: boolean, dist: boolean): Promise<void> {
  const shards = join(dir, 'llama7b-sparse');
  const index = join(shards, 'model.safetensors.index.json');
  if (!existsSync(index)) {
    const made = spawnSync(
      '/usr/bin/python3',
      [join(__dirname, 'llm_shaped.py'), 'sparse', shards],
      {
        encoding: 'utf8',
      },
    );
    if (made.status !== 0) throw new Error(`bench/llm_shaped.py sparse failed: ${made.stderr}`);
  }
  try {
    const load = loadText();
    const cli = timedCli(index, dist);
    const server = await timedServer(index, dist);
    console.log(
      `\nLlama-7B, bfloat16, 3 sparse shards (13.5 GB of zeros, 291 tensors): every matrix's fast spectrum (load ${load} before, ${loadText()} after)`,
    );
    for (const [name, run] of [
      ['CLI', cli],
      ['server', server],
    ] as const) {
      console.log(
        `${name.padEnd(12)} ${run.seconds.toFixed(1).padStart(7)} s ${run.cpuSeconds.toFixed(0).padStart(5)} CPU s   peak RSS ${run.peakMb.toFixed(0)} MB`,
      );
    }
  } finally {
    if (!keep) rmSync(shards, { recursive: true, force: true });
  }
}

function format(value: number | null, digits = 4): string {
  return value === null ? '–' : value.toPrecision(digits);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dist = args.includes('--dist');
  if (dist && !existsSync(join(ROOT, 'dist', 'server.js'))) {
    throw new Error('--dist needs the bundle: run `npm run build` first');
  }
  const layers = Number(args.find((arg) => !arg.startsWith('--')) ?? 32);
  if (!Number.isInteger(layers) || layers < 1 || layers > 32) {
    throw new Error(`layers must be a whole number from 1 to 32, got ${String(layers)}`);
  }
  const dir = join(__dirname, '..', '.tmp', 'spectra-model');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `llama7b-shaped-${layers}-layers.safetensors`);
  const expectedBytes = LAYER_MATRICES.reduce((sum, [, r, c]) => sum + r * c * 2, 0) * layers;
  if (!existsSync(path) || statSync(path).size < expectedBytes) {
    const started = performance.now();
    const bytes = await writeModel(path, layers);
    console.log(
      `Wrote ${path} (${(bytes / 1e9).toFixed(2)} GB) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  }
  const models = new ModelService();
  const analysis = new AnalysisService(models);
  try {
    const summary = await models.openModel(path);
    const tensors = await matricesOf(models, path);
    const loadBefore = loadText();
    const server = await timedServer(path, dist);
    const { perShape, backend } = server;
    const window = fastSpectrumWorkers();
    const from = dist ? 'the bundle (dist/)' : 'the sources under tsx';
    console.log(
      `Fast spectral metrics (alpha, stable rank, effective rank) of a ${layers}-layer Llama-7B-shaped bfloat16 model: ` +
        `${summary.tensorCount} matrices, ${(summary.totalBytes / 1e9).toFixed(2)} GB; Node ${process.version}`,
    );
    console.log(`Route: ${backend}`);
    console.log(`Load average (1, 5, 15 min): ${loadBefore} before, ${loadText()} after`);
    console.log(
      `${window} matrices requested at a time; those held whole run side by side in the fast-spectrum workers, streamed ones one at a time in one worker on every core`,
    );
    console.log(`${'shape'.padEnd(14)}  ${'matrices'.padStart(8)}  ${'s each'.padStart(8)}`);
    for (const [shape, { count, seconds }] of perShape) {
      console.log(
        `${shape.padEnd(14)}  ${String(count).padStart(8)}  ${(seconds / count).toFixed(2).padStart(8)}`,
      );
    }
    console.log(
      `server process (${from}, over JSON-RPC): ${server.seconds.toFixed(1)} s (${(server.seconds / 60).toFixed(2)} min, ${server.cpuSeconds.toFixed(0)} CPU s, all threads) for ${tensors.length} matrices` +
        (layers < 32
          ? `; at this pace 32 layers take ${((server.seconds * 32) / layers / 60).toFixed(1)} min`
          : '') +
        `; peak RSS ${server.peakMb.toFixed(0)} MB (the whole process, spectrum workers included)`,
    );
    const cli = timedCli(path, dist);
    console.log(
      `CLI (layerlens inspect --fast-spectra --json, ${from}): ${cli.seconds.toFixed(1)} s, ${cli.cpuSeconds.toFixed(0)} CPU s, peak RSS ${cli.peakMb.toFixed(0)} MB` +
        (layers < 32
          ? `; 32 layers at this pace: ${((cli.seconds * 32) / layers / 60).toFixed(1)} min`
          : ''),
    );
    console.log(
      `Matrices of more than ${MAX_SPECTRUM_HELD_BYTES / 2 ** 20} MiB of float32 values are streamed from the file in row panels of ${SPECTRUM_PANEL_BYTES / 2 ** 20} MiB; smaller ones are held whole`,
    );
    // What streaming costs: the largest matrix streamed (as above) and held whole, one
    // thread each, page cache warm.
    const largest = (
      await models.tensorEntry(
        path,
        tensors.find((t) => t.name.endsWith('down_proj.weight'))!.index,
      )
    ).entry;
    const matrix = tensorMatrixShape(largest, true);
    const source = matrixFileSource(largest, matrix)!;
    const settings = { threads: 1 };
    const timed = async (run: () => Promise<SpectrumComputation>) => {
      const wall = performance.now();
      const cpu = process.cpuUsage();
      const result = await run();
      return {
        result,
        seconds: (performance.now() - wall) / 1000,
        cpuSeconds: cpuSeconds(process.cpuUsage(cpu)),
      };
    };
    const panels = fileMatrixPanels(source, Float32Array);
    const streamed = await timed(() =>
      computeStreamedSpectrum(panels, { method: 'fast' }, undefined, settings),
    );
    panels.close();
    const values = await readMatrixFromFile(source);
    const held = await timed(() =>
      computeSpectrumInThread(
        values,
        [matrix.rows, matrix.cols],
        { method: 'fast' },
        undefined,
        settings,
      ),
    );
    const sigmaGap = Math.abs(
      streamed.result.singularValues[0]! / held.result.singularValues[0]! - 1,
    );
    console.log(
      `${largest.info.name} (${largest.info.shape.join(' × ')}), 'fast', one thread: streamed ${streamed.seconds.toFixed(2)} s (${streamed.cpuSeconds.toFixed(2)} CPU s), ` +
        `held whole ${held.seconds.toFixed(2)} s (${held.cpuSeconds.toFixed(2)} CPU s); σ₁ differs by ${sigmaGap.toExponential(1)} relative`,
    );

    // Agreement on layer 0: full spectrum against fast, one matrix of each shape.
    console.log('\nAgreement with the full spectrum (layer 0):');
    const header = ['matrix', 'method', 'seconds', 'alpha', 'stable rank', 'eff. rank'];
    console.log(header.map((cell, i) => (i < 2 ? cell.padEnd(16) : cell.padStart(11))).join(' '));
    const loadAgreement = loadText();
    for (const name of ['self_attn.q_proj', 'mlp.gate_proj', 'mlp.down_proj']) {
      const tensor = tensors.find((t) => t.name === `model.layers.0.${name}.weight`)!;
      const results: Record<string, SpectralMetrics> = {};
      for (const method of ['full', 'fast'] as SpectrumMethod[]) {
        const t0 = performance.now();
        const spectrum = await analysis.spectrum(path, tensor.index, { method });
        const seconds = method === 'fast' ? NaN : (performance.now() - t0) / 1000;
        const metrics = spectrum.metrics;
        results[method] = metrics;
        console.log(
          [
            name.padEnd(16),
            method.padEnd(16),
            (Number.isNaN(seconds) ? '(above)' : seconds.toFixed(2)).padStart(11),
            format(metrics.alpha).padStart(11),
            format(metrics.stableRank).padStart(11),
            format(metrics.effectiveRank).padStart(11),
          ].join(' '),
        );
      }
      const relative = (key: 'alpha' | 'stableRank' | 'effectiveRank') => {
        const full = results.full![key];
        const fast = results.fast![key];
        return full && fast ? `${((fast / full - 1) * 100).toFixed(2)}%` : '–';
      };
      console.log(
        `${''.padEnd(16)} ${'fast vs full'.padEnd(16)} ${''.padStart(11)} ${relative('alpha').padStart(11)} ${relative('stableRank').padStart(11)} ${relative('effectiveRank').padStart(11)}`,
      );
    }
    console.log(`Load average: ${loadAgreement} before the agreement runs, ${loadText()} after`);
    if (!args.includes('--no-sparse')) await sparseModelRuns(dir, args.includes('--keep'), dist);
  } finally {
    analysis.dispose();
    models.dispose();
    if (!args.includes('--keep')) await rm(path, { force: true });
  }
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

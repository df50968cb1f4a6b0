/**
 * Statistics of whole LLM-shaped files, end to end, next to NumPy doing the same work.
 *
 *   npm run bench -- statsFile [--dist] [--keep] [--only=f32|f16|bf16|sparse]
 *
 * Generates in .tmp/bench-stats-file/ (bench/llm_shaped.py, NumPy): four Llama-7B decoder
 * layers of random-normal bfloat16 (1.6 GB), the same in float16, two layers in float32
 * (1.6 GB), and the whole 7B model in bfloat16 as three sparse shards (13.5 GB of holes,
 * for memory only). For each file it times `layerlens inspect FILE --stats --json` (the CLI
 * from source through tsx, or the bundle dist/cli.js with --dist after `npm run build`),
 * the server's statistics requests over every tensor (a fresh server process spoken to over
 * JSON-RPC, from source or, with --dist, dist/server.js as the packaged extension runs it)
 * and NumPy (read, widen to float32, min/max/mean/std, zeros, NaN and Infinity counts,
 * 256-bin histogram, tensor by tensor, one thread), and prints GB/s of file bytes,
 * peak RSS of each process, how far LayerLens's min/max/mean/std are from NumPy's, the
 * server's CPU by thread (threadSplit), and the load average. Files over 1 GB are deleted
 * at the end unless --keep. `--only=NAME` runs (and generates) one file: a dense file by
 * the start of its name, or the sparse shards.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_PAGE_SIZE, MAX_STATS_BATCH } from '../src/shared/limits';
import { LspMethods } from '../src/shared/lsp';
import type { TensorStats } from '../src/shared/model';
import { defaultPoolSize } from '../src/server/jobs/workerPool';
import { startServer } from '../test/support/serverProcess';
import { processUsage, threadCpuMs } from './support/processCpu';

const ROOT = resolve(__dirname, '..');
const DIR = join(ROOT, '.tmp', 'bench-stats-file');
const GENERATOR = join(ROOT, 'bench', 'llm_shaped.py');
const PYTHON = '/usr/bin/python3';
const TIME = '/usr/bin/time';

interface DenseFile {
  readonly label: string;
  readonly file: string;
  readonly dtype: string;
  readonly layers: number;
}

const DENSE: readonly DenseFile[] = [
  { label: 'bf16, 4 layers', file: 'bf16.safetensors', dtype: 'bfloat16', layers: 4 },
  { label: 'f16, 4 layers', file: 'f16.safetensors', dtype: 'float16', layers: 4 },
  { label: 'f32, 2 layers', file: 'f32.safetensors', dtype: 'float32', layers: 2 },
];
const SPARSE_INDEX = join(DIR, 'llama7b', 'model.safetensors.index.json');

function load(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

function run(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr || result.error}`);
  }
  return result.stdout;
}

function generate(dense: readonly DenseFile[], sparse: boolean): void {
  mkdirSync(DIR, { recursive: true });
  for (const { file, dtype, layers } of dense) {
    const path = join(DIR, file);
    if (existsSync(path)) continue;
    console.log(`generating ${path} …`);
    run(PYTHON, [GENERATOR, 'dense', path, dtype, String(layers)]);
  }
  if (sparse && !existsSync(SPARSE_INDEX)) run(PYTHON, [GENERATOR, 'sparse', join(DIR, 'llama7b')]);
}

/** Bytes of a model: the file, or for a shard index the shards it names. */
function modelBytes(path: string): number {
  if (!path.endsWith('.index.json')) return statSync(path).size;
  const dir = join(path, '..');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.safetensors'))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

interface Measured {
  readonly seconds: number;
  /** Peak resident set of the process, MB (NaN when it could not be measured). */
  readonly peakMb: number;
  /** CPU seconds of the process, all threads (NaN when not measured). */
  readonly cpuSeconds: number;
  readonly tensors?: Record<string, readonly number[]>;
  /** The server's CPU split by thread (threadSplit). */
  readonly threads?: string;
}

/** Runs a node command under /usr/bin/time, which reports the peak RSS. */
function timedNode(args: readonly string[]): {
  stdout: string;
  seconds: number;
  peakMb: number;
  cpuSeconds: number;
} {
  const withTime = existsSync(TIME);
  const start = process.hrtime.bigint();
  const result = spawnSync(
    withTime ? TIME : process.execPath,
    withTime ? ['-f', 'peak-rss-kb %M cpu %U %S', process.execPath, ...args] : args,
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30 },
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${result.stderr}`);
  const peak = /peak-rss-kb (\d+) cpu ([\d.]+) ([\d.]+)/.exec(result.stderr);
  return {
    stdout: result.stdout,
    seconds,
    peakMb: peak ? Number(peak[1]) / 1024 : NaN,
    cpuSeconds: peak ? Number(peak[2]) + Number(peak[3]) : NaN,
  };
}

function cli(path: string, dist: boolean): Measured {
  const entry = dist ? [join(ROOT, 'dist', 'cli.js')] : ['--import', 'tsx', 'src/cli/bin.ts'];
  const { stdout, seconds, peakMb, cpuSeconds } = timedNode([
    ...entry,
    'inspect',
    path,
    '--stats',
    '--json',
  ]);
  const report = JSON.parse(stdout) as {
    tensors: { name: string; stats?: TensorStats | { error: string } }[];
  };
  const tensors: Record<string, number[]> = {};
  for (const { name, stats } of report.tensors) {
    if (!stats || 'error' in stats) throw new Error(`no statistics for ${name}`);
    tensors[name] = [stats.min!, stats.max!, stats.mean!, stats.std!];
  }
  return { seconds, peakMb, cpuSeconds, tensors };
}

/**
 * Every tensor's statistics from a fresh server process (the bundle with `dist`, else the
 * sources under tsx), asked over JSON-RPC as the extension asks: open the model (its stats
 * workers start meanwhile), then the statistics in batches. Seconds and CPU seconds (all
 * threads, from /proc) run from the open request to the last answer; the peak RSS is the
 * process's over its whole life.
 */
async function server(path: string, dist: boolean): Promise<Measured> {
  const lsp = await startServer({}, undefined, dist ? join(ROOT, 'dist', 'server.js') : undefined);
  try {
    const uri = pathToFileURL(path).toString();
    const before = processUsage(lsp.pid);
    const threadsBefore = threadCpuMs(lsp.pid);
    const start = performance.now();
    const summary = await lsp.request(LspMethods.openModel, { uri });
    const batch = Math.min(MAX_STATS_BATCH, MAX_PAGE_SIZE);
    let failed = 0;
    for (let first = 0; first < summary.tensorCount; first += batch) {
      const indices = Array.from(
        { length: Math.min(batch, summary.tensorCount - first) },
        (_, i) => first + i,
      );
      for (const result of await lsp.request(LspMethods.tensorStats, { uri, indices })) {
        if ('error' in result) failed++;
      }
    }
    const seconds = (performance.now() - start) / 1000;
    const after = processUsage(lsp.pid);
    const threads = threadSplit(threadsBefore, threadCpuMs(lsp.pid));
    if (failed > 0) throw new Error(`${failed} tensors had no statistics`);
    return {
      seconds,
      cpuSeconds: before && after ? after.cpuSeconds - before.cpuSeconds : NaN,
      peakMb: after?.peakRssMb ?? NaN,
      ...(threads ? { threads } : {}),
    };
  } finally {
    lsp.stop();
  }
}

/**
 * The CPU of the timed part by thread, from two readings of /proc: the busiest threads,
 * as many as the server's default pool has workers (the stats workers), then the others
 * together (main thread, V8's compilers and GC, libuv's pool). Undefined where threads
 * cannot be read.
 */
function threadSplit(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): string | undefined {
  if (after.size === 0) return undefined;
  const spent = [...after].map(([tid, ms]) => ms - (before.get(tid) ?? 0)).sort((a, b) => b - a);
  const busiest = spent.slice(0, defaultPoolSize());
  const others = spent.slice(busiest.length);
  const sum = (values: readonly number[]) => values.reduce((total, ms) => total + ms, 0);
  return `busiest ${busiest.length} threads (the stats workers) ${busiest.join(' + ')} ms, the other ${others.length} threads ${sum(others)} ms`;
}

function numpy(path: string): Measured | string {
  const result = spawnSync(PYTHON, [GENERATOR, 'stats', path], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (result.status !== 0) return (result.stderr || 'python3 failed').trim().split('\n').pop()!;
  const parsed = JSON.parse(result.stdout) as {
    seconds: number;
    cpuSeconds: number;
    tensors: Record<string, number[]>;
  };
  return {
    seconds: parsed.seconds,
    peakMb: NaN,
    cpuSeconds: parsed.cpuSeconds,
    tensors: parsed.tensors,
  };
}

/** Largest difference from NumPy: min/max exact?, mean and std relative to the std. */
function agreement(ours: Measured, reference: Measured): string {
  let extremes = true;
  let worst = 0;
  for (const [name, [min, max, mean, std]] of Object.entries(reference.tensors!)) {
    const mine = ours.tensors![name]!;
    if (mine[0] !== min || mine[1] !== max) extremes = false;
    const scale = Math.max(std!, 1e-30);
    worst = Math.max(worst, Math.abs(mine[2]! - mean!) / scale, Math.abs(mine[3]! - std!) / scale);
  }
  return `min/max ${extremes ? 'equal' : 'DIFFER'}, mean/std within ${worst.toExponential(1)}·std`;
}

/** Seconds, GB/s, CPU seconds, GB per CPU second and peak RSS of one row. */
function timings(bytes: number, result: Measured): string[] {
  const optional = (value: number, digits: number) =>
    Number.isNaN(value) ? '' : value.toFixed(digits);
  return [
    result.seconds.toFixed(2),
    (bytes / result.seconds / 1e9).toFixed(3),
    optional(result.cpuSeconds, 2),
    optional(bytes / result.cpuSeconds / 1e9, 3),
    optional(result.peakMb, 0),
  ];
}

function printTable(title: string, rows: readonly (readonly string[])[]): void {
  const header = [
    'file',
    'path',
    'seconds',
    'GB/s',
    'CPU s',
    'GB/CPU-s',
    'peak RSS MB',
    '× NumPy (wall / CPU)',
  ];
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column]!.length)));
  console.log(`\n${title}`);
  for (const row of all) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dist = args.includes('--dist');
  if (dist && !existsSync(join(ROOT, 'dist', 'cli.js'))) {
    throw new Error('--dist needs the bundle: run `npm run build` first');
  }
  const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy']).status === 0;
  if (!hasNumpy) {
    console.log('NumPy (Debian python3-numpy) is needed to generate the files; skipped.');
    return;
  }
  const only = args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  const dense = DENSE.filter(({ file }) => only === undefined || file.startsWith(`${only}.`));
  const sparse = only === undefined || only === 'sparse';
  if (dense.length === 0 && !sparse) throw new Error(`--only ${only}: no such file`);
  generate(dense, sparse);
  const cliLabel = dist ? 'CLI (dist/cli.js)' : 'CLI (source, tsx)';
  const serverLabel = dist ? 'server (dist/server.js)' : 'server (source, tsx)';
  const rows: string[][] = [];
  const notes: string[] = [];
  console.log(`load average before: ${load()}`);
  for (const { label, file } of dense) {
    const path = join(DIR, file);
    const bytes = modelBytes(path);
    // Warm the page cache: every path reads cached bytes.
    spawnSync('cat', [path], { stdio: 'ignore' });
    const reference = numpy(path);
    const viaCli = cli(path, dist);
    const measured: [string, Measured][] = [
      [cliLabel, viaCli],
      [serverLabel, await server(path, dist)],
    ];
    if (typeof reference !== 'string') measured.push(['NumPy (1 thread)', reference]);
    else notes.push(`${label}: NumPy failed: ${reference}`);
    for (const [name, result] of measured) {
      const ratio =
        typeof reference === 'string' || name.startsWith('NumPy')
          ? ''
          : `${(reference.seconds / result.seconds).toFixed(2)}× / ${(
              reference.cpuSeconds / result.cpuSeconds
            ).toFixed(2)}×`;
      rows.push([label, name, ...timings(bytes, result), ratio]);
    }
    if (typeof reference !== 'string') {
      notes.push(`${label}: CLI vs NumPy: ${agreement(measured[0]![1], reference)}`);
    }
    const split = measured[1]![1].threads;
    if (split) notes.push(`${label}: server CPU by thread: ${split}`);
    console.log(`  ${label} done (load ${load()})`);
  }
  if (sparse) {
    const sparseBytes = modelBytes(SPARSE_INDEX);
    // Holes read as zeros, but the first reader still fills the page cache with zeroed
    // pages (about twice the CPU of a later read): read them once first, as the dense files.
    const dir = join(SPARSE_INDEX, '..');
    const shards = readdirSync(dir).filter((name) => name.endsWith('.safetensors'));
    spawnSync(
      'cat',
      shards.map((name) => join(dir, name)),
      { stdio: 'ignore' },
    );
    for (const [name, result] of [
      [cliLabel, cli(SPARSE_INDEX, dist)],
      [serverLabel, await server(SPARSE_INDEX, dist)],
    ] as const) {
      rows.push(['Llama-7B bf16, 3 sparse shards', name, ...timings(sparseBytes, result), '']);
    }
  }
  printTable(
    `Statistics of whole files (GB/s of file bytes, page cache warm; CPU s: all threads of the process, which a loaded machine disturbs less; load average after: ${load()})`,
    rows,
  );
  for (const note of notes) console.log(note);
  if (sparse) {
    console.log('The sparse shards are holes (all zeros): their row is for memory, not speed.');
  }
  if (!args.includes('--keep')) {
    for (const { file } of DENSE) rmSync(join(DIR, file), { force: true });
    rmSync(join(DIR, 'llama7b'), { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

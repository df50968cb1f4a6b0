/**
 * `layerlens pack` and `unpack`, file to file, on an LLM-shaped file, beside `zstd -3 -T2`
 * on the same file, measured in the same run; then the peak memory of packing Llama-7B.
 *
 *   npm run bench -- packFile [--size LAYERS] [--runs=N] [--keep] [--built]
 *
 * The file holds LAYERS Llama-7B decoder layers (default 4: 1.6 GB) of random-normal bf16
 * values (bench/support/llamaFile.ts), written under .tmp/bench-pack/ and read once before
 * timing, so that every tool reads it from the page cache. Each tool runs as its own process
 * (LayerLens: the CLI under tsx, start-up included, or with --built the bundle
 * dist/cli.js that `npm run build` writes, as users run it), timed by the wall clock, with its peak
 * RSS and CPU seconds from /usr/bin/time where that exists, after a `sync` so that no run
 * pays for writing back an earlier one's output. LayerLens syncs its output before it
 * exits; zstd does not, so the fsync of zstd's output is timed apart, right after it, and
 * both comparisons are printed. Both round trips are compared byte for byte with the
 * original. With --runs=N (default 1), both tools make N round trips,
 * taking turns (LayerLens, zstd, LayerLens, …), and every run gets its row with the load
 * after it: "faster in every run" can be read off the table. The memory check packs the two shards of a 13.5 GB
 * Llama-7B made of holes (sparse files: zeros on no disk). Files over 1 GB are deleted at
 * the end unless --keep is given (the generated input is then reused by the next run).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { writeLlamaLayers, writeSparseLlama7B } from './support/llamaFile';

const DIR = resolve('.tmp/bench-pack');
const BUILT = process.argv.includes('--built');
const CLI = BUILT ? [resolve('dist/cli.js')] : ['--import', 'tsx', resolve('src/cli/bin.ts')];
const TIME = '/usr/bin/time';
const COMPARE_PIECE = 16 * 1024 * 1024;
/** Most round trips --runs asks of each tool. */
const MAX_RUNS = 20;

const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

interface Run {
  readonly seconds: number;
  /**
   * Seconds of an fsync of the output right after the command (zstd's: it leaves its output
   * in the page cache); 0 for LayerLens, whose commit syncs the output before it exits.
   */
  readonly flushSeconds: number;
  /** Peak resident set (MB) and user and system CPU seconds, where /usr/bin/time exists. */
  readonly rssMB: number | null;
  readonly userSeconds: number | null;
  readonly systemSeconds: number | null;
}

/**
 * Run a command to completion, timed; throws with its output when it fails. Every file's
 * written data goes to disk first (untimed), so that no run pays for the write-back of an
 * earlier one's output. With `flush`, that output file is then synced (fsync, timed apart).
 */
function timed(command: string, args: readonly string[], flush?: string): Run {
  const withTime = existsSync(TIME);
  spawnSync('sync');
  const start = process.hrtime.bigint();
  const run = withTime
    ? spawnSync(TIME, ['-f', 'LLTIME %M %U %S', command, ...args], { encoding: 'utf8' })
    : spawnSync(command, args, { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.error) throw run.error;
  if (run.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed:\n${run.stdout}\n${run.stderr}`);
  }
  const figures = /LLTIME (\d+) ([\d.]+) ([\d.]+)/.exec(run.stderr ?? '');
  const flushStart = process.hrtime.bigint();
  if (flush && spawnSync('sync', [flush]).status !== 0) throw new Error(`sync ${flush} failed`);
  return {
    seconds,
    flushSeconds: flush ? Number(process.hrtime.bigint() - flushStart) / 1e9 : 0,
    rssMB: figures ? Number(figures[1]) / 1024 : null,
    userSeconds: figures ? Number(figures[2]) : null,
    systemSeconds: figures ? Number(figures[3]) : null,
  };
}

/** Whether two files hold the same bytes. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [first, second] = [await open(a, 'r'), await open(b, 'r')];
  try {
    if ((await first.stat()).size !== (await second.stat()).size) return false;
    const x = Buffer.alloc(COMPARE_PIECE);
    const y = Buffer.alloc(COMPARE_PIECE);
    for (let position = 0; ; position += COMPARE_PIECE) {
      const { bytesRead } = await first.read(x, 0, COMPARE_PIECE, position);
      await second.read(y, 0, COMPARE_PIECE, position);
      if (bytesRead === 0) return true;
      if (!x.subarray(0, bytesRead).equals(y.subarray(0, bytesRead))) return false;
    }
  } finally {
    await first.close();
    await second.close();
  }
}

/** Read a file once so that the timed runs find it in the page cache. */
async function warm(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const piece = Buffer.alloc(COMPARE_PIECE);
    for (let position = 0; ; position += COMPARE_PIECE) {
      if ((await handle.read(piece, 0, COMPARE_PIECE, position)).bytesRead === 0) return;
    }
  } finally {
    await handle.close();
  }
}

const mbs = (bytes: number, seconds: number) => (bytes / 1e6 / seconds).toFixed(0);
const fixed = (value: number | null, digits: number) =>
  value === null ? '—' : value.toFixed(digits);
/** CPU seconds as `total (user + system)`: system time (reads, writes, page cache) varies most on a shared machine. */
const cpu = (run: Run) =>
  run.userSeconds === null || run.systemSeconds === null
    ? '—'
    : `${(run.userSeconds + run.systemSeconds).toFixed(2)} (${run.userSeconds.toFixed(2)}+${run.systemSeconds.toFixed(2)})`;

function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

interface RoundTrip {
  readonly tool: string;
  readonly pack: Run;
  readonly unpack: Run;
  readonly packedBytes: number;
  readonly exact: boolean;
  readonly load: string;
}

async function roundTrip(
  tool: string,
  input: string,
  packed: string,
  unpacked: string,
  pack: () => Run,
  unpack: () => Run,
): Promise<RoundTrip> {
  await rm(packed, { force: true });
  await rm(unpacked, { force: true });
  const packRun = pack();
  const unpackRun = unpack();
  const result = {
    tool,
    pack: packRun,
    unpack: unpackRun,
    packedBytes: (await stat(packed)).size,
    exact: await sameBytes(input, unpacked),
    load: load(),
  };
  await rm(unpacked, { force: true });
  return result;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --runs=N (npm run bench passes flags on, not their separate values).
  const runs = Number(args.find((arg) => arg.startsWith('--runs='))?.slice('--runs='.length) ?? 1);
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) {
    throw new Error(`--runs=N takes a whole number from 1 to ${MAX_RUNS}`);
  }
  const layers = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 4);
  const keep = process.argv.includes('--keep');
  if (BUILT && !existsSync(CLI[0]!)) throw new Error(`${CLI[0]} is missing: run npm run build`);
  await mkdir(DIR, { recursive: true });
  const input = join(DIR, `llama-7b-${layers}-layers-bf16.safetensors`);
  console.log(`Generating (or reusing) ${input} …`);
  const size = await writeLlamaLayers(input, layers);
  await warm(input);
  const llz = `${input}.llz`;
  const zst = `${input}.zst`;
  const startLoad = load();
  const rows: RoundTrip[] = [];
  const zstdThere = spawnSync('zstd', ['--version']).status === 0;
  for (let run = 1; run <= runs; run++) {
    const suffix = runs > 1 ? ` #${run}` : '';
    rows.push(
      await roundTrip(
        `LayerLens pack/unpack${suffix}`,
        input,
        llz,
        `${llz}.unpacked`,
        () => timed(process.execPath, [...CLI, 'pack', input, '--out', llz]),
        () => timed(process.execPath, [...CLI, 'unpack', llz, '--out', `${llz}.unpacked`]),
      ),
    );
    if (zstdThere) {
      rows.push(
        await roundTrip(
          `zstd -3 -T2${suffix}`,
          input,
          zst,
          `${zst}.unpacked`,
          () => timed('zstd', ['-3', '-T2', '-q', '-f', input, '-o', zst], zst),
          () =>
            timed(
              'zstd',
              ['-d', '-T2', '-q', '-f', zst, '-o', `${zst}.unpacked`],
              `${zst}.unpacked`,
            ),
        ),
      );
    }
  }
  console.log(
    `\nFile to file: ${basename(input)}, ${(size / 1e9).toFixed(2)} GB; Node ${process.version}; LayerLens ${BUILT ? 'dist/cli.js' : 'src/cli/bin.ts under tsx'}; load average ${startLoad} at the start`,
  );
  printTable(
    'MB/s of original bytes, wall clock of the whole process; ratio = packed / original; CPU = user + system seconds (user+system)',
    [
      'tool',
      'pack s',
      'pack MB/s',
      'pack CPU s',
      'pack RSS MB',
      'then fsync s',
      'unpack s',
      'unpack MB/s',
      'unpack CPU s',
      'unpack RSS MB',
      'then fsync s',
      'ratio',
      'byte-exact',
      'load after',
    ],
    rows.map((row) => [
      row.tool,
      row.pack.seconds.toFixed(2),
      mbs(size, row.pack.seconds),
      cpu(row.pack),
      fixed(row.pack.rssMB, 0),
      row.pack.flushSeconds.toFixed(2),
      row.unpack.seconds.toFixed(2),
      mbs(size, row.unpack.seconds),
      cpu(row.unpack),
      fixed(row.unpack.rssMB, 0),
      row.unpack.flushSeconds.toFixed(2),
      (row.packedBytes / size).toFixed(4),
      row.exact ? 'yes' : 'NO',
      row.load,
    ]),
  );
  if (!zstdThere) console.log('zstd is missing: no reference row.');
  else {
    // Rows alternate LayerLens, zstd: each run compared with the zstd run right after it.
    const pairs = Array.from({ length: runs }, (_, run) => [rows[2 * run]!, rows[2 * run + 1]!]);
    const faster = (pick: (row: RoundTrip) => Run, synced: boolean) =>
      pairs.filter(([ours, zstd]) => {
        const until = (run: Run) => run.seconds + (synced ? run.flushSeconds : 0);
        return until(pick(ours!)) < until(pick(zstd!));
      }).length;
    console.log(
      `LayerLens faster than zstd -3 -T2: pack in ${faster((row) => row.pack, false)} of ${runs} runs, unpack in ${faster((row) => row.unpack, false)} of ${runs}; ` +
        `than zstd and an fsync of its output (the durability LayerLens's commit gives): pack in ${faster((row) => row.pack, true)} of ${runs}, unpack in ${faster((row) => row.unpack, true)} of ${runs}`,
    );
  }

  const shards = await writeSparseLlama7B(join(DIR, 'llama-7b-sparse'));
  const shardRows: string[][] = [];
  for (const shard of shards) {
    const out = `${shard}.llz`;
    await rm(out, { force: true });
    const run = timed(process.execPath, [...CLI, 'pack', shard, '--out', out]);
    shardRows.push([
      basename(shard),
      ((await stat(shard)).size / 1e9).toFixed(2),
      run.seconds.toFixed(2),
      fixed(run.rssMB, 0),
      load(),
    ]);
    await rm(out, { force: true });
    await rm(shard, { force: true });
  }
  printTable(
    'Peak RSS packing Llama-7B (13.5 GB of bf16, two sparse shards)',
    ['shard', 'GB', 'pack s', 'peak RSS MB', 'load after'],
    shardRows,
  );
  console.log(
    '\nTargets: pack ≥ 500 MB/s, unpack ≥ 800 MB/s on 2 cores, ratio ≤ 0.66, byte-exact, faster than zstd -3 -T2 both ways; peak RSS < 300 MB.',
  );
  if (!keep) {
    for (const file of [input, llz, zst]) await rm(file, { force: true });
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * `npm run fuzz -- FORMAT|all [--cases N] [--seed S] [--timeout MS] [--memory MB]
 *   [--time SECONDS] [--keep DIR] [--first I]`
 *
 * Mutation fuzzing of the model readers. Seeds of every format (test/fuzz/seeds.ts) are
 * mutated with structure-aware mutations (test/fuzz/mutate.ts; the same seed gives the
 * same cases) and each case is opened in a child process (test/fuzz/case.ts) under a time
 * limit (--timeout, default 5000 ms) and a memory limit (--memory, default 1024 MB of
 * resident memory, polled; V8's heap is capped at the same size). Outcomes: ok, a
 * ModelFileError (the expected answer to a broken file), crash (any other error, or the
 * child dying), hang (over the time limit; the child is killed), memory (over the memory
 * limit; the child is killed). A child serves many cases and is replaced after a failure
 * and every 100 cases. Cases that crash, hang or blow up are copied to --keep
 * (default .tmp/fuzz-failures). Prints a table of outcomes per format; exits 1 when any
 * case crashed, hung or blew up. --time bounds the whole run (cases left are not run);
 * --first starts at case I (cases are numbered per format), to finish a run that --time cut.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { CaseAnswer } from './case';
import { mutate, seededRandom } from './mutate';
import { FUZZ_FORMATS, writeSeeds, type FuzzFormat } from './seeds';

type Outcome = 'ok' | 'ModelFileError' | 'crash' | 'hang' | 'memory';
const OUTCOMES: readonly Outcome[] = ['ok', 'ModelFileError', 'crash', 'hang', 'memory'];
const CASES_PER_CHILD = 100;
const POLL_MS = 20;
/** Start-up of a child: tsx, the readers and the statistics workers. */
const WARM_UP_MS = 120_000;

function options(argv: string[]) {
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) values.set(arg.slice(2), argv[++i] ?? '');
    else positional.push(arg);
  }
  const which = positional[0] ?? 'all';
  const formats = which === 'all' ? FUZZ_FORMATS : [which as FuzzFormat];
  if (!formats.every((format) => FUZZ_FORMATS.includes(format))) {
    console.error(
      `usage: npm run fuzz -- ${[...FUZZ_FORMATS, 'all'].join('|')} [--cases N] [--seed S] [--timeout MS] [--memory MB] [--time SECONDS] [--keep DIR] [--first I]`,
    );
    process.exit(2);
  }
  const number = (name: string, fallback: number) => {
    const value = Number(values.get(name) ?? fallback);
    if (Number.isNaN(value) || value < 0) {
      console.error(`--${name} needs a non-negative number`);
      process.exit(2);
    }
    return value;
  };
  return {
    formats,
    cases: number('cases', 100),
    seed: number('seed', 1),
    timeoutMs: number('timeout', 5000),
    memoryMb: number('memory', 1024),
    timeS: number('time', Infinity),
    keep: values.get('keep') ?? '.tmp/fuzz-failures',
    first: number('first', 0),
  };
}

/** Resident memory of a process in MB (VmRSS), or 0 once it is gone. */
function residentMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

class CaseRunner {
  private child: ChildProcess | null = null;
  private served = 0;
  private stderr = '';

  constructor(
    private readonly memoryMb: number,
    /** An intact seed each new child opens first, so that start-up is not timed as a case. */
    private readonly warmUpFile: string,
  ) {}

  private start(): ChildProcess {
    this.stderr = '';
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${this.memoryMb}`, '--import', 'tsx', 'test/fuzz/case.ts'],
      { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
    );
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    this.served = 0;
    return child;
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }

  /** Run one case; resolves with its outcome, the peak resident memory seen, and a message. */
  async run(
    id: number,
    file: string,
    timeoutMs: number,
  ): Promise<{ outcome: Outcome; peakMb: number; ms: number; message?: string }> {
    if (!this.child || this.served >= CASES_PER_CHILD) {
      this.stop();
      this.child = this.start();
      const warm = await this.send(this.child, -1, this.warmUpFile, WARM_UP_MS);
      if (warm.outcome !== 'ok')
        throw new Error(`the fuzz child did not start: ${warm.message ?? ''}`);
      this.child ??= this.start();
    }
    this.served++;
    return this.send(this.child, id, file, timeoutMs);
  }

  private send(
    child: ChildProcess,
    id: number,
    file: string,
    timeoutMs: number,
  ): Promise<{ outcome: Outcome; peakMb: number; ms: number; message?: string }> {
    const started = performance.now();
    return new Promise((resolve) => {
      let peakMb = 0;
      const finish = (outcome: Outcome, message?: string) => {
        clearInterval(poll);
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (outcome === 'crash' || outcome === 'hang' || outcome === 'memory') this.stop();
        resolve({ outcome, peakMb, ms: performance.now() - started, message });
      };
      const poll = setInterval(() => {
        peakMb = Math.max(peakMb, residentMb(child.pid!));
        if (peakMb > this.memoryMb) finish('memory', `resident memory passed ${this.memoryMb} MB`);
      }, POLL_MS);
      const timer = setTimeout(() => finish('hang', `no answer within ${timeoutMs} ms`), timeoutMs);
      const onMessage = (answer: CaseAnswer) => {
        if (answer.id !== id) return;
        peakMb = Math.max(peakMb, residentMb(child.pid!));
        if (answer.outcome === 'ok') finish('ok');
        else if (answer.outcome === 'error') finish('ModelFileError', answer.message);
        else finish('crash', answer.message);
      };
      const onExit = (code: number | null, signal: string | null) => {
        this.child = null;
        const outOfMemory = /heap out of memory|Allocation failed/i.test(this.stderr);
        finish(
          outOfMemory ? 'memory' : 'crash',
          `child exited (${code ?? signal}): ${this.stderr.slice(-1500)}`,
        );
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.send({ id, file });
    });
  }
}

/** A 32-bit seed for one case, from the run's seed, the format and the case number. */
function caseSeed(seed: number, format: FuzzFormat, index: number): number {
  let hash = 2166136261 ^ seed;
  for (const char of `${format}:${index}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  return hash >>> 0;
}

/** The case file's name keeps what format detection looks at (the extension, an index's suffix). */
function caseName(format: FuzzFormat, seedFile: string, index: number): string {
  const name = basename(seedFile);
  const suffix = format === 'index' ? '.safetensors.index.json' : name.slice(name.lastIndexOf('.'));
  return `fuzz-case-${index}${suffix}`;
}

async function main(): Promise<void> {
  const options_ = options(process.argv.slice(2));
  const deadline = performance.now() + options_.timeS * 1000;
  const folder = mkdtempSync(join(tmpdir(), 'layerlens-fuzz-'));
  const rows: string[][] = [['FORMAT', 'CASES', ...OUTCOMES, 'PEAK MB', 'SLOWEST MS']];
  let failures = 0;
  let runner: CaseRunner | undefined;
  try {
    const seeds = await writeSeeds(folder);
    runner = new CaseRunner(options_.memoryMb, seeds.safetensors[0]!);
    const seedBytes = new Map<string, Uint8Array>();
    for (const file of Object.values(seeds).flat())
      seedBytes.set(file, new Uint8Array(await readFile(file)));
    for (const format of options_.formats) {
      const counts = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, 0])) as Record<
        Outcome,
        number
      >;
      let peak = 0;
      let slowest = 0;
      let ran = 0;
      const end = options_.first + options_.cases;
      for (let index = options_.first; index < end && performance.now() < deadline; index++) {
        const random = seededRandom(caseSeed(options_.seed, format, index));
        const seedFile = seeds[format][Math.floor(random() * seeds[format].length)]!;
        const file = join(folder, caseName(format, seedFile, index));
        writeFileSync(file, mutate(format, seedBytes.get(seedFile)!, random));
        const result = await runner.run(index, file, options_.timeoutMs);
        counts[result.outcome]++;
        if (process.env.FUZZ_VERBOSE)
          console.log(
            `${format} ${index} ${result.outcome}: ${result.message ?? ''}`.slice(0, 300),
          );
        ran++;
        peak = Math.max(peak, result.peakMb);
        slowest = Math.max(slowest, result.ms);
        if (
          result.outcome === 'crash' ||
          result.outcome === 'hang' ||
          result.outcome === 'memory'
        ) {
          failures++;
          mkdirSync(options_.keep, { recursive: true });
          const kept = join(options_.keep, `${format}-seed${options_.seed}-${basename(file)}`);
          copyFileSync(file, kept);
          console.error(
            `${result.outcome}: ${kept} (from ${basename(seedFile)}): ${result.message ?? ''}`.slice(
              0,
              2000,
            ),
          );
        }
        rmSync(file, { force: true });
      }
      rows.push([
        format,
        String(ran),
        ...OUTCOMES.map((outcome) => String(counts[outcome])),
        peak.toFixed(0),
        slowest.toFixed(0),
      ]);
    }
  } finally {
    runner?.stop();
    rmSync(folder, { recursive: true, force: true });
  }
  const widths = rows[0]!.map((_, column) =>
    rows.reduce((width, row) => Math.max(width, row[column]!.length), 0),
  );
  for (const row of rows)
    console.log(row.map((cell, column) => cell.padStart(widths[column]!)).join('  '));
  console.log(
    `seed ${options_.seed}; ${failures === 0 ? 'no crash, hang or memory blow-up' : `${failures} failing cases`}`,
  );
  process.exitCode = failures === 0 ? 0 : 1;
}

void main();

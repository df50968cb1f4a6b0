/**
 * CPU time of processes this bench started, read from Linux's /proc: a headless Chromium's
 * renderers and, inside them, the threads of dedicated workers (the graph view's layout
 * workers); and the CPU time and peak RSS of one process (a server a bench started).
 * Benches taken under load print it beside wall time. Elsewhere than Linux every reading is
 * undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux's usual builds). */
const TICKS_PER_SECOND = 100;

export interface CpuReading {
  /** Every thread of the renderers, in ms. */
  readonly rendererMs: number;
  /** Dedicated workers' threads only, in ms. */
  readonly workersMs: number;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // The process or thread ended while we looked.
  }
}

/** utime + stime of a /proc stat line, in ms (the fields after the command's parenthesis). */
function statMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5); `fields` starts at field 3.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

function parentOf(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Chromium renderer processes descended from this process. */
function renderers(): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  const ours = (pid: number): boolean => {
    for (let at: number | undefined = pid, hops = 0; at && hops < 64; hops++) {
      if (at === process.pid) return true;
      at = parentOf(at);
    }
    return false;
  };
  return entries
    .map(Number)
    .filter((pid) => read(`/proc/${pid}/cmdline`)?.includes('--type=renderer') && ours(pid));
}

export function rendererCpu(): CpuReading | undefined {
  if (process.platform !== 'linux') return undefined;
  let rendererMs = 0;
  let workersMs = 0;
  for (const pid of renderers()) {
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of threads) {
      const stat = read(`/proc/${pid}/task/${tid}/stat`);
      if (!stat) continue;
      const ms = statMs(stat);
      rendererMs += ms;
      if (read(`/proc/${pid}/task/${tid}/comm`)?.startsWith('DedicatedWorker')) workersMs += ms;
    }
  }
  return { rendererMs, workersMs };
}

/** The CPU time spent between two readings. */
export function cpuSince(before: CpuReading | undefined): CpuReading | undefined {
  const now = rendererCpu();
  if (!before || !now) return undefined;
  return {
    rendererMs: now.rendererMs - before.rendererMs,
    workersMs: now.workersMs - before.workersMs,
  };
}

export interface ProcessUsage {
  /** User + system seconds of every thread, ended ones included. */
  readonly cpuSeconds: number;
  /** Peak resident set size so far (VmHWM), in MiB. */
  readonly peakRssMb: number;
}

/** CPU time and peak RSS of a running process; undefined elsewhere than Linux or once it ended. */
export function processUsage(pid: number): ProcessUsage | undefined {
  const stat = read(`/proc/${pid}/stat`);
  const peak = /^VmHWM:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '');
  if (!stat || !peak) return undefined;
  return { cpuSeconds: statMs(stat) / 1000, peakRssMb: Number(peak[1]) / 1024 };
}

/**
 * CPU milliseconds of each thread of a running process, by thread id (threads that ended
 * are gone); empty elsewhere than Linux or once the process ended.
 */
export function threadCpuMs(pid: number): Map<string, number> {
  const byThread = new Map<string, number>();
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byThread;
  }
  for (const tid of threads) {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    if (stat) byThread.set(tid, statMs(stat));
  }
  return byThread;
}

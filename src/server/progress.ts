/**
 * LSP work-done progress for the server's long work, one API for every job: statistics of
 * an open model, a spectrum or heatmap, a compression, a pack, a sweep or a plan.
 *
 * A progress is begun on the client's token when the request carries one, else on a
 * progress the server creates; a client that cannot show progress simply sees none. It
 * can wait a moment before showing anything (work that settles quickly shows nothing),
 * reports a percentage with a message, skips reports that would repeat the last one,
 * and is ended exactly once.
 */
import { basename } from 'node:path';
import type {
  Connection,
  ProgressToken,
  WorkDoneProgressReporter,
} from 'vscode-languageserver/node';

export interface WorkDoneOptions {
  /** The `workDoneToken` the request carried; absent: the server creates a progress. */
  readonly token?: ProgressToken;
  /** Show nothing until the work has run this long (0: show at once). */
  readonly showAfterMs?: number;
  /** Begin with a percentage (0%); false: a progress without one (a spinner). */
  readonly percentage?: boolean;
}

export interface WorkDone {
  /** `done` of `total` steps; the message defaults to the percentage ("42%"). */
  report(done: number, total: number, message?: string): void;
  /** Ends the progress (later calls do nothing). */
  end(): void;
}

/** Begin a progress titled `title`; failures to report are ignored. */
export function beginWorkDone(
  connection: Connection,
  title: string,
  options: WorkDoneOptions = {},
): WorkDone {
  const { token, showAfterMs = 0, percentage = true } = options;
  let reporter: Promise<WorkDoneProgressReporter | undefined> | undefined;
  let ended = false;
  let last: { percent: number; message: string } | undefined;
  const begin = (): void => {
    const created: Promise<WorkDoneProgressReporter> =
      token !== undefined
        ? Promise.resolve(connection.window.attachWorkDoneProgress(token))
        : connection.window.createWorkDoneProgress();
    reporter = created.then(
      (progress) => {
        progress.begin(title, percentage ? 0 : undefined, undefined, false);
        return progress;
      },
      // A client without work-done progress: the work runs without reports.
      () => undefined,
    );
  };
  const timer = showAfterMs > 0 ? setTimeout(begin, showAfterMs) : undefined;
  if (!timer) begin();
  return {
    report(done, total, message) {
      if (ended) return;
      const percent = total > 0 ? Math.floor((100 * Math.min(done, total)) / total) : 100;
      const text = message ?? `${percent}%`;
      if (last && last.percent === percent && last.message === text) return;
      last = { percent, message: text };
      void reporter?.then((progress) => progress?.report(percent, text));
    },
    end() {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      void reporter?.then((progress) => progress?.done());
    },
  };
}

/** Run `work` under a progress that ends when it settles, whichever way. */
export async function withWorkDone<T>(
  connection: Connection,
  title: string,
  options: WorkDoneOptions,
  work: (progress: WorkDone) => Promise<T>,
): Promise<T> {
  const progress = beginWorkDone(connection, title, options);
  try {
    return await work(progress);
  } finally {
    progress.end();
  }
}

/** A progress title naming the job and the file: `LayerLens: packing model.onnx`. */
export function progressTitle(what: string, file: string): string {
  return `LayerLens: ${what} ${basename(file)}`;
}

/** Progress that saw no statistics request for this long is ended (the editor was closed). */
const STATS_IDLE_END_MS = 3000;

/**
 * The statistics progress of each open model: shown while its tensors are being analysed,
 * ended when all are done or requests stop coming.
 */
export class ModelStatsProgress {
  private readonly running = new Map<string, { progress: WorkDone; idleTimer: NodeJS.Timeout }>();

  /** `coverage(path)`: how many of the model's tensors have statistics, of how many. */
  constructor(
    private readonly connection: Connection,
    private readonly coverage: (path: string) => Promise<{ computed: number; total: number }>,
  ) {}

  /** Call after each statistics batch of the model at `path`. */
  update(path: string): void {
    void this.report(path).catch(() => this.end(path));
  }

  /** End every running progress (the server is shutting down or starting over). */
  dispose(): void {
    for (const path of [...this.running.keys()]) this.end(path);
  }

  private async report(path: string): Promise<void> {
    const { computed, total } = await this.coverage(path);
    let running = this.running.get(path);
    if (computed >= total) {
      if (running) this.end(path);
      return;
    }
    if (!running) {
      running = {
        progress: beginWorkDone(this.connection, progressTitle('statistics of', path)),
        idleTimer: setTimeout(() => this.end(path), STATS_IDLE_END_MS),
      };
      this.running.set(path, running);
    }
    running.idleTimer.refresh();
    running.progress.report(computed, total, `${computed} / ${total} tensors`);
  }

  private end(path: string): void {
    const running = this.running.get(path);
    if (!running) return;
    this.running.delete(path);
    clearTimeout(running.idleTimer);
    running.progress.end();
  }
}

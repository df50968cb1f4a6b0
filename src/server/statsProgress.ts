/**
 * LSP work-done progress for the statistics of each open model: shown in VS Code while
 * a model's tensors are being analysed, ended when all are done or requests stop coming.
 */
import { basename } from 'node:path';
import type { Connection, WorkDoneProgressServerReporter } from 'vscode-languageserver/node';
import type { ModelService } from './modelService';

/** Progress that saw no request for this long is ended (the editor was closed mid-way). */
const IDLE_END_MS = 3000;

interface RunningProgress {
  reporter: Promise<WorkDoneProgressServerReporter>;
  idleTimer: NodeJS.Timeout;
}

export class StatsProgress {
  private readonly running = new Map<string, RunningProgress>();

  constructor(
    private readonly connection: Connection,
    private readonly service: ModelService,
  ) {}

  /** Call after each statistics batch of the model at `path`. */
  update(path: string): void {
    void this.report(path).catch(() => this.end(path));
  }

  private async report(path: string): Promise<void> {
    const { computed, total } = await this.service.statsCoverage(path);
    let running = this.running.get(path);
    if (computed >= total) {
      if (running) this.end(path);
      return;
    }
    if (!running) {
      const reporter = this.connection.window.createWorkDoneProgress().then((progress) => {
        progress.begin(`LayerLens: statistics of ${basename(path)}`, 0, undefined, false);
        return progress;
      });
      running = { reporter, idleTimer: setTimeout(() => this.end(path), IDLE_END_MS) };
      this.running.set(path, running);
    }
    running.idleTimer.refresh();
    const percentage = Math.floor((100 * computed) / total);
    (await running.reporter).report(percentage, `${computed} / ${total} tensors`);
  }

  private end(path: string): void {
    const running = this.running.get(path);
    if (!running) return;
    this.running.delete(path);
    clearTimeout(running.idleTimer);
    void running.reporter.then((progress) => progress.done());
  }
}

/**
 * LSP work-done progress for one compression job: begun when the job starts, reported as
 * the job calls back, and ended when it finishes, fails or is cancelled.
 */
import { basename } from 'node:path';
import type { Connection, WorkDoneProgressServerReporter } from 'vscode-languageserver/node';

export interface JobProgress {
  report(done: number, total: number, message: string): void;
  done(): void;
}

/** Start a progress report titled after the model file; failures to report are ignored. */
export function beginCompressProgress(connection: Connection, path: string): JobProgress {
  const reporter: Promise<WorkDoneProgressServerReporter | undefined> = connection.window
    .createWorkDoneProgress()
    .then((progress) => {
      progress.begin(`LayerLens: compressing ${basename(path)}`, 0, undefined, false);
      return progress;
    })
    .catch(() => undefined);
  return {
    report(done, total, message) {
      const percentage = total > 0 ? Math.floor((100 * done) / total) : undefined;
      void reporter.then((progress) => progress?.report(percentage ?? 0, message));
    },
    done() {
      void reporter.then((progress) => progress?.done());
    },
  };
}

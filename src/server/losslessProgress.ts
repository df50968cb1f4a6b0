/**
 * Work-done progress for a long lossless job (pack, unpack): on the client's token when the
 * request carries one, else on a progress the server creates. Percentages are reported at
 * most once per percent.
 */
import { basename } from 'node:path';
import type { Connection, WorkDoneProgressReporter } from 'vscode-languageserver/node';

export async function withWorkDone<T>(
  connection: Connection,
  token: string | number | undefined,
  title: string,
  run: (report: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  let reporter: WorkDoneProgressReporter;
  if (token !== undefined) {
    reporter = connection.window.attachWorkDoneProgress(token);
  } else {
    try {
      reporter = await connection.window.createWorkDoneProgress();
    } catch {
      // A client without work-done progress: run without reporting.
      return run(() => {});
    }
  }
  // Cancelling goes through the request itself ($/cancelRequest), not the progress.
  reporter.begin(title, 0, undefined, false);
  let lastPercent = -1;
  try {
    return await run((done, total) => {
      const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (percent === lastPercent) return;
      lastPercent = percent;
      reporter.report(percent, `${percent}%`);
    });
  } finally {
    reporter.done();
  }
}

export function packTitle(verb: string, file: string): string {
  return `LayerLens: ${verb} ${basename(file)}`;
}

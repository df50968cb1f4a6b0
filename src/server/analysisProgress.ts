/**
 * LSP work-done progress for one long computation (a spectrum, a heatmap pyramid): shown
 * only when the work takes longer than a moment, ended when it settles either way.
 */
import type { Connection, WorkDoneProgressServerReporter } from 'vscode-languageserver/node';

/** Work that settles sooner than this shows no progress at all. */
const SHOW_AFTER_MS = 400;

export async function withWorkDoneProgress<T>(
  connection: Connection,
  title: string,
  work: Promise<T>,
): Promise<T> {
  let reporter: Promise<WorkDoneProgressServerReporter | undefined> | undefined;
  const timer = setTimeout(() => {
    reporter = connection.window.createWorkDoneProgress().then(
      (progress) => {
        progress.begin(title, undefined, undefined, false);
        return progress;
      },
      () => undefined,
    );
  }, SHOW_AFTER_MS);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
    void reporter?.then((progress) => progress?.done());
  }
}

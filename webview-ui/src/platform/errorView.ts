/** How a failure to read the model is shown: what failed, which file, and a way to retry. */
import type { RequestError } from '../../../src/shared/protocol';
import { element } from './dom';

export function renderError(title: string, error: RequestError, retry: () => void): HTMLElement {
  const retryButton = element('button', {
    className: 'll-button',
    text: 'Try again',
    attrs: { type: 'button' },
  });
  retryButton.addEventListener('click', retry);
  return element(
    'div',
    { className: 'll-error', attrs: { 'data-testid': 'error', role: 'alert' } },
    [
      element('h1', { className: 'll-error-title', text: title }),
      element('p', { className: 'll-error-message', text: error.problem ?? error.message }),
      error.file
        ? element('p', { className: 'll-error-file' }, [
            'File: ',
            element('code', { text: error.file }),
          ])
        : null,
      element('div', { className: 'll-error-actions' }, [retryButton]),
    ],
  );
}

/** The last part of a path, for headings (`/models/broken.onnx` → `broken.onnx`). */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

/** Entry point of the diff editor's webview: asks for the diff, then shows it (diffView.ts). */
import type { DiffPanelToHost, HostToDiffPanel } from '../../../src/shared/protocol';
import { element } from '../platform/dom';
import { DiffView } from './diffView';

declare function acquireVsCodeApi(): { postMessage(message: DiffPanelToHost): void };

const vscode = acquireVsCodeApi();
const root = document.getElementById('app');
if (!root) throw new Error('LayerLens diff: the page has no #app element');
root.replaceChildren(element('p', { className: 'll-loading', text: 'Comparing the models…' }));
let view: DiffView | undefined;

window.addEventListener('message', (event: MessageEvent<HostToDiffPanel>) => {
  const message = event.data;
  if (typeof message !== 'object' || message === null) return;
  if (message.type === 'diff') {
    view = new DiffView(
      root,
      message.diff,
      (pair) =>
        vscode.postMessage({
          type: 'histograms',
          indexA: pair.indexA,
          indexB: pair.pairing === 'factors' ? null : pair.indicesB[0]!,
        }),
      (pair) => vscode.postMessage({ type: 'pairDetail', indexA: pair.indexA }),
      () => vscode.postMessage({ type: 'extractLora' }),
      () => vscode.postMessage({ type: 'showInGraph' }),
    );
    view.render();
  } else if (message.type === 'diffError') {
    root.replaceChildren(
      element('p', { className: 'll-error', attrs: { role: 'alert' }, text: message.message }),
    );
  } else if (message.type === 'histograms') {
    view?.showHistograms(message.indexA, message.a, message.b, message.error);
  } else if (message.type === 'pairDetail') {
    view?.showDetail(message.indexA, message.detail, message.error);
  } else if (message.type === 'lora') {
    view?.showLora(message.extraction);
  }
});
vscode.postMessage({ type: 'ready' });

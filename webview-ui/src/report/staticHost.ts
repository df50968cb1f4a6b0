/**
 * Stands in for VS Code's webview API in a shared HTML report: the model editor's view
 * (App) posts its requests here, and they are answered from the data `layerlens report`
 * embedded (src/shared/report.ts), asynchronously as the extension would. What the report
 * does not hold is answered with an error saying so, which the view shows in place.
 */
import type { ReportModel } from '../../../src/shared/report';
import type {
  HostToWebview,
  WebviewRequestName,
  WebviewRequests,
  WebviewToHost,
} from '../../../src/shared/protocol';
import { isDefaultOptions } from '../panels/spectrumPanel';
import type { VsCodeApi } from '../platform/vscodeApi';

/** The answer a request gets: its result, or the reason the report cannot give it. */
type Answer = { readonly result: unknown } | { readonly error: string };

export class StaticHost<State> implements VsCodeApi<State> {
  private state: State | undefined;
  private readonly spectra: ReadonlyMap<number, unknown>;
  private listener: ((message: HostToWebview) => void) | undefined;

  constructor(private readonly model: ReportModel) {
    this.spectra = new Map(model.spectra.map((spectrum) => [spectrum.index, spectrum]));
  }

  /** Where the answers go (the view's ModelApi). */
  connect(listener: (message: HostToWebview) => void): void {
    this.listener = listener;
  }

  getState(): State | undefined {
    return this.state;
  }

  setState(state: State): void {
    this.state = state;
  }

  postMessage(message: WebviewToHost): void {
    // Compressing, plans and reports need VS Code; the report has no buttons for them.
    if (message.type !== 'request') return;
    const answer = this.answer(message.name, message.params);
    const reply: HostToWebview =
      'error' in answer
        ? { type: 'response', id: message.id, error: { message: answer.error } }
        : { type: 'response', id: message.id, result: answer.result };
    setTimeout(() => this.listener?.(reply), 0);
  }

  private answer(name: WebviewRequestName, params: unknown): Answer {
    const model = this.model;
    switch (name) {
      case 'openModel':
        return { result: model.summary };
      case 'tensors': {
        const { offset, limit } = params as WebviewRequests['tensors']['params'];
        const start = Math.max(0, Math.min(offset, model.tensors.length));
        return {
          result: {
            offset: start,
            total: model.tensors.length,
            tensors: model.tensors.slice(start, start + Math.max(0, limit)),
          },
        };
      }
      case 'weightTensors':
        return { result: model.weights };
      case 'moduleTree':
        return { result: model.moduleTree };
      case 'tensorStats': {
        const { indices } = params as WebviewRequests['tensorStats']['params'];
        return {
          result: indices.map(
            (index) => model.stats[index] ?? { index, error: `no tensor with index ${index}` },
          ),
        };
      }
      case 'spectrum': {
        const { index, options } = params as WebviewRequests['spectrum']['params'];
        const spectrum = this.spectra.get(index);
        if (spectrum && isDefaultOptions(options ?? {})) return { result: spectrum };
        return {
          error: spectrum
            ? 'This report holds each spectrum with the default options only.'
            : 'This report holds the spectra of the largest weight matrices only.',
        };
      }
      default:
        return {
          error:
            'Not in this report: this view needs the LayerLens server; open the model in VS Code to see it.',
        };
    }
  }
}

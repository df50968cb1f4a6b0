/**
 * The request side of one model editor: it answers the webview's requests by forwarding
 * them to the LayerLens server with the editor's model, cancels them when the webview
 * asks, maps server errors to what the webview shows, and has the webview fetch
 * everything again when the model file changes on disk.
 *
 * It does not import `vscode`: the editor (modelEditor.ts) passes in the few pieces that
 * need it, and the webview tests drive this same code with a real server process.
 */
import {
  MODEL_ERROR_CODE,
  webviewMethodNamed,
  type LspMethod,
  type ModelErrorData,
  type SampleInputsParams,
} from '../shared/lsp';
import type { HostToWebview, RequestError, WebviewToHost } from '../shared/protocol';

export interface Disposable {
  dispose(): void;
}

/** What a session needs from its surroundings (VS Code, or a test's stand-ins). */
export interface ModelSessionHost {
  /** `file:` URI of the editor's model. */
  readonly uri: string;
  /** Send a message to the webview. */
  post(message: HostToWebview): void;
  /** Send a request to the server; `signal` aborts when the webview cancels it. */
  sendRequest(
    method: LspMethod<unknown, unknown>,
    params: object,
    signal: AbortSignal,
  ): Promise<unknown>;
  /** The sample inputs chosen for the model, for the methods declared with `sampleInputs`. */
  sampleInputs(): SampleInputsParams;
  /** Call `onChange` whenever the model file changes or is created on disk. */
  watchModelFile(onChange: () => void): Disposable;
}

export class ModelSession implements Disposable {
  private readonly inFlight = new Map<number, AbortController>();
  private readonly watcher: Disposable;

  constructor(private readonly host: ModelSessionHost) {
    this.watcher = host.watchModelFile(() => this.reload('the file changed on disk'));
  }

  /** Answers 'request' and 'cancel'; returns false for the messages it leaves to the editor. */
  onMessage(message: WebviewToHost): boolean {
    if (message.type === 'cancel') {
      this.inFlight.get(message.id)?.abort();
      return true;
    }
    if (message.type === 'request') {
      void this.answer(message.id, message.name, message.params);
      return true;
    }
    return false;
  }

  /** Cancel what is in flight and have the webview fetch everything again. */
  reload(reason: string): void {
    this.cancelAll();
    this.host.post({ type: 'reload', reason });
  }

  dispose(): void {
    this.watcher.dispose();
    this.cancelAll();
  }

  private async answer(id: number, name: string, params: object): Promise<void> {
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    try {
      const method = webviewMethodNamed(name);
      if (!method) throw new Error(`LayerLens: the webview may not ask for '${name}'`);
      const extras = method.sampleInputs ? this.host.sampleInputs() : {};
      const result = await this.host.sendRequest(
        method,
        { ...params, ...extras, uri: this.host.uri },
        controller.signal,
      );
      this.host.post({ type: 'response', id, result });
    } catch (error) {
      this.host.post({ type: 'response', id, error: toRequestError(error, controller.signal) });
    } finally {
      this.inFlight.delete(id);
    }
  }

  private cancelAll(): void {
    for (const controller of this.inFlight.values()) controller.abort();
  }
}

/** What the webview shows for a failed request: cancelled, a file at fault, or a message. */
export function toRequestError(error: unknown, signal: AbortSignal): RequestError {
  if (signal.aborted) return { message: 'cancelled', cancelled: true };
  const message = error instanceof Error ? error.message : String(error);
  const data = (error as { code?: number; data?: ModelErrorData }) ?? {};
  if (data.code === MODEL_ERROR_CODE && data.data)
    return { message, file: data.data.file, problem: data.data.problem };
  return { message };
}

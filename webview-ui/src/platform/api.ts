/** Typed requests to the extension (which forwards them to the LayerLens server). */
import {
  RequestChannel,
  WebviewRequestError,
  type HostToWebview,
  type RequestError,
  type WebviewRequestName,
  type WebviewRequests,
  type WebviewToHost,
} from '../../../src/shared/protocol';
import type { VsCodeApi } from './vscodeApi';

export class ModelApi {
  private readonly channel: RequestChannel;

  constructor(private readonly api: VsCodeApi<unknown>) {
    this.channel = new RequestChannel((message) => api.postMessage(message));
  }

  /** A message that expects no reply (e.g. "compress these tensors"). */
  send(message: WebviewToHost): void {
    this.api.postMessage(message);
  }

  /** Feed a message from the host; returns true when it answered one of our requests. */
  handle(message: HostToWebview): boolean {
    return this.channel.handle(message);
  }

  /** Fail every request still waiting, e.g. when everything is about to be fetched again. */
  cancelAll(reason: string): void {
    this.channel.rejectAll(reason);
  }

  /**
   * Ask for one of the webview's requests (`WebviewRequests`, derived from `LspMethods`);
   * aborting `signal` cancels it on the server.
   */
  request<N extends WebviewRequestName>(
    name: N,
    params: WebviewRequests[N]['params'],
    signal?: AbortSignal,
  ): Promise<WebviewRequests[N]['result']> {
    return this.channel.request(name, params, signal);
  }
}

/** The structured error behind a failed request (any thrown value becomes one). */
export function requestErrorOf(error: unknown): RequestError {
  if (error instanceof WebviewRequestError) return error.detail;
  if (error instanceof Error) return { message: error.message };
  return { message: String(error) };
}

export function isCancellation(error: unknown): boolean {
  return error instanceof WebviewRequestError && error.detail.cancelled === true;
}

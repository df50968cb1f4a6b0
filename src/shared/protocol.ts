/**
 * The message protocol between a LayerLens webview and the extension host: one tagged
 * union per direction, plus a request helper that matches replies by id.
 *
 * The webview never names a file: the extension knows which model the panel shows and
 * forwards each request to the server with that model's URI.
 */
import type { CompressionReport } from './compress';
import type { LoraExtraction, ModelDiff, PairDetail } from './diff';
import type { Histogram } from './model';
import type { LspMethods, LspResult, WebviewMethodName, WebviewParams } from './lsp';
import type { PlanAction, PlanView } from './plan';

/**
 * Requests a webview can make, by name: the methods of `LspMethods` declared for the
 * webview, with their parameters less what the extension supplies (the model's URI…).
 */
export type WebviewRequests = {
  [N in WebviewMethodName]: {
    params: WebviewParams<N>;
    result: LspResult<(typeof LspMethods)[N]>;
  };
};

export type WebviewRequestName = WebviewMethodName;

export type WebviewToHost =
  | { type: 'ready' }
  | {
      type: 'request';
      id: number;
      name: WebviewRequestName;
      params: WebviewRequests[WebviewRequestName]['params'];
    }
  | { type: 'cancel'; id: number }
  /** Compress these tensors (all of them when empty): the host asks for method and level. */
  | { type: 'compress'; indices: number[] }
  /** A button of the compression report shown in the panel. */
  | { type: 'reportAction'; action: ReportAction }
  /** A button of the plan panel (apply the plan shown, or hide it). */
  | { type: 'planAction'; action: PlanAction };

export type ReportAction = 'openOutput' | 'compareWithOriginal' | 'openReport' | 'dismiss';

export type HostToWebview =
  | { type: 'response'; id: number; result: unknown }
  | { type: 'response'; id: number; error: RequestError }
  /** The server restarted or the file changed on disk: everything shown must be fetched again. */
  | { type: 'reload'; reason: string }
  /** A compression of this model finished: show its report (null: hide the report). */
  | { type: 'compressionReport'; report: CompressionReport | null }
  /**
   * Select the tensor with this name and scroll its row into view (from a code lens); with
   * `inGraph`, also switch to the Graph tab and centre the node that reads it.
   */
  | ({ type: 'reveal' } & TensorReveal)
  /** A compression plan of this model to show (null: hide it). */
  | { type: 'plan'; view: PlanView | null };

/** The diff editor's webview to the extension. */
export type DiffPanelToHost =
  | { type: 'ready' }
  /**
   * The value histograms of a pair: A's tensor and B's (indices in each model); B's is
   * null where B stores the tensor as factors, whose values are not W's.
   */
  | { type: 'histograms'; indexA: number; indexB: number | null }
  /** The spectra, ΔW heatmap and fine-tune analysis of the pair of A's tensor `indexA` (layerlens/pairDetail). */
  | { type: 'pairDetail'; indexA: number }
  /** Extract LoRA…: the extension asks for the rank or energy and the folder, then extracts. */
  | { type: 'extractLora' }
  /** Show in graph: B's editor on its Graph tab with the structure diff against A as overlay. */
  | { type: 'showInGraph' };

/** The extension to the diff editor's webview. */
export type HostToDiffPanel =
  | { type: 'diff'; diff: ModelDiff }
  | { type: 'diffError'; message: string }
  | {
      type: 'histograms';
      indexA: number;
      a: Histogram | null;
      b: Histogram | null;
      error?: string;
    }
  | { type: 'pairDetail'; indexA: number; detail: PairDetail | null; error?: string }
  /** An adapter was written: its per-matrix errors. */
  | { type: 'lora'; extraction: LoraExtraction };

/**
 * What to show in the model editor: a tensor's table row, and with `inGraph` its graph node;
 * with `compareWith` (another model's URI), the Graph tab coloured by the structure diff
 * against that model ("Show in graph" of a comparison).
 */
export interface TensorReveal {
  readonly tensorName?: string;
  readonly inGraph?: boolean;
  readonly compareWith?: string;
}

export interface RequestError {
  readonly message: string;
  /** Set when the model file (or one of its data files) is at fault. */
  readonly file?: string;
  /** With `file`: what is wrong with it (the message without the file's path). */
  readonly problem?: string;
  readonly cancelled?: boolean;
}

export class WebviewRequestError extends Error {
  constructor(readonly detail: RequestError) {
    super(detail.message);
  }
}

/**
 * Client side of the request channel. `post` sends a message to the other side; feed every
 * incoming message to `handle`. Works in the webview (over `acquireVsCodeApi().postMessage`).
 */
export class RequestChannel {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (reason: WebviewRequestError) => void }
  >();

  constructor(private readonly post: (message: WebviewToHost) => void) {}

  request<N extends WebviewRequestName>(
    name: N,
    params: WebviewRequests[N]['params'],
    signal?: AbortSignal,
  ): Promise<WebviewRequests[N]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      signal?.addEventListener('abort', () => this.post({ type: 'cancel', id }), { once: true });
      this.post({ type: 'request', id, name, params });
    });
  }

  /** Returns true when the message was a response to one of this channel's requests. */
  handle(message: HostToWebview): boolean {
    if (message.type !== 'response') return false;
    const waiter = this.pending.get(message.id);
    if (!waiter) return false;
    this.pending.delete(message.id);
    if ('error' in message) waiter.reject(new WebviewRequestError(message.error));
    else waiter.resolve(message.result);
    return true;
  }

  /** Fails every request still waiting (e.g. before a reload). */
  rejectAll(reason: string): void {
    for (const [id, waiter] of this.pending) {
      waiter.reject(new WebviewRequestError({ message: reason, cancelled: true }));
      this.pending.delete(id);
    }
  }
}

/**
 * The LayerLens custom editor for model files. Read-only: it shows what the server
 * computes and relays the webview's requests, adding the model's URI to each.
 */
import * as vscode from 'vscode';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../shared/lsp';
import type {
  HostToWebview,
  RequestError,
  WebviewRequestName,
  WebviewRequests,
  WebviewToHost,
} from '../shared/protocol';
import type { LayerLensClient } from './client';
import { webviewHtml } from './webviewHtml';

export const MODEL_EDITOR_VIEW_TYPE = 'layerlens.modelEditor';

class ModelDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    private readonly onDispose: () => void,
  ) {}

  dispose(): void {
    this.onDispose();
  }
}

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider<ModelDocument> {
  static register(context: vscode.ExtensionContext, client: LayerLensClient): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(
      MODEL_EDITOR_VIEW_TYPE,
      new ModelEditorProvider(context, client),
      {
        supportsMultipleEditorsPerDocument: true,
        webviewOptions: { retainContextWhenHidden: false },
      },
    );
  }

  private constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly client: LayerLensClient,
  ) {}

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri, () => {
      if (this.client.state === 'running') {
        this.client.request(LspMethods.closeModel, { uri: uri.toString() }).catch(() => undefined);
      }
    });
  }

  resolveCustomEditor(document: ModelDocument, panel: vscode.WebviewPanel): void {
    const webview = panel.webview;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [
        vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview'),
        vscode.Uri.joinPath(this.context.extensionUri, 'media'),
      ],
    };
    webview.html = webviewHtml(webview, this.context.extensionUri);

    const session = new EditorSession(document.uri, webview, this.client);
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.joinPath(document.uri, '..'), '*'),
    );
    const reloadIfOurs = (changed: vscode.Uri) => {
      if (changed.toString() === document.uri.toString())
        session.reload('the file changed on disk');
    };
    const subscriptions = [
      webview.onDidReceiveMessage((message: WebviewToHost) => session.onMessage(message)),
      this.client.onDidRestart(() => session.reload('the LayerLens server restarted')),
      watcher,
      watcher.onDidChange(reloadIfOurs),
      watcher.onDidCreate(reloadIfOurs),
    ];
    panel.onDidDispose(() => {
      session.dispose();
      subscriptions.forEach((subscription) => subscription.dispose());
    });
  }
}

/** One webview's requests in flight, each cancellable by the webview. */
class EditorSession {
  private readonly inFlight = new Map<number, vscode.CancellationTokenSource>();

  constructor(
    private readonly uri: vscode.Uri,
    private readonly webview: vscode.Webview,
    private readonly client: LayerLensClient,
  ) {}

  onMessage(message: WebviewToHost): void {
    switch (message.type) {
      case 'ready':
        return;
      case 'cancel':
        this.inFlight.get(message.id)?.cancel();
        return;
      case 'request':
        void this.answer(message.id, message.name, message.params);
        return;
    }
  }

  reload(reason: string): void {
    this.cancelAll();
    this.post({ type: 'reload', reason });
  }

  dispose(): void {
    this.cancelAll();
  }

  private async answer<N extends WebviewRequestName>(
    id: number,
    name: N,
    params: WebviewRequests[N]['params'],
  ): Promise<void> {
    const cancellation = new vscode.CancellationTokenSource();
    this.inFlight.set(id, cancellation);
    try {
      const result = await this.forward(name, params, cancellation.token);
      this.post({ type: 'response', id, result });
    } catch (error) {
      this.post({ type: 'response', id, error: toRequestError(error, cancellation.token) });
    } finally {
      this.inFlight.delete(id);
      cancellation.dispose();
    }
  }

  private forward(
    name: WebviewRequestName,
    params: WebviewRequests[WebviewRequestName]['params'],
    token: vscode.CancellationToken,
  ): Promise<unknown> {
    const uri = this.uri.toString();
    switch (name) {
      case 'summary':
        return this.client.request(LspMethods.openModel, { uri }, token);
      case 'tensors': {
        const { offset, limit } = params as WebviewRequests['tensors']['params'];
        return this.client.request(LspMethods.tensors, { uri, offset, limit }, token);
      }
      case 'tensorStats': {
        const { indices } = params as WebviewRequests['tensorStats']['params'];
        return this.client.request(LspMethods.tensorStats, { uri, indices }, token);
      }
      case 'compressibility': {
        const { indices } = params as WebviewRequests['compressibility']['params'];
        return this.client.request(LspMethods.compressibility, { uri, indices }, token);
      }
      case 'deltaStats': {
        const { indices } = params as WebviewRequests['deltaStats']['params'];
        return this.client.request(LspMethods.deltaStats, { uri, indices }, token);
      }
    }
  }

  private cancelAll(): void {
    for (const cancellation of this.inFlight.values()) cancellation.cancel();
  }

  private post(message: HostToWebview): void {
    void this.webview.postMessage(message);
  }
}

function toRequestError(error: unknown, token: vscode.CancellationToken): RequestError {
  if (token.isCancellationRequested) return { message: 'cancelled', cancelled: true };
  const message = error instanceof Error ? error.message : String(error);
  const data = (error as { code?: number; data?: ModelErrorData }) ?? {};
  if (data.code === MODEL_ERROR_CODE && data.data)
    return { message, file: data.data.file, problem: data.data.problem };
  return { message };
}

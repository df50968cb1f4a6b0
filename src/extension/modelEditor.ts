/**
 * The LayerLens custom editor for model files. Read-only: it shows what the server
 * computes and relays the webview's requests, adding the model's URI to each.
 */
import * as vscode from 'vscode';
import type { CompressionReport } from '../shared/compress';
import type { PlanView } from '../shared/plan';
import { LspMethods } from '../shared/lsp';
import type { HostToWebview, ReportAction, TensorReveal, WebviewToHost } from '../shared/protocol';
import type { LayerLensClient } from './client';
import { ModelSession } from './modelSession';
import { sampleInputsParams } from './sampleInputsStore';
import { MODEL_EDITOR_VIEW_TYPE, MODEL_EDITOR_VIEW_TYPES } from './editorViewTypes';
import { webviewHtml } from './webviewHtml';

/** Every open editor: which model is in front, where reports go, where to reveal a tensor. */
const openSessions = new Set<EditorSession>();
/** The last compression report of each model (by URI), shown until the user closes it. */
const compressionReports = new Map<string, CompressionReport>();

/** The model of the LayerLens editor in front, if one is. */
export function activeModelEditorUri(): vscode.Uri | undefined {
  for (const session of openSessions) if (session.panel?.active) return session.uri;
  return undefined;
}

/**
 * Show a compression report in the editors of `uri` (and in any opened later, until
 * closed there). Returns whether an editor of that model is open.
 */
export function showCompressionReport(uri: vscode.Uri, report: CompressionReport): boolean {
  compressionReports.set(uri.toString(), report);
  let shown = false;
  for (const session of openSessions) {
    if (session.uri.toString() === uri.toString()) {
      session.showReport(report);
      shown = true;
    }
  }
  return shown;
}

/** The compression plan shown in each model's editors, by model URI. */
const planViews = new Map<string, PlanView>();

/** Show a plan (null: hide it) in the model's open editors; false when none is open. */
export function showPlanView(uri: vscode.Uri, view: PlanView | null): boolean {
  if (view) planViews.set(uri.toString(), view);
  else planViews.delete(uri.toString());
  let shown = false;
  for (const session of openSessions) {
    if (session.uri.toString() === uri.toString()) {
      session.post({ type: 'plan', view });
      shown = true;
    }
  }
  return shown;
}

/** Drop the report and plan kept for a model's editors (its last editor closed). */
function forgetReports(uri: vscode.Uri): void {
  compressionReports.delete(uri.toString());
  planViews.delete(uri.toString());
}

/** Tensors to reveal in an editor that is being opened and has no session yet. */
const pendingReveals = new Map<string, TensorReveal>();

/**
 * Opens the model in the LayerLens editor beside the active one and, with a tensor name,
 * selects that tensor's row and scrolls it into view (once the rows are there).
 */
export async function showModel(uri: vscode.Uri, reveal?: TensorReveal): Promise<void> {
  const key = uri.toString();
  if (reveal !== undefined) pendingReveals.set(key, reveal);
  await vscode.commands.executeCommand('vscode.openWith', uri, MODEL_EDITOR_VIEW_TYPE, {
    viewColumn: vscode.ViewColumn.Beside,
  });
  if (reveal === undefined) return;
  const sessions = [...openSessions].filter((session) => session.uri.toString() === key);
  if (sessions.length > 0) {
    pendingReveals.delete(key);
    for (const session of sessions) session.reveal(reveal);
  }
}

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
  /** One provider serves every view type of the editor (the main one and the `*.bin` one). */
  static register(context: vscode.ExtensionContext, client: LayerLensClient): vscode.Disposable {
    const provider = new ModelEditorProvider(context, client);
    return vscode.Disposable.from(
      ...MODEL_EDITOR_VIEW_TYPES.map((viewType) =>
        vscode.window.registerCustomEditorProvider(viewType, provider, {
          supportsMultipleEditorsPerDocument: true,
          webviewOptions: { retainContextWhenHidden: false },
        }),
      ),
    );
  }

  private constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly client: LayerLensClient,
  ) {}

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri, () => {
      // Every editor of the model closed: its report and plan do not come back with the
      // next one (they are files beside the model, and the commands show them again).
      forgetReports(uri);
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

    const session = new EditorSession(document.uri, webview, this.client, panel);
    openSessions.add(session);
    const key = document.uri.toString();
    const pendingReveal = pendingReveals.get(key);
    if (pendingReveal !== undefined) {
      pendingReveals.delete(key);
      session.reveal(pendingReveal);
    }
    const subscriptions = [
      // Hidden, the webview's page is discarded (no retained context); shown again, it
      // starts over and says 'ready' again.
      panel.onDidChangeViewState(() => {
        if (!panel.visible) session.hidden();
      }),
      webview.onDidReceiveMessage((message: WebviewToHost) => session.onMessage(message)),
      this.client.onDidRestart(() => session.reload('the LayerLens server restarted')),
    ];
    panel.onDidDispose(() => {
      openSessions.delete(session);
      session.dispose();
      subscriptions.forEach((subscription) => subscription.dispose());
    });
  }
}

/** One webview: its requests (a ModelSession), reports, plans and revealed tensors. */
class EditorSession {
  private readonly requests: ModelSession;
  /** Whether the webview's script runs (it said 'ready'); messages before that are lost. */
  private webviewReady = false;
  private revealOnReady: TensorReveal | undefined;

  constructor(
    readonly uri: vscode.Uri,
    private readonly webview: vscode.Webview,
    client: LayerLensClient,
    readonly panel?: vscode.WebviewPanel,
  ) {
    this.requests = new ModelSession({
      uri: uri.toString(),
      post: (message) => this.post(message),
      sendRequest: (method, params, signal) => {
        const cancellation = new vscode.CancellationTokenSource();
        signal.addEventListener('abort', () => cancellation.cancel(), { once: true });
        return client
          .request(method, params, cancellation.token)
          .finally(() => cancellation.dispose());
      },
      sampleInputs: () => sampleInputsParams(uri),
      watchModelFile: (onChange) => watchFile(uri, onChange),
    });
  }

  showReport(report: CompressionReport): void {
    this.post({ type: 'compressionReport', report });
  }

  onMessage(message: WebviewToHost): void {
    if (this.requests.onMessage(message)) return;
    switch (message.type) {
      case 'ready': {
        this.webviewReady = true;
        if (this.revealOnReady !== undefined) this.post({ type: 'reveal', ...this.revealOnReady });
        this.revealOnReady = undefined;
        const report = compressionReports.get(this.uri.toString());
        if (report) this.showReport(report);
        const plan = planViews.get(this.uri.toString());
        if (plan) this.post({ type: 'plan', view: plan });
        return;
      }
      case 'planAction':
        if (message.action === 'apply')
          void vscode.commands.executeCommand('layerlens.applyPlan', this.uri);
        else showPlanView(this.uri, null);
        return;
      case 'compress':
        void vscode.commands.executeCommand('layerlens.compress', this.uri, message.indices);
        return;
      case 'reportAction':
        void this.onReportAction(message.action);
        return;
    }
  }

  private async onReportAction(action: ReportAction): Promise<void> {
    const key = this.uri.toString();
    const report = compressionReports.get(key);
    if (!report) return;
    if (action === 'dismiss') {
      compressionReports.delete(key);
      for (const session of openSessions) {
        if (session !== this && session.uri.toString() === key)
          session.post({ type: 'compressionReport', report: null });
      }
    } else if (action === 'compareWithOriginal') {
      await vscode.commands.executeCommand('layerlens.compareModels', undefined, [
        vscode.Uri.file(report.source),
        vscode.Uri.file(report.output),
      ]);
    } else if (action === 'openOutput') {
      await vscode.commands.executeCommand(
        'vscode.openWith',
        vscode.Uri.file(report.output),
        MODEL_EDITOR_VIEW_TYPE,
      );
    } else {
      await vscode.window.showTextDocument(vscode.Uri.file(report.reportPath), { preview: true });
    }
  }

  /** The page was discarded: messages wait for its next 'ready'. */
  hidden(): void {
    this.webviewReady = false;
  }

  /** Select and scroll to a tensor's row, or its graph node (now, or once the webview is ready). */
  reveal(reveal: TensorReveal): void {
    if (this.webviewReady) this.post({ type: 'reveal', ...reveal });
    else this.revealOnReady = reveal;
  }

  reload(reason: string): void {
    this.requests.reload(reason);
  }

  dispose(): void {
    this.requests.dispose();
  }

  post(message: HostToWebview): void {
    void this.webview.postMessage(message);
  }
}

/** Calls `onChange` when the file at `uri` changes or is created on disk. */
function watchFile(uri: vscode.Uri, onChange: () => void): vscode.Disposable {
  const watcher = vscode.workspace.createFileSystemWatcher(
    new vscode.RelativePattern(vscode.Uri.joinPath(uri, '..'), '*'),
  );
  const ifOurs = (changed: vscode.Uri) => {
    if (changed.toString() === uri.toString()) onChange();
  };
  return vscode.Disposable.from(watcher, watcher.onDidChange(ifOurs), watcher.onDidCreate(ifOurs));
}

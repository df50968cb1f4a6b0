/**
 * The diff editor: a webview panel comparing two model files (layerlens/diff), opened by
 * "Compare in LayerLens" (two files selected in the explorer), "Compare with…" (from a
 * model's editor) and a compression report's "Compare with original". Its webview asks
 * for the histograms of a selected pair, which the panel answers from layerlens/tensorStats,
 * and for its spectra, ΔW heatmap and fine-tune analysis (layerlens/pairDetail; a newer
 * selection cancels the one before). "Show in graph" opens B's editor with the structure
 * diff against A on its graph.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LoraExtraction } from '../shared/diff';
import { LspMethods } from '../shared/lsp';
import { isStatsError } from '../shared/model';
import type { DiffPanelToHost, HostToDiffPanel } from '../shared/protocol';
import type { LayerLensClient } from './client';
import { modelFilters } from './modelFiles';
import { activeModelEditorUri, showModel } from './modelEditor';
import { webviewHtml } from './webviewHtml';

export const DIFF_VIEW_TYPE = 'layerlens.diff';

let extensionUri: vscode.Uri | undefined;

/** Remember where the extension's bundles are (called once on activation). */
export function initDiffPanels(context: vscode.ExtensionContext): void {
  extensionUri = context.extensionUri;
}

/** Open a diff editor comparing `a` (before) with `b` (after). */
export function openDiffPanel(client: LayerLensClient, a: vscode.Uri, b: vscode.Uri): void {
  if (!extensionUri) throw new Error('LayerLens is not activated');
  const root = extensionUri;
  const panel = vscode.window.createWebviewPanel(
    DIFF_VIEW_TYPE,
    `${path.basename(a.fsPath)} ↔ ${path.basename(b.fsPath)}`,
    vscode.ViewColumn.Active,
    {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [
        vscode.Uri.joinPath(root, 'dist', 'webview'),
        vscode.Uri.joinPath(root, 'media'),
      ],
    },
  );
  const post = (message: HostToDiffPanel) => void panel.webview.postMessage(message);
  const cancel = new vscode.CancellationTokenSource();
  let detailCancel: vscode.CancellationTokenSource | undefined;
  panel.onDidDispose(() => {
    cancel.cancel();
    detailCancel?.cancel();
  });
  const stats = async (uri: vscode.Uri, index: number) => {
    const [result] = await client.request(LspMethods.tensorStats, {
      uri: uri.toString(),
      indices: [index],
    });
    if (!result || isStatsError(result)) throw new Error(result?.error ?? 'no statistics');
    return result.histogram;
  };
  panel.webview.onDidReceiveMessage(async (message: DiffPanelToHost) => {
    if (message.type === 'ready') {
      try {
        const diff = await client.request(
          LspMethods.diff,
          { uri: a.toString(), other: b.toString() },
          cancel.token,
        );
        post({ type: 'diff', diff });
      } catch (error) {
        post({
          type: 'diffError',
          message: error instanceof Error ? error.message : String(error),
        });
      }
    } else if (message.type === 'pairDetail') {
      detailCancel?.cancel();
      const source = new vscode.CancellationTokenSource();
      detailCancel = source;
      const { indexA } = message;
      try {
        const detail = await client.request(
          LspMethods.pairDetail,
          { uri: a.toString(), other: b.toString(), indexA },
          source.token,
        );
        post({ type: 'pairDetail', indexA, detail });
      } catch (error) {
        if (source.token.isCancellationRequested) return;
        const text = error instanceof Error ? error.message : String(error);
        post({ type: 'pairDetail', indexA, detail: null, error: text });
      } finally {
        source.dispose();
      }
    } else if (message.type === 'showInGraph') {
      await showModel(b, { compareWith: a.toString() });
    } else if (message.type === 'extractLora') {
      const extraction = await vscode.commands.executeCommand<LoraExtraction | undefined>(
        'layerlens.extractLora',
        a,
        b,
      );
      if (extraction) post({ type: 'lora', extraction });
    } else if (message.type === 'histograms') {
      try {
        const { indexA, indexB } = message;
        const [ha, hb] = await Promise.all([
          stats(a, indexA),
          indexB === null ? null : stats(b, indexB),
        ]);
        post({ type: 'histograms', indexA: message.indexA, a: ha, b: hb });
      } catch (error) {
        post({
          type: 'histograms',
          indexA: message.indexA,
          a: null,
          b: null,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  });
  panel.webview.html = webviewHtml(panel.webview, root, 'diff.js');
}

/**
 * "Compare in LayerLens": the two model files selected in the explorer (`selected`), or the
 * clicked one and one picked in a dialog.
 */
export async function compareModelsCommand(
  client: LayerLensClient,
  clicked: unknown,
  selected: unknown,
): Promise<void> {
  const uris = Array.isArray(selected)
    ? selected.filter((u): u is vscode.Uri => u instanceof vscode.Uri)
    : [];
  if (uris.length === 2) {
    openDiffPanel(client, uris[0]!, uris[1]!);
    return;
  }
  const first = clicked instanceof vscode.Uri ? clicked : activeModelEditorUri();
  await compareWithCommand(client, first);
}

/**
 * "Compare with…": the model of the active editor (or `target`) against a file picked in a
 * dialog; a packed fine-tune delta (.llz) against its base model.
 */
export async function compareWithCommand(client: LayerLensClient, target: unknown): Promise<void> {
  const a = target instanceof vscode.Uri ? target : activeModelEditorUri();
  if (!a) {
    void vscode.window.showInformationMessage('LayerLens: open a model first, then Compare with…');
    return;
  }
  // A packed fine-tune delta compares with its base, the model it was packed against.
  const { deltaBase } = await client.request(LspMethods.openModel, { uri: a.toString() });
  if (deltaBase) {
    openDiffPanel(client, vscode.Uri.file(deltaBase), a);
    return;
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: modelFilters(),
    defaultUri: vscode.Uri.joinPath(a, '..'),
    openLabel: `Compare with ${path.basename(a.fsPath)}`,
  });
  if (picked?.[0]) openDiffPanel(client, a, picked[0]);
}

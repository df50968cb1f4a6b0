/**
 * LayerLens: Compress… — from the command palette, the explorer's context menu (a whole
 * model), the editor's Compress button, or the editor's row context menu (the selected
 * tensors). Asks for a method and a level, runs the job in the server with a cancellable
 * notification, then shows the report in the model's editor.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { verdictText, type CompressionOptions, type CompressionReport } from '../shared/compress';
import { describeOptions, verdictLine } from '../shared/compressText';
import { formatSizeChange } from '../shared/format';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../shared/lsp';
import type { ModelSummary } from '../shared/model';
import type { LayerLensClient } from './client';
import {
  isIndexList,
  isRowContext,
  levelChoices,
  methodChoices,
  weightBits,
  tensorsOfRowContext,
  type LevelChoice,
} from './compressChoices';
import { MODEL_EDITOR_VIEW_TYPE } from './editorViewTypes';
import { activeModelEditorUri, showCompressionReport } from './modelEditor';
import { sampleInputsParams } from './sampleInputsStore';
import { isModelFile, modelFilters } from './modelFiles';

/** The model and tensors the command was invoked on; asks for a file when nothing says. */
async function resolveTarget(
  target: unknown,
  indices: unknown,
): Promise<{ uri: vscode.Uri; tensors: number[] } | undefined> {
  if (target instanceof vscode.Uri) {
    // From the explorer the second argument is the list of selected files, not indices.
    return { uri: target, tensors: isIndexList(indices) ? [...indices] : [] };
  }
  if (isRowContext(target)) {
    const uri = activeModelEditorUri();
    if (!uri) throw new Error('No LayerLens editor is active to compress from.');
    return { uri, tensors: tensorsOfRowContext(target) };
  }
  const active = activeModelEditorUri();
  if (active) return { uri: active, tensors: [] };
  const editorUri = vscode.window.activeTextEditor?.document.uri;
  if (editorUri && isModelFile(editorUri, true)) return { uri: editorUri, tensors: [] };
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: modelFilters(true),
    openLabel: 'Compress',
    title: 'LayerLens: choose a model to compress',
  });
  return picked?.[0] ? { uri: picked[0], tensors: [] } : undefined;
}

/** Method, then level (a custom value through an input box); undefined when dismissed. */
async function pickOptions(
  summary: ModelSummary,
  title: string,
): Promise<CompressionOptions | undefined> {
  const bits = weightBits(summary);
  const method = await vscode.window.showQuickPick(
    methodChoices(summary.capabilities?.compress, summary.capabilities, bits).map((choice) => ({
      ...choice,
      label: choice.label,
    })),
    // Focus may come back to the model's webview just after a context menu or the palette
    // closes; the picks must not close with it.
    { title, placeHolder: 'Compression method', matchOnDetail: true, ignoreFocusOut: true },
  );
  if (!method) return undefined;
  const levels = levelChoices(method.method, summary.capabilities, bits);
  let level: LevelChoice | undefined = levels[0];
  if (levels.length > 1) {
    level = await vscode.window.showQuickPick(levels, {
      title: `${title}: ${method.label}`,
      placeHolder: 'Level',
      ignoreFocusOut: true,
    });
  }
  if (!level) return undefined;
  if (level.options) return level.options;
  const custom = level.custom!;
  const text = await vscode.window.showInputBox({
    title: `${title}: ${method.label}`,
    prompt: custom.prompt,
    placeHolder: custom.placeholder,
    ignoreFocusOut: true,
    validateInput: (value) => {
      const parsed = custom.parse(value);
      return typeof parsed === 'string' ? parsed : undefined;
    },
  });
  if (text === undefined) return undefined;
  const parsed = custom.parse(text);
  return typeof parsed === 'string' ? undefined : parsed;
}

function failureMessage(fileName: string, error: unknown): string {
  const { code, data, message } = (error ?? {}) as {
    code?: number;
    data?: ModelErrorData;
    message?: string;
  };
  if (code === MODEL_ERROR_CODE && data) {
    return `LayerLens could not compress ${fileName}: ${data.problem} (${data.file})`;
  }
  return `LayerLens could not compress ${fileName}: ${message ?? String(error)}`;
}

async function announce(uri: vscode.Uri, report: CompressionReport): Promise<void> {
  if (!showCompressionReport(uri, report)) {
    await vscode.commands.executeCommand('vscode.openWith', uri, MODEL_EDITOR_VIEW_TYPE);
  }
  const compressed = report.tensors.filter((tensor) => !tensor.skipped).length;
  const wrote = `Wrote ${path.basename(report.output)}: ${formatSizeChange(report.fileBytesBefore, report.fileBytesAfter)}, ${compressed} tensor${compressed === 1 ? '' : 's'} compressed`;
  const choice = await (report.verdict.validated
    ? vscode.window.showInformationMessage(
        `${wrote}; validated.`,
        'Open new model',
        'Show report JSON',
      )
    : vscode.window.showWarningMessage(
        `${wrote}; ${verdictLine(report.verdict)}.`,
        'Open new model',
        'Show report JSON',
      ));
  if (choice === 'Open new model') {
    await vscode.commands.executeCommand(
      'vscode.openWith',
      vscode.Uri.file(report.output),
      MODEL_EDITOR_VIEW_TYPE,
    );
  } else if (choice === 'Show report JSON') {
    await vscode.window.showTextDocument(vscode.Uri.file(report.reportPath));
  }
}

export async function compressCommand(
  client: LayerLensClient,
  target?: unknown,
  indices?: unknown,
): Promise<void> {
  const resolved = await resolveTarget(target, indices);
  if (!resolved) return;
  const { uri, tensors } = resolved;
  client.output.info(
    `Compress… on ${uri.fsPath} (${tensors.length === 0 ? 'whole model' : `tensors ${tensors.join(', ')}`})`,
  );
  const fileName = path.basename(uri.fsPath);
  let summary;
  try {
    summary = await client.request(LspMethods.openModel, { uri: uri.toString() });
  } catch (error) {
    client.output.error(failureMessage(fileName, error));
    void vscode.window.showErrorMessage(failureMessage(fileName, error));
    return;
  }
  const what =
    tensors.length === 0
      ? 'whole model'
      : tensors.length === 1
        ? '1 tensor'
        : `${tensors.length} tensors`;
  if (summary.capabilities && summary.capabilities.compress.length === 0) {
    void vscode.window.showErrorMessage(
      `${fileName}: ${summary.capabilities.readOnly ?? `LayerLens cannot write ${summary.format} files`}.`,
    );
    return;
  }
  const options = await pickOptions(summary, `Compress ${fileName} (${what})`);
  if (!options) return;

  let cancelled = false;
  let report: CompressionReport;
  try {
    report = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LayerLens: compressing ${fileName} (${describeOptions(options)})`,
        cancellable: true,
      },
      (_progress, token) => {
        token.onCancellationRequested(() => (cancelled = true));
        return client.request(
          LspMethods.compress,
          { uri: uri.toString(), request: { tensors, options }, ...sampleInputsParams(uri) },
          token,
        );
      },
    );
  } catch (error) {
    client.output.warn(
      cancelled ? `Compression of ${fileName} cancelled` : failureMessage(fileName, error),
    );
    if (cancelled) {
      void vscode.window.showInformationMessage(
        `Compression of ${fileName} cancelled; no file was written.`,
      );
    } else {
      void vscode.window.showErrorMessage(failureMessage(fileName, error));
    }
    return;
  }
  client.output.info(
    `Compressed ${fileName} into ${report.output} (${describeOptions(options)}) in ${report.elapsedMs} ms: ${verdictText(report.verdict)}`,
  );
  await announce(uri, report);
}

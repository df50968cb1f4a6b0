/**
 * Pack and unpack commands: a model file becomes `<file>.llz` (optionally as an XOR delta of
 * a base model) and back, in the server, with cancellable progress in a notification.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatBytes } from '../shared/format';
import { LspMethods } from '../shared/lsp';
import type { LayerLensClient } from './client';
import { isModelEditorViewType, MODEL_EDITOR_VIEW_TYPE } from './editorViewTypes';
import { modelFilters, PACKED_MODEL_EXTENSIONS, UNPACKED_MODEL_EXTENSIONS } from './modelFiles';

async function pickFile(
  resource: unknown,
  openLabel: string,
  extensions: readonly string[],
): Promise<vscode.Uri | undefined> {
  if (resource instanceof vscode.Uri) return resource;
  // From the palette: the model shown in the active LayerLens editor, when it fits.
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (
    input instanceof vscode.TabInputCustom &&
    isModelEditorViewType(input.viewType) &&
    extensions.some((extension) => input.uri.path.toLowerCase().endsWith(`.${extension}`))
  ) {
    return input.uri;
  }
  const active = vscode.window.activeTextEditor?.document.uri;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    defaultUri: active,
    filters: { Models: [...extensions] },
    openLabel,
  });
  return picked?.[0];
}

/** Run a server job with a cancellable notification that shows the server's percentage. */
export async function withServerProgress<T>(
  client: LayerLensClient,
  title: string,
  job: (workDoneToken: string, token: vscode.CancellationToken) => Promise<T>,
): Promise<T> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, token) => {
      const workDoneToken = randomUUID();
      let last = 0;
      const subscription = client.onWorkDoneProgress(workDoneToken, (value) => {
        if (value.kind !== 'report' || value.percentage === undefined) return;
        progress.report({ increment: value.percentage - last, message: `${value.percentage}%` });
        last = value.percentage;
      });
      try {
        return await job(workDoneToken, token);
      } finally {
        subscription.dispose();
      }
    },
  );
}

async function offerToOpen(message: string, file: string): Promise<void> {
  const choice = await vscode.window.showInformationMessage(message, 'Open in LayerLens');
  if (choice) {
    await vscode.commands.executeCommand(
      'vscode.openWith',
      vscode.Uri.file(file),
      MODEL_EDITOR_VIEW_TYPE,
    );
  }
}

export async function packCommand(
  client: LayerLensClient,
  resource: unknown,
  asDelta: boolean,
): Promise<void> {
  const uri = await pickFile(resource, 'Pack Losslessly', UNPACKED_MODEL_EXTENSIONS);
  if (!uri) return;
  let baseUri: vscode.Uri | undefined;
  if (asDelta) {
    baseUri = (
      await vscode.window.showOpenDialog({
        canSelectMany: false,
        defaultUri: vscode.Uri.file(path.dirname(uri.fsPath)),
        filters: modelFilters(true),
        openLabel: 'Use as Base Model',
        title: `Base model of ${path.basename(uri.fsPath)}`,
      })
    )?.[0];
    if (!baseUri) return;
  }
  const result = await withServerProgress(
    client,
    `LayerLens: packing ${path.basename(uri.fsPath)}`,
    (workDoneToken, token) =>
      client.request(
        LspMethods.pack,
        { uri: uri.toString(), ...(baseUri ? { baseUri: baseUri.toString() } : {}), workDoneToken },
        token,
      ),
  );
  const ratio = (result.packedBytes / Math.max(1, result.originalBytes)).toFixed(3);
  const delta = baseUri ? `, ${result.deltaTensors} tensors as deltas` : '';
  await offerToOpen(
    `Packed ${path.basename(uri.fsPath)}: ${formatBytes(result.originalBytes)} → ${formatBytes(result.packedBytes)} (ratio ${ratio}${delta}) in ${path.basename(result.out)}.`,
    result.out,
  );
}

function isMissingBase(error: unknown): boolean {
  return error instanceof Error && /base model .* is missing/.test(error.message);
}

export async function unpackCommand(client: LayerLensClient, resource: unknown): Promise<void> {
  const uri = await pickFile(resource, 'Unpack', PACKED_MODEL_EXTENSIONS);
  if (!uri) return;
  const run = (baseUri?: vscode.Uri) =>
    withServerProgress(
      client,
      `LayerLens: unpacking ${path.basename(uri.fsPath)}`,
      (workDoneToken, token) =>
        client.request(
          LspMethods.unpack,
          {
            uri: uri.toString(),
            ...(baseUri ? { baseUri: baseUri.toString() } : {}),
            workDoneToken,
          },
          token,
        ),
    );
  let result;
  try {
    result = await run();
  } catch (error) {
    if (!isMissingBase(error)) throw error;
    // A delta whose base is not where it was: ask for it once.
    const base = (
      await vscode.window.showOpenDialog({
        canSelectMany: false,
        filters: modelFilters(true),
        openLabel: 'Use as Base Model',
        title: `${path.basename(uri.fsPath)} is a delta: where is its base model?`,
      })
    )?.[0];
    if (!base) return;
    result = await run(base);
  }
  await offerToOpen(
    `Unpacked ${path.basename(result.out)} (${formatBytes(result.bytes)}, checksums verified).`,
    result.out,
  );
}

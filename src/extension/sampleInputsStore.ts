/**
 * The sample-input folder chosen for each model file (LayerLens: Choose Sample Inputs…),
 * kept in the workspace state, and the request field that carries it to the server.
 */
import type * as vscode from 'vscode';
import type { SampleInputsParams } from '../shared/lsp';

/** Workspace-state key: model URI → absolute folder path. */
export const SAMPLE_INPUTS_STATE_KEY = 'layerlens.sampleInputs';

let memento: vscode.Memento | undefined;

/** Called once at activation with the extension's workspace state. */
export function initSampleInputs(state: vscode.Memento): void {
  memento = state;
}

function folders(): Record<string, string> {
  return memento?.get<Record<string, string>>(SAMPLE_INPUTS_STATE_KEY) ?? {};
}

/** The folder chosen for this model, if any. */
export function sampleInputsFolder(uri: vscode.Uri): string | undefined {
  return folders()[uri.toString()];
}

/** The request field that carries the chosen folder to the server (nothing when none). */
export function sampleInputsParams(uri: vscode.Uri): SampleInputsParams {
  const folder = sampleInputsFolder(uri);
  return folder ? { inputsFolder: folder } : {};
}

export async function remember(uri: vscode.Uri, folder: string | undefined): Promise<void> {
  const next = { ...folders() };
  if (folder) next[uri.toString()] = folder;
  else delete next[uri.toString()];
  await memento?.update(SAMPLE_INPUTS_STATE_KEY, next);
}

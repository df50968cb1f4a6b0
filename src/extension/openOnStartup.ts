/**
 * `layerlens.openOnStartup`: a workspace that names a model file (the example workspace
 * `npm start` opens does) shows it in the LayerLens editor when it opens, instead of a
 * Welcome page. The extension activates for workspaces holding model files
 * (`workspaceContains` in package.json).
 */
import * as vscode from 'vscode';
import { MODEL_EDITOR_VIEW_TYPE } from './editorViewTypes';
import { readSettings } from './settings';

/** Opens each workspace folder's `layerlens.openOnStartup` model in the LayerLens editor. */
export function openOnStartup(output: vscode.LogOutputChannel): void {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const file = readSettings(folder.uri).openOnStartup.trim();
    if (!file) continue;
    const uri = vscode.Uri.joinPath(folder.uri, file);
    void vscode.commands
      .executeCommand('vscode.openWith', uri, MODEL_EDITOR_VIEW_TYPE)
      .then(undefined, (error: unknown) =>
        output.error(`layerlens.openOnStartup: cannot open ${uri.fsPath}: ${String(error)}`),
      );
  }
}

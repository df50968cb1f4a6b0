/**
 * LayerLens: Choose Sample Inputs… — a folder of sample inputs (arrays named after the
 * model's inputs, images, WAV audio) for one model file, remembered per model in the
 * workspace state. Compress, plan, apply and sensitivity requests for that model send it
 * as `inputsFolder`, which the server uses instead of `layerlens.validation.inputsFolder`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activeModelEditorUri } from './modelEditor';
import { remember, sampleInputsFolder } from './sampleInputsStore';

async function modelUri(target: unknown): Promise<vscode.Uri | undefined> {
  if (target instanceof vscode.Uri) return target;
  const active = activeModelEditorUri();
  if (active) return active;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: { Models: ['onnx'] },
    openLabel: 'Choose Model',
    title: 'LayerLens: choose the model to give sample inputs to',
  });
  return picked?.[0];
}

export async function chooseSampleInputsCommand(target?: unknown): Promise<void> {
  const uri = await modelUri(target);
  if (!uri) return;
  const fileName = path.basename(uri.fsPath);
  if (path.extname(uri.fsPath).toLowerCase() !== '.onnx') {
    void vscode.window.showInformationMessage(
      `LayerLens: ${fileName} has no graph to run; only ONNX models are validated on sample inputs.`,
    );
    return;
  }
  const current = sampleInputsFolder(uri);
  if (current) {
    const choice = await vscode.window.showQuickPick(
      [
        { label: 'Choose another folder…', detail: `now: ${current}`, clear: false },
        {
          label: 'Forget this folder',
          detail: 'Use layerlens.validation.inputsFolder (or generated inputs) again',
          clear: true,
        },
      ],
      { title: `LayerLens: sample inputs for ${fileName}`, ignoreFocusOut: true },
    );
    if (!choice) return;
    if (choice.clear) {
      await remember(uri, undefined);
      void vscode.window.showInformationMessage(
        `LayerLens: ${fileName} is validated on the sample inputs of the settings again.`,
      );
      return;
    }
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    defaultUri: current ? vscode.Uri.file(current) : vscode.Uri.file(path.dirname(uri.fsPath)),
    openLabel: 'Use as Sample Inputs',
    title: `LayerLens: a folder of sample inputs for ${fileName} (<input>.npy/.json/.npz, PNG/JPEG images, WAV audio)`,
  });
  const folder = picked?.[0];
  if (!folder) return;
  await remember(uri, folder.fsPath);
  void vscode.window.showInformationMessage(
    `LayerLens: compressing, planning and measuring ${fileName} now use the sample inputs in ${folder.fsPath}.`,
  );
}

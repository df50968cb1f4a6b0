/**
 * Extract LoRA… (from the Compare panel of a base and its fine-tune, or the command
 * layerlens.extractLora with the two models' URIs): asks for a rank or an energy share and
 * an output folder, extracts the adapter on the server (layerlens/extractLora, cancellable,
 * with its progress) and answers the extraction, whose per-matrix errors the panel shows.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LoraExtraction } from '../shared/diff';
import { LspMethods } from '../shared/lsp';
import type { LayerLensClient } from './client';
import { parseLoraChoice, type LoraChoice } from './loraChoice';
import { withServerProgress } from './losslessCommands';

/** Ask, extract and answer the extraction; undefined when cancelled or refused (the error shown). */
export async function extractLoraCommand(
  client: LayerLensClient,
  base: unknown,
  tuned: unknown,
): Promise<LoraExtraction | undefined> {
  if (!(base instanceof vscode.Uri) || !(tuned instanceof vscode.Uri)) {
    void vscode.window.showInformationMessage(
      'LayerLens: Extract LoRA… runs from the Compare panel of a base model and its fine-tune.',
    );
    return undefined;
  }
  const tunedName = path.basename(tuned.fsPath);
  const typed = await vscode.window.showInputBox({
    title: `Extract LoRA: ${path.basename(base.fsPath)} → ${tunedName}`,
    prompt: 'Rank of every matrix (16), or the share of each update’s energy to keep (0.9 or 90%)',
    value: '16',
    validateInput: (text) => {
      const choice = parseLoraChoice(text);
      return typeof choice === 'string' ? choice : null;
    },
  });
  if (typed === undefined) return undefined;
  const choice = parseLoraChoice(typed) as LoraChoice;
  const stem = tunedName.replace(/\.[^.]+$/, '');
  const folder = await vscode.window.showSaveDialog({
    title: 'Folder for adapter_model.safetensors and adapter_config.json',
    defaultUri: vscode.Uri.joinPath(tuned, '..', `${stem}-lora`),
    saveLabel: 'Extract here',
  });
  if (!folder) return undefined;
  try {
    return await withServerProgress(
      client,
      `LayerLens: extracting a LoRA of ${tunedName}`,
      (workDoneToken, token) =>
        client.request(
          LspMethods.extractLora,
          {
            uri: base.toString(),
            other: tuned.toString(),
            outUri: folder.toString(),
            ...choice,
            workDoneToken,
          },
          token,
        ),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    void vscode.window.showErrorMessage(`LayerLens: no LoRA extracted: ${message}`);
    return undefined;
  }
}

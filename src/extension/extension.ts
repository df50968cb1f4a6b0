/** Activation only wires the features together; each one registers its own disposables. */
import * as vscode from 'vscode';
import { LayerLensClient } from './client';
import { registerCommands } from './commands';
import { initDiffPanels } from './diffPanel';
import { ModelEditorProvider } from './modelEditor';
import { openOnStartup } from './openOnStartup';
import { initSampleInputs } from './sampleInputsStore';
import { registerStatusBar } from './statusBar';

let client: LayerLensClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  initSampleInputs(context.workspaceState);
  initDiffPanels(context);
  const output = vscode.window.createOutputChannel('LayerLens', { log: true });
  client = new LayerLensClient(context, output);
  context.subscriptions.push(
    output,
    registerStatusBar(client),
    registerCommands(client),
    ModelEditorProvider.register(context, client),
  );
  client.start().catch((error: unknown) => {
    output.error(`The LayerLens server failed to start: ${String(error)}`);
  });
  openOnStartup(output);
}

export async function deactivate(): Promise<void> {
  await client?.dispose();
  client = undefined;
}

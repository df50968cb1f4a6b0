/**
 * Every LayerLens command in one table. A command that needs the server says so; when
 * the server is down it offers to restart it instead of failing silently.
 */
import * as vscode from 'vscode';
import type { LayerLensClient } from './client';
import { compressCommand } from './compressCommand';
import { compareModelsCommand, compareWithCommand } from './diffPanel';
import { extractLoraCommand } from './extractLoraCommand';
import { MODEL_EDITOR_VIEW_TYPE } from './editorViewTypes';
import { isRowContext } from './compressChoices';
import { activeModelEditorUri, showModel } from './modelEditor';
import { packCommand, unpackCommand } from './losslessCommands';
import { applyPlanCommand, planCommand } from './planCommand';
import { chooseSampleInputsCommand } from './sampleInputs';
import { modelFilters } from './modelFiles';

interface CommandSpec {
  readonly id: string;
  readonly needsServer: boolean;
  run(client: LayerLensClient, ...args: unknown[]): unknown;
}

const COMMANDS: readonly CommandSpec[] = [
  {
    id: 'layerlens.openModel',
    // The editor itself reports a server that is down, with the same offer to restart.
    needsServer: false,
    async run(_client, resource) {
      const uri =
        resource instanceof vscode.Uri
          ? resource
          : (
              await vscode.window.showOpenDialog({
                canSelectMany: false,
                filters: modelFilters(),
                openLabel: 'Open in LayerLens',
              })
            )?.[0];
      if (uri) await vscode.commands.executeCommand('vscode.openWith', uri, MODEL_EDITOR_VIEW_TYPE);
    },
  },
  {
    id: 'layerlens.restartServer',
    needsServer: false,
    run: (client) =>
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'Restarting the LayerLens server' },
        () => client.restart(),
      ),
  },
  {
    id: 'layerlens.showServerOutput',
    needsServer: false,
    run: (client) => client.output.show(true),
  },
  {
    id: 'layerlens.compress',
    needsServer: true,
    run: (client, target, indices) => compressCommand(client, target, indices),
  },
  {
    // From code lenses in Python scripts: (model URI, tensor name?).
    id: 'layerlens.showTensor',
    needsServer: false,
    run: (_client, resource, tensorName) => showTensor(resource, tensorName, false),
  },
  {
    // (model URI, tensor name), or a table row's context menu (the row's own tensor): the
    // Graph tab, centred on the node that reads the tensor.
    id: 'layerlens.revealInGraph',
    needsServer: false,
    run: (_client, resource, tensorName) =>
      isRowContext(resource)
        ? showTensor(activeModelEditorUri(), resource.tensorName, true)
        : showTensor(resource, tensorName, true),
  },
  {
    id: 'layerlens.pack',
    needsServer: true,
    run: (client, resource) => packCommand(client, resource, false),
  },
  {
    id: 'layerlens.packDelta',
    needsServer: true,
    run: (client, resource) => packCommand(client, resource, true),
  },
  {
    id: 'layerlens.unpack',
    needsServer: true,
    run: (client, resource) => unpackCommand(client, resource),
  },
  {
    id: 'layerlens.plan',
    needsServer: true,
    run: (client, resource) => planCommand(client, resource),
  },
  {
    id: 'layerlens.applyPlan',
    needsServer: true,
    run: (client, resource) => applyPlanCommand(client, resource),
  },
  {
    id: 'layerlens.compareModels',
    needsServer: true,
    run: (client, clicked, selected) => compareModelsCommand(client, clicked, selected),
  },
  {
    id: 'layerlens.compareWith',
    needsServer: true,
    run: (client, target) => compareWithCommand(client, target),
  },
  {
    id: 'layerlens.extractLora',
    needsServer: true,
    run: (client, base, tuned) => extractLoraCommand(client, base, tuned),
  },
  {
    id: 'layerlens.chooseSampleInputs',
    needsServer: false,
    run: (_client, resource) => chooseSampleInputsCommand(resource),
  },
];

async function showTensor(resource: unknown, tensorName: unknown, inGraph: boolean): Promise<void> {
  const uri =
    resource instanceof vscode.Uri
      ? resource
      : typeof resource === 'string'
        ? vscode.Uri.parse(resource)
        : undefined;
  if (!uri) throw new Error('Show in LayerLens needs a model file');
  if (inGraph && typeof tensorName !== 'string')
    throw new Error('Reveal in Graph needs the name of a tensor');
  await showModel(uri, typeof tensorName === 'string' ? { tensorName, inGraph } : undefined);
}

export function registerCommands(client: LayerLensClient): vscode.Disposable {
  return vscode.Disposable.from(
    ...COMMANDS.map((command) =>
      vscode.commands.registerCommand(command.id, async (...args: unknown[]): Promise<unknown> => {
        if (command.needsServer && client.state === 'stopped') {
          const choice = await vscode.window.showErrorMessage(
            'The LayerLens server is not running.',
            'Restart Server',
          );
          if (choice) await client.restart();
          return undefined;
        }
        try {
          // The result goes back to executeCommand (Extract LoRA… answers its extraction).
          return await command.run(client, ...args);
        } catch (error) {
          client.output.error(
            `${command.id}: ${error instanceof Error ? error.message : String(error)}`,
          );
          void vscode.window.showErrorMessage(
            `LayerLens: ${error instanceof Error ? error.message : String(error)}`,
          );
          return undefined;
        }
      }),
    ),
  );
}

export const COMMAND_IDS = COMMANDS.map((command) => command.id);

/**
 * The extension's part of the code lenses in Python scripts: which documents the server
 * sees, which file changes it hears about, and turning the model URIs on lens commands
 * (JSON strings) into `vscode.Uri`s for the commands that run them.
 */
import * as vscode from 'vscode';
import type { DocumentSelector, Middleware } from 'vscode-languageclient/node';
import { URI_ARGUMENT_COMMANDS } from '../shared/codeLens';

export const PYTHON_DOCUMENTS: DocumentSelector = [{ language: 'python', scheme: 'file' }];

/** Model files and scripts whose changes on disk refresh the lenses. */
export function watchModelFiles(context: vscode.ExtensionContext): vscode.FileSystemWatcher[] {
  const watchers = [
    vscode.workspace.createFileSystemWatcher('**/*.{onnx,safetensors,pt,pth,bin,py}'),
    vscode.workspace.createFileSystemWatcher('**/*.safetensors.index.json'),
  ];
  context.subscriptions.push(...watchers);
  return watchers;
}

function withUriArgument(command: vscode.Command | undefined): vscode.Command | undefined {
  if (!command || !URI_ARGUMENT_COMMANDS.includes(command.command)) return command;
  const [uri, ...rest] = command.arguments ?? [];
  if (typeof uri !== 'string') return command;
  return { ...command, arguments: [vscode.Uri.parse(uri), ...rest] };
}

function convertLens(lens: vscode.CodeLens): vscode.CodeLens {
  const command = withUriArgument(lens.command);
  if (command !== lens.command) lens.command = command;
  return lens;
}

export const pythonLensMiddleware: Middleware = {
  async provideCodeLenses(document, token, next) {
    const lenses = await next(document, token);
    return lenses?.map(convertLens);
  },
  async resolveCodeLens(lens, token, next) {
    const resolved = await next(lens, token);
    return resolved ? convertLens(resolved) : resolved;
  },
};

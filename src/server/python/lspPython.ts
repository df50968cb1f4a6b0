/**
 * The standard LSP side of the Python features: open-document sync, code lenses (with
 * resolve), hovers, workspace folders, and refreshing lenses when scripts or model files
 * change on disk.
 */
import { fileURLToPath } from 'node:url';
import {
  CodeLensRefreshRequest,
  FileChangeType,
  TextDocumentSyncKind,
  type Connection,
  type InitializeParams,
  type ServerCapabilities,
} from 'vscode-languageserver/node';
import type { ModelService } from '../modelService';
import { documentPath, PythonLenses, type EffectiveRankSource } from './pythonLenses';
import type { OpenScript } from './workspaceScripts';

/** Edits and file events arrive in bursts (a save writes several files): refresh once they settle. */
const REFRESH_DELAY_MS = 300;

export const PYTHON_CAPABILITIES: ServerCapabilities = {
  textDocumentSync: {
    openClose: true,
    change: TextDocumentSyncKind.Full,
  },
  codeLensProvider: { resolveProvider: true },
  hoverProvider: true,
  workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
};

function isPythonDocument(languageId: string, uri: string): boolean {
  return languageId === 'python' && documentPath(uri) !== null;
}

export class PythonFeatures {
  private readonly documents = new Map<string, OpenScript>();
  private lenses: PythonLenses;
  private refreshSupported = false;
  private foldersChangeSupported = false;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: Connection,
    models: ModelService,
    private readonly effectiveRank?: EffectiveRankSource,
  ) {
    this.lenses = this.createLenses(models);
    this.listen();
  }

  /** The client's capabilities and workspace folders, from its `initialize` request. */
  initialize(params: InitializeParams): void {
    this.refreshSupported = params.capabilities.workspace?.codeLens?.refreshSupport === true;
    this.foldersChangeSupported = params.capabilities.workspace?.workspaceFolders === true;
    const folders = params.workspaceFolders?.map((folder) => folder.uri) ?? [];
    if (folders.length === 0 && params.rootUri) folders.push(params.rootUri);
    this.lenses.scripts.setWorkspaceFolders(folderPaths(folders));
  }

  /** A new model service (a settings change replaced it): the lenses' caches start over. */
  useModels(models: ModelService): void {
    const folders = this.lenses.scripts.workspaceFolders;
    this.lenses = this.createLenses(models);
    this.lenses.scripts.setWorkspaceFolders(folders);
    this.scheduleRefresh();
  }

  private createLenses(models: ModelService): PythonLenses {
    return new PythonLenses(
      models,
      (message) => this.connection.console.warn(message),
      this.effectiveRank,
    );
  }

  private openScripts(): OpenScript[] {
    return [...this.documents.values()];
  }

  private listen(): void {
    const connection = this.connection;
    connection.onDidOpenTextDocument(({ textDocument }) => {
      if (!isPythonDocument(textDocument.languageId, textDocument.uri)) return;
      const path = documentPath(textDocument.uri)!;
      this.documents.set(textDocument.uri, { path, text: textDocument.text });
    });
    connection.onDidChangeTextDocument(({ textDocument, contentChanges }) => {
      const open = this.documents.get(textDocument.uri);
      const last = contentChanges.at(-1);
      // Full sync: every change carries the whole text.
      if (open && last && !('range' in last)) {
        this.documents.set(textDocument.uri, { path: open.path, text: last.text });
      }
    });
    connection.onDidCloseTextDocument(({ textDocument }) => {
      const open = this.documents.get(textDocument.uri);
      if (!open) return;
      this.documents.delete(textDocument.uri);
      this.lenses.scripts.closed(open.path);
    });
    connection.onCodeLens(async ({ textDocument }) => {
      const document = this.documents.get(textDocument.uri);
      if (!document) return [];
      try {
        return await this.lenses.codeLenses(document, this.openScripts());
      } catch (error) {
        this.report('code lenses', textDocument.uri, error);
        return [];
      }
    });
    connection.onCodeLensResolve((lens) => this.lenses.resolveCodeLens(lens));
    connection.onHover(async ({ textDocument, position }) => {
      const document = this.documents.get(textDocument.uri);
      if (!document) return null;
      try {
        return await this.lenses.hover(document, this.openScripts(), position);
      } catch (error) {
        this.report('a hover', textDocument.uri, error);
        return null;
      }
    });
    connection.onDidChangeWatchedFiles(({ changes }) => {
      for (const change of changes) {
        const path = documentPath(change.uri);
        if (path?.endsWith('.py')) {
          this.lenses.scripts.changedOnDisk(path, change.type !== FileChangeType.Changed);
        }
      }
      this.scheduleRefresh();
    });
    connection.onInitialized(() => {
      void this.lenses.scripts.warmUp();
      if (!this.foldersChangeSupported) return;
      connection.workspace.onDidChangeWorkspaceFolders(() => {
        void connection.workspace.getWorkspaceFolders().then((folders) => {
          this.lenses.scripts.setWorkspaceFolders(folderPaths((folders ?? []).map((f) => f.uri)));
          this.scheduleRefresh();
        });
      });
    });
  }

  /** Asks the client to request every visible lens again (models or scripts changed on disk). */
  private scheduleRefresh(): void {
    if (!this.refreshSupported) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
    }, REFRESH_DELAY_MS);
  }

  private report(what: string, uri: string, error: unknown): void {
    this.connection.console.error(
      `LayerLens could not compute ${what} for ${uri}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  }
}

function folderPaths(uris: readonly string[]): string[] {
  return uris.filter((uri) => uri.startsWith('file:')).map((uri) => fileURLToPath(uri));
}

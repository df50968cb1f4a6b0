/**
 * Starts the LayerLens server process and keeps it running: a crashed server is
 * restarted, and listeners (open editors) are told so they fetch their data again.
 */
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  WorkDoneProgress,
  type LanguageClientOptions,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
  type ServerOptions,
} from 'vscode-languageclient/node';
import type { LspMethod } from '../shared/lsp';
import { SETTINGS_SECTION } from '../shared/settings';
import { pythonLensMiddleware, PYTHON_DOCUMENTS, watchModelFiles } from './pythonLenses';
import { SERVER_ENVIRONMENT } from './serverEnvironment';
import { readSettings } from './settings';

/** More crashes than this within CRASH_WINDOW_MS and the server is left stopped. */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;

export type ServerState = 'starting' | 'running' | 'stopped';

export class LayerLensClient implements vscode.Disposable {
  private readonly client: LanguageClient;
  private readonly crashTimes: number[] = [];
  private hasRun = false;
  private readonly restartedEmitter = new vscode.EventEmitter<void>();
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly configurationListener: vscode.Disposable;
  /** Fired when the server came back after a crash or a manual restart. */
  readonly onDidRestart = this.restartedEmitter.event;
  readonly onDidChangeState = this.stateEmitter.event;

  constructor(
    context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
  ) {
    const module = context.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc, options: { env: SERVER_ENVIRONMENT } },
      debug: {
        module,
        transport: TransportKind.ipc,
        options: { env: SERVER_ENVIRONMENT, execArgv: ['--nolazy', '--inspect=6019'] },
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [...PYTHON_DOCUMENTS],
      synchronize: { fileEvents: watchModelFiles(context) },
      middleware: pythonLensMiddleware,
      outputChannel: output,
      // Read at each start, so that a restarted server gets the settings as they are now.
      initializationOptions: () => ({ settings: readSettings() }),
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.onServerClosed(),
      },
    };
    this.client = new LanguageClient('layerlens', 'LayerLens Server', serverOptions, clientOptions);
    this.client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        if (this.hasRun) this.restartedEmitter.fire();
        this.hasRun = true;
        this.stateEmitter.fire('running');
      } else {
        this.stateEmitter.fire(event.newState === State.Starting ? 'starting' : 'stopped');
      }
    });
    // The server applies changed settings without a restart; it gets them flat, as at start.
    this.configurationListener = vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SETTINGS_SECTION) || !this.client.isRunning()) return;
      this.client
        .sendNotification(DidChangeConfigurationNotification.type, { settings: readSettings() })
        .catch((error: unknown) => this.output.warn(`Could not send the settings: ${error}`));
    });
  }

  get state(): ServerState {
    switch (this.client.state) {
      case State.Running:
        return 'running';
      case State.Starting:
        return 'starting';
      default:
        return 'stopped';
    }
  }

  start(): Promise<void> {
    return this.client.start();
  }

  async restart(): Promise<void> {
    this.crashTimes.length = 0;
    if (this.client.isRunning()) await this.client.restart();
    else await this.client.start();
  }

  /** Send a custom request; rejects with a clear message when the server is down. */
  request<P, R>(method: LspMethod<P, R>, params: P, token?: vscode.CancellationToken): Promise<R> {
    if (this.state === 'stopped') {
      return Promise.reject(
        new Error(
          'The LayerLens server is not running. Run "LayerLens: Restart Server" to start it.',
        ),
      );
    }
    // Without a token, none is passed: an `undefined` argument would be sent as a parameter.
    return token
      ? this.client.sendRequest<R>(method.method, params, token)
      : this.client.sendRequest<R>(method.method, params);
  }

  /** Follow the work-done progress the server reports on `token` (a token this side made up). */
  onWorkDoneProgress(
    token: string,
    handler: (value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => void,
  ): vscode.Disposable {
    return this.client.onProgress(WorkDoneProgress.type, token, handler);
  }

  private onServerClosed(): { action: CloseAction; message?: string } {
    const now = Date.now();
    this.crashTimes.push(now);
    while (this.crashTimes.length > 0 && now - this.crashTimes[0]! > CRASH_WINDOW_MS)
      this.crashTimes.shift();
    if (this.crashTimes.length > MAX_CRASHES) {
      return {
        action: CloseAction.DoNotRestart,
        message: `The LayerLens server stopped ${this.crashTimes.length} times in a minute and was not restarted. See the "LayerLens" output.`,
      };
    }
    this.output.warn('The LayerLens server stopped; restarting it.');
    return { action: CloseAction.Restart };
  }

  async dispose(): Promise<void> {
    this.configurationListener.dispose();
    this.restartedEmitter.dispose();
    this.stateEmitter.dispose();
    if (this.client.needsStop()) await this.client.stop();
  }
}

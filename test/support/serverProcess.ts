/**
 * The real LayerLens server process, started from source and spoken to over JSON-RPC on
 * stdio as the extension's language client does, with its work-done progress recorded.
 *
 *   const server = await startServer({ 'stats.workerCount': 2 });
 *   const summary = await server.request(LspMethods.openModel, { uri });
 *   server.stop();
 */
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { SERVER_ENVIRONMENT } from '../../src/extension/serverEnvironment';
import type { LspMethod } from '../../src/shared/lsp';
import type { LayerLensSettings } from '../../src/shared/settings';

export interface ProgressValue {
  readonly kind: 'begin' | 'report' | 'end';
  readonly title?: string;
  readonly message?: string;
  readonly percentage?: number;
}

export interface ServerProcess {
  readonly connection: MessageConnection;
  /** Every work-done progress value the server sent, in order. */
  readonly progress: ProgressValue[];
  /** The same values by progress token, for telling jobs apart. */
  readonly progressByToken: Map<string | number, ProgressValue[]>;
  /** The server process's id. */
  readonly pid: number;
  /** Settles with the exit code when the server process exits. */
  readonly exited: Promise<number | null>;
  request<P, R>(method: LspMethod<P, R>, params: P, token?: CancellationToken): Promise<R>;
  /** Send changed settings, as the extension does when the user changes one. */
  changeSettings(settings: Partial<LayerLensSettings>): Promise<void>;
  stop(): void;
}

/**
 * Start the server, from source under tsx or, with `bundle` (dist/server.js), as the
 * packaged extension runs it; in the environment the extension gives it. With `workspace`,
 * that folder is the client's workspace folder (Python scripts).
 */
export async function startServer(
  settings: Partial<LayerLensSettings> = {},
  workspace?: string,
  bundle?: string,
): Promise<ServerProcess> {
  const entry = bundle ? [bundle] : ['--import', 'tsx', 'src/server/server.ts'];
  const child = spawn(process.execPath, [...entry, '--stdio'], {
    stdio: 'pipe',
    env: { ...process.env, ...SERVER_ENVIRONMENT },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin),
  );
  const progress: ProgressValue[] = [];
  const progressByToken = new Map<string | number, ProgressValue[]>();
  connection.onRequest('window/workDoneProgress/create', () => null);
  connection.onRequest('workspace/codeLens/refresh', () => null);
  connection.onNotification(
    '$/progress',
    (params: { token: string | number; value: ProgressValue }) => {
      progress.push(params.value);
      const values = progressByToken.get(params.token) ?? [];
      values.push(params.value);
      progressByToken.set(params.token, values);
    },
  );
  connection.listen();
  await connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: workspace ? pathToFileURL(workspace).toString() : null,
    ...(workspace
      ? { workspaceFolders: [{ uri: pathToFileURL(workspace).toString(), name: 'workspace' }] }
      : {}),
    capabilities: {
      window: { workDoneProgress: true },
      workspace: { codeLens: { refreshSupport: true }, workspaceFolders: true },
    },
    initializationOptions: { settings },
  });
  connection.sendNotification('initialized', {});
  return {
    connection,
    progress,
    progressByToken,
    pid: child.pid!,
    exited,
    changeSettings: (changed) =>
      connection.sendNotification('workspace/didChangeConfiguration', { settings: changed }),
    request: <P, R>(method: LspMethod<P, R>, params: P, token?: CancellationToken) =>
      (token
        ? connection.sendRequest(method.method, params, token)
        : connection.sendRequest(method.method, params)) as Promise<R>,
    stop() {
      connection.dispose();
      child.kill();
    },
  };
}

/**
 * The real server process over JSON-RPC (stdio), as the extension's language client
 * talks to it: custom requests, model errors, and that a bad file leaves it running.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  ResponseError,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  LspMethods,
  MODEL_ERROR_CODE,
  type LspMethod,
  type ModelErrorData,
} from '../../src/shared/lsp';
import { isStatsError } from '../../src/shared/model';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let server: ChildProcessWithoutNullStreams;
let connection: MessageConnection;
let folder: string;

function request<P, R>(method: LspMethod<P, R>, params: P): Promise<R> {
  return connection.sendRequest(method.method, params) as Promise<R>;
}

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-server-'));
  server = spawn(process.execPath, ['--import', 'tsx', 'src/server/server.ts', '--stdio'], {
    stdio: 'pipe',
  });
  connection = createMessageConnection(
    new StreamMessageReader(server.stdout),
    new StreamMessageWriter(server.stdin),
  );
  connection.listen();
  await connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: null,
    capabilities: { window: { workDoneProgress: false } },
    initializationOptions: { settings: { 'stats.workerCount': 2 } },
  });
  connection.sendNotification('initialized', {});
});

after(() => {
  connection.dispose();
  server.kill();
  rmSync(folder, { recursive: true, force: true });
});

test('answers openModel, tensors and tensorStats for a real model', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const summary = await request(LspMethods.openModel, { uri });
  assert.equal(summary.format, 'onnx');
  assert.ok(summary.parameterCount > 100_000, `parameters: ${summary.parameterCount}`);

  const page = await request(LspMethods.tensors, { uri, offset: 0, limit: 10 });
  assert.equal(page.total, summary.tensorCount);
  assert.equal(page.tensors.length, Math.min(10, summary.tensorCount));

  const largest = [...page.tensors].sort((a, b) => b.parameterCount - a.parameterCount)[0]!;
  const [stats] = await request(LspMethods.tensorStats, { uri, indices: [largest.index] });
  assert.ok(stats && !isStatsError(stats));
  assert.equal(stats.count, largest.parameterCount);
  assert.equal(
    stats.histogram?.counts.reduce((sum, count) => sum + count, 0),
    stats.count,
  );

  const info = await request(LspMethods.serverInfo, undefined);
  assert.equal(info.workerCount, 2);
});

test('a corrupt file is a model error naming the file, and the server keeps answering', async () => {
  const broken = join(folder, 'broken.onnx');
  writeFileSync(broken, Buffer.from('this is not a protobuf at all, just text \u0000\u00ff'));
  const uri = pathToFileURL(broken).toString();
  await assert.rejects(request(LspMethods.openModel, { uri }), (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, MODEL_ERROR_CODE);
    assert.equal((error.data as ModelErrorData).file, broken);
    assert.match(error.message, /broken\.onnx/);
    return true;
  });
  const summary = await request(LspMethods.openModel, { uri: pathToFileURL(SILERO_V5).toString() });
  assert.equal(summary.format, 'onnx');
});

test('a URI that is not a local file is refused clearly', async () => {
  await assert.rejects(
    request(LspMethods.openModel, { uri: 'https://example.invalid/model.onnx' }),
    /local files only/,
  );
});

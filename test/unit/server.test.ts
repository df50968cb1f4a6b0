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
  CancellationTokenSource,
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
import { writeSafetensors } from '../support/safetensorsBuilder';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let server: ChildProcessWithoutNullStreams;
let connection: MessageConnection;
let folder: string;

interface ProgressValue {
  readonly kind: 'begin' | 'report' | 'end';
  readonly title?: string;
  readonly message?: string;
  readonly percentage?: number;
}
const progress: ProgressValue[] = [];

async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
  connection.onRequest('window/workDoneProgress/create', () => null);
  connection.onNotification('$/progress', (params: { value: ProgressValue }) => {
    progress.push(params.value);
  });
  connection.listen();
  await connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: null,
    capabilities: { window: { workDoneProgress: true } },
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

test('statistics report work-done progress until every tensor of the model is done', async () => {
  const model = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v6.onnx');
  const uri = pathToFileURL(model).toString();
  const { tensorCount } = await request(LspMethods.openModel, { uri });
  progress.length = 0;
  await request(LspMethods.tensorStats, { uri, indices: [0, 1] });
  await eventually('a progress report', () => progress.some((value) => value.kind === 'report'));
  const begin = progress.find((value) => value.kind === 'begin');
  assert.match(begin?.title ?? '', /statistics of silero_vad_v6\.onnx/);
  assert.match(
    progress.find((value) => value.kind === 'report')?.message ?? '',
    /2 \/ \d+ tensors/,
  );
  assert.ok(!progress.some((value) => value.kind === 'end'));

  const rest = Array.from({ length: tensorCount - 2 }, (_, index) => index + 2);
  await request(LspMethods.tensorStats, { uri, indices: rest });
  await eventually('the end of the progress', () => progress.some((value) => value.kind === 'end'));
});

test('a cancelled statistics request stops with RequestCancelled; the next one computes it whole', async () => {
  // 64 MiB of float32: long enough to be cancelled while the worker reads it.
  const elements = 16 * 1024 * 1024;
  const values = new Float32Array(elements).map((_, index) => Math.sin(index));
  const file = await writeSafetensors(join(folder, 'large.safetensors'), [
    { name: 'layer.weight', dtype: 'F32', shape: [4096, elements / 4096], data: values },
  ]);
  const uri = pathToFileURL(file).toString();
  await request(LspMethods.openModel, { uri });

  const cancellation = new CancellationTokenSource();
  const pending = connection.sendRequest(
    LspMethods.tensorStats.method,
    { uri, indices: [0] },
    cancellation.token,
  );
  setTimeout(() => cancellation.cancel(), 5);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });

  const [stats] = await request(LspMethods.tensorStats, { uri, indices: [0] });
  assert.ok(stats && !isStatsError(stats));
  assert.equal(stats.count, elements);
});

/**
 * layerlens/sensitivity over JSON-RPC against the real server process: the measured sweep
 * of a Silero model with work-done progress, the cached second answer, a model error that
 * names the file, and a cancelled sweep answering RequestCancelled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../../../src/shared/lsp';
import { startServer, type ServerProcess } from '../../support/serverProcess';

let server: ServerProcess;
let folder: string;
let uri: string;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'layerlens-server-sensitivity-'));
  server = await startServer({ 'stats.workerCount': 1, 'sensitivity.metric': 'cosine' });
  const file = path.join(folder, 'silero_vad_v5.onnx');
  await copyFile(path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), file);
  uri = pathToFileURL(file).toString();
});

after(async () => {
  server?.stop();
  await rm(folder, { recursive: true, force: true });
});

test('a measured sweep of Silero v5 with progress, then the same answer from the cache', async () => {
  server.progress.length = 0;
  const request = {
    indices: [],
    measured: true,
    levels: [
      {
        key: 'prune:0.5',
        label: 'prune 50%',
        method: 'prune' as const,
        options: { method: 'prune' as const, sparsity: 0.5 },
        x: 0.5,
      },
    ],
  };
  const result = await server.request(LspMethods.sensitivity, {
    uri,
    request,
    workDoneToken: 'sweep-1',
  });
  assert.equal(result.metric, 'cosine', 'the metric comes from the settings');
  assert.equal(result.sessions, 1);
  assert.equal(result.cached, false);
  assert.ok(result.layers.every((layer) => layer.measured?.length === 1));
  const values = server.progressByToken.get('sweep-1') ?? [];
  assert.match(values[0]?.title ?? '', /sensitivity of silero_vad_v5\.onnx/);
  assert.equal(values.at(-1)?.kind, 'end');
  const again = await server.request(LspMethods.sensitivity, { uri, request });
  assert.equal(again.cached, true);
  assert.deepEqual(again.layers, result.layers);
});

test('a broken file is a model error naming it; a cancelled sweep answers RequestCancelled', async () => {
  const broken = path.join(folder, 'broken.onnx');
  await writeFile(broken, new Uint8Array([0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0x0f]));
  await assert.rejects(
    server.request(LspMethods.sensitivity, {
      uri: pathToFileURL(broken).toString(),
      request: { indices: [], measured: true },
    }),
    (error: unknown) => {
      assert.ok(error instanceof ResponseError);
      assert.equal(error.code, MODEL_ERROR_CODE);
      assert.equal((error.data as ModelErrorData).file, broken);
      return true;
    },
  );
  const cancellation = new CancellationTokenSource();
  const pending = server.request(
    LspMethods.sensitivity,
    { uri, request: { indices: [], measured: true, metric: 'kl' } },
    cancellation.token,
  );
  setTimeout(() => cancellation.cancel(), 300);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });
  const summary = await server.request(LspMethods.openModel, { uri });
  assert.ok(summary.tensorCount > 0, 'the server keeps answering');
});

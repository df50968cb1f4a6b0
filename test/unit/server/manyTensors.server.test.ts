/**
 * A model with very many tensors opens without holding the server: while the real server
 * process opens an ONNX file of many small initializers, it keeps answering other
 * requests (here: another file's summary, asked again and again).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { LspMethods } from '../../../src/shared/lsp';
import { encodeModel, graph, model, rawTensor } from '../../support/onnxBuilder';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import { startServer, type ServerProcess } from '../../support/serverProcess';

/** Enough initializers that opening them takes far longer than a summary of a cached file. */
const INITIALIZERS = 30_000;
const ASK_EVERY_MS = 10;

let server: ServerProcess;
let folder: string;

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-many-'));
  server = await startServer({ 'stats.workerCount': 1 });
});

after(() => {
  server.stop();
  rmSync(folder, { recursive: true, force: true });
});

test('the server answers other requests while a model of many tensors opens', async () => {
  const value = new Uint8Array(4);
  const initializers = Array.from({ length: INITIALIZERS }, (_, i) =>
    rawTensor(`t${i}`, 'float32', [1], value),
  );
  const many = join(folder, 'many.onnx');
  writeFileSync(many, encodeModel(model(graph({ initializers }))));
  const small = await writeSafetensors(join(folder, 'small.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
  ]);
  const smallUri = pathToFileURL(small).toString();
  await server.request(LspMethods.openModel, { uri: smallUri });

  let opened = false;
  let answeredWhileOpening = 0;
  const opening = server
    .request(LspMethods.openModel, { uri: pathToFileURL(many).toString() })
    .finally(() => (opened = true));
  while (!opened) {
    const asked = server.request(LspMethods.openModel, { uri: smallUri }).then((summary) => {
      assert.equal(summary.tensorCount, 1);
      if (!opened) answeredWhileOpening++;
    });
    await Promise.race([asked, opening.catch(() => undefined)]);
    await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
  }
  const summary = await opening;
  assert.equal(summary.tensorCount, INITIALIZERS);
  assert.ok(
    answeredWhileOpening >= 3,
    `only ${answeredWhileOpening} summaries were answered while the large model opened`,
  );
});

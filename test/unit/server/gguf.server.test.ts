/**
 * GGUF through the real server process over JSON-RPC: malformed headers are model errors
 * naming the file and the server keeps answering; a quantized tensor's statistics are those
 * of its dequantized values, and a type that is not decoded is a per-tensor error.
 */
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { ResponseError } from 'vscode-jsonrpc/node';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../../../src/shared/lsp';
import { isStatsError } from '../../../src/shared/model';
import { float32Of, writeGgufFixtures, type GgufFixtures } from '../../support/ggufFixtures';
import { startServer, type ServerProcess } from '../../support/serverProcess';

let server: ServerProcess;
let fixtures: GgufFixtures;

before(async () => {
  fixtures = writeGgufFixtures();
  server = await startServer({ 'stats.workerCount': 1 });
});

after(() => {
  server.stop();
  fixtures.remove();
});

test('malformed GGUF headers are model errors naming the file; the server keeps answering', async () => {
  for (const name of [
    'bad-tensor-count.gguf',
    'bad-string.gguf',
    'bad-type.gguf',
    'bad-offset.gguf',
  ]) {
    const file = fixtures.path(name);
    await assert.rejects(
      server.request(LspMethods.openModel, { uri: pathToFileURL(file).toString() }),
      (error: unknown) => {
        assert.ok(error instanceof ResponseError);
        assert.equal(error.code, MODEL_ERROR_CODE);
        assert.equal((error.data as ModelErrorData).file, file);
        return true;
      },
    );
  }
  const uri = pathToFileURL(fixtures.path('types-v3.gguf')).toString();
  const summary = await server.request(LspMethods.openModel, { uri });
  assert.equal(summary.format, 'gguf');
  const page = await server.request(LspMethods.tensors, { uri, offset: 0, limit: 100 });
  const q4k = page.tensors.find((info) => info.encoding?.scheme === 'Q4_K')!;
  const listed = page.tensors.find((info) => info.encoding?.scheme === 'IQ2_XXS')!;
  assert.deepEqual(q4k.shape, [2, 256]);
  const [stats, refused] = await server.request(LspMethods.tensorStats, {
    uri,
    indices: [q4k.index, listed.index],
  });
  assert.ok(stats && !isStatsError(stats));
  const values = float32Of(fixtures.expected['types-v3.gguf']![q4k.name]!);
  assert.equal(stats.count, 512);
  assert.equal(stats.min, Math.min(...values));
  assert.equal(stats.max, Math.max(...values));
  assert.ok(refused && isStatsError(refused));
  assert.match(refused.error, /values not decoded.*IQ2_XXS/);
});

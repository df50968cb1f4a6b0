/**
 * Cancels that race the start of their request, through the real server process: a cancel
 * sent with the request (or while the server is busy with other work) must win, and the
 * job must write nothing, temporary files included.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { LSPErrorCodes } from 'vscode-languageserver/node';
import { temporaryRoot } from '../../../src/server/tempFiles';
import { LspMethods } from '../../../src/shared/lsp';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import { startServer, type ServerProcess } from '../../support/serverProcess';

let server: ServerProcess;
let folder: string;

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-cancel-'));
  server = await startServer({ 'stats.workerCount': 1 });
});

after(() => {
  server.stop();
  rmSync(folder, { recursive: true, force: true });
});

function isCancelled(error: unknown): boolean {
  return (error as { code?: unknown }).code === LSPErrorCodes.RequestCancelled;
}

/** Files the server process left in LayerLens's temporary folder. */
function serverTemporaries(): string[] {
  const root = temporaryRoot();
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => name.startsWith(`${server.pid}-`))
    .flatMap((name) => readdirSync(join(root, name)));
}

test('a cancel sent with its request wins every time and nothing is written', async () => {
  const model = await writeSafetensors(join(folder, 'small.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [256 * 1024], data: randomBytes(1024 * 1024) },
  ]);
  const uri = pathToFileURL(model).toString();
  const rounds = 25;
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    const source = new CancellationTokenSource();
    const pending = server.request(
      LspMethods.pack,
      { uri, outUri: pathToFileURL(join(folder, `p${round}.llz`)).toString() },
      source.token,
    );
    source.cancel();
    try {
      await pending;
      lost++;
    } catch (error) {
      assert.ok(isCancelled(error), String(error));
    }
  }
  assert.equal(lost, 0, `${lost} of ${rounds} cancels were lost`);
  assert.deepEqual(
    readdirSync(folder).filter((name) => name !== 'small.safetensors'),
    [],
  );
  assert.deepEqual(serverTemporaries(), []);
});

test('a cancel that arrives while the server is busy wins', async () => {
  const large = await writeSafetensors(join(folder, 'busy.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [8 * 1024 * 1024], data: randomBytes(32 * 1024 * 1024) },
  ]);
  const small = join(folder, 'small.safetensors');
  const busy = server.request(LspMethods.pack, {
    uri: pathToFileURL(large).toString(),
    outUri: pathToFileURL(join(folder, 'busy.llz')).toString(),
  });
  let lost = 0;
  const cancelled = [];
  for (let round = 0; round < 10; round++) {
    const source = new CancellationTokenSource();
    const pending = server.request(
      LspMethods.pack,
      {
        uri: pathToFileURL(small).toString(),
        outUri: pathToFileURL(join(folder, `q${round}.llz`)).toString(),
      },
      source.token,
    );
    source.cancel();
    cancelled.push(
      pending.then(
        () => lost++,
        (error: unknown) => assert.ok(isCancelled(error), String(error)),
      ),
    );
  }
  await Promise.all(cancelled);
  await busy;
  assert.equal(lost, 0);
  assert.deepEqual(
    readdirSync(folder).filter((name) => name.startsWith('q')),
    [],
  );
});

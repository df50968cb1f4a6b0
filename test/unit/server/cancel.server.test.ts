/**
 * Cancels that race the start of their request, through the real server process: a cancel
 * sent with the request (or while the server is busy with other work) must win, and the
 * job must write nothing, temporary files included.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { LSPErrorCodes } from 'vscode-languageserver/node';
import { temporaryRoot } from '../../../src/server/tempFiles';
import { LspMethods } from '../../../src/shared/lsp';
import { seededRandom } from '../../fuzz/mutate';
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

/** Cancels at random delays; LAYERLENS_CANCEL_ROUNDS=100 for the long run. */
const RANDOM_ROUNDS = Number(process.env.LAYERLENS_CANCEL_ROUNDS ?? 20);
const MAX_CANCEL_DELAY_MS = 200;
/**
 * A job may finish while its cancel is on the way; one whose output was committed later
 * than this after the cancel was sent ran on through a cancel it had received.
 */
const IN_FLIGHT_MS = 250;

test(`${RANDOM_ROUNDS} compress jobs cancelled at random delays: none lost, nothing left behind`, async (t) => {
  const model = await writeSafetensors(join(folder, 'random.safetensors'), [
    { name: 'a', dtype: 'F32', shape: [64, 64], data: randomBytes(16 * 1024) },
    { name: 'b', dtype: 'F32', shape: [64, 64], data: randomBytes(16 * 1024) },
  ]);
  const uri = pathToFileURL(model).toString();
  // One job run to the end first, so that the rounds do not time the server's warm-up.
  const warmStarted = Date.now();
  await server.request(LspMethods.compress, {
    uri,
    request: {
      tensors: [],
      options: { method: 'int8' },
      outPath: join(folder, 'random.warm.safetensors'),
    },
  });
  t.diagnostic(`one job run to the end: ${Date.now() - warmStarted} ms`);
  const random = seededRandom(20);
  const outcomes = { cancelled: 0, finishedFirst: 0, finishedInFlight: 0, lost: 0 };
  for (let round = 0; round < RANDOM_ROUNDS; round++) {
    const outPath = join(folder, `r${round}.int8.safetensors`);
    const delay = Math.floor(random() * MAX_CANCEL_DELAY_MS);
    const source = new CancellationTokenSource();
    const pending = server.request(
      LspMethods.compress,
      { uri, request: { tensors: [], options: { method: 'int8' }, outPath } },
      source.token,
    );
    let cancelSentAt = Infinity;
    const timer = setTimeout(() => {
      cancelSentAt = Date.now();
      source.cancel();
    }, delay);
    try {
      const report = await pending;
      clearTimeout(timer);
      assert.equal(report.output, outPath);
      const committedAt = statSync(outPath).ctimeMs;
      if (committedAt <= cancelSentAt) outcomes.finishedFirst++;
      else if (committedAt <= cancelSentAt + IN_FLIGHT_MS) outcomes.finishedInFlight++;
      else outcomes.lost++;
    } catch (error) {
      clearTimeout(timer);
      assert.ok(isCancelled(error), String(error));
      outcomes.cancelled++;
      assert.ok(!existsSync(outPath), `cancelled round ${round} (${delay} ms) left its output`);
      assert.ok(!existsSync(`${outPath}.report.json`), `cancelled round ${round} left a report`);
    }
    assert.deepEqual(serverTemporaries(), [], `round ${round} (${delay} ms) left temporary files`);
  }
  t.diagnostic(JSON.stringify(outcomes));
  assert.equal(outcomes.lost, 0, `${outcomes.lost} of ${RANDOM_ROUNDS} cancels were lost`);
  assert.ok(outcomes.cancelled > 0, 'no job was cancelled: the delays are too long for this job');
  // Only finished models and their reports are left: no partial output, no scratch file.
  const left = readdirSync(folder).filter((name) => /^r\d+\./.test(name));
  const outputs = left.filter((name) => name.endsWith('.int8.safetensors'));
  assert.deepEqual(
    left.filter((name) => !outputs.includes(name)).sort(),
    outputs.map((name) => `${name}.report.json`).sort(),
  );
});

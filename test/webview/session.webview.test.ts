/**
 * The model editor's own request session (src/extension/modelSession.ts) between the
 * webview in headless Chromium and the real server process: a file that cannot be read
 * comes back as an error naming it, a cancelled sweep comes back as cancelled, and a
 * change of the model file on disk has the webview fetch everything again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { LspMethods } from '../../src/shared/lsp';
import type { HostToWebview, RequestError, WebviewToHost } from '../../src/shared/protocol';
import type { SensitivityRequest } from '../../src/shared/sensitivity';
import { writeSafetensors, type SafetensorsTensor } from '../support/safetensorsBuilder';
import type { WebviewSession } from '../support/webviewHarness';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const READY_TIMEOUT_MS = 60_000;

const ui = useWebviewHarness({ folderPrefix: 'layerlens-session-' });

async function waitForState(page: Page, state: string): Promise<void> {
  await page
    .locator(`body[data-state="${state}"]`)
    .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
}

/** The error the host sent for the webview's first request of this method. */
function errorReplyTo(session: WebviewSession, name: string): RequestError | undefined {
  const request = session.posted.find(
    (message) => message.type === 'request' && message.name === name,
  );
  assert.ok(request?.type === 'request', `the webview asked for ${name}`);
  const reply = session.received.find(
    (message): message is Extract<HostToWebview, { type: 'response' }> =>
      message.type === 'response' && message.id === request.id,
  );
  return reply && 'error' in reply ? reply.error : undefined;
}

function blocks(count: number): SafetensorsTensor[] {
  return Array.from({ length: count }, (_, index) => ({
    name: `blocks.${index}.fc.weight`,
    dtype: 'F32',
    shape: [4, 4],
    data: new Float32Array(16).fill(index + 1),
  }));
}

test('a model file the server cannot read: the error names the file and what is wrong', async () => {
  const brokenPath = path.join(ui.folder, 'garbage.onnx');
  await writeFile(brokenPath, randomBytes(2048));
  const session = await ui.harness.open({ server: ui.server, modelPath: brokenPath });
  try {
    await waitForState(session.page, 'error');
    const error = errorReplyTo(session, 'openModel');
    assert.ok(error, 'openModel failed');
    assert.equal(error.file, brokenPath);
    assert.ok(error.problem && error.problem.length > 0, 'the problem is given apart');
    assert.notEqual(error.cancelled, true);
    assert.match(await session.page.locator('[data-testid="error"]').innerText(), /garbage\.onnx/);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('a measured sweep cancelled in the webview comes back from the server as cancelled', async () => {
  const session = await ui.harness.open(
    { server: ui.server, modelPath: SILERO_V5 },
    { viewport: { width: 1600, height: 1000 } },
  );
  try {
    const { page } = session;
    await waitForState(page, 'ready');
    await page.locator('[data-testid="tab-sensitivity"]').click();
    await page
      .locator('[data-testid="sensitivity-chart"] svg')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    await page.locator('[data-testid="sensitivity-run"]').click();
    const request = await until(() =>
      session.posted.find(
        (message): message is Extract<WebviewToHost, { type: 'request' }> =>
          message.type === 'request' &&
          message.name === 'sensitivity' &&
          (message.params as { request: SensitivityRequest }).request.measured === true,
      ),
    );
    await page
      .locator('[data-testid="sensitivity-progress"]:not([hidden])')
      .waitFor({ state: 'attached', timeout: 10_000 });
    const cancel = session.nextPosted('cancel');
    await page.locator('[data-testid="sensitivity-cancel"]').click();
    assert.equal((await cancel).id, request.id);
    await page
      .locator('[data-testid="sensitivity-status"]', { hasText: 'Measured sweep cancelled.' })
      .waitFor({ timeout: 10_000 });
    const reply = await until(() =>
      session.received.find((message) => message.type === 'response' && message.id === request.id),
    );
    assert.ok(reply.type === 'response' && 'error' in reply, 'the sweep failed');
    assert.deepEqual(reply.error, { message: 'cancelled', cancelled: true });
    // The server is still up and answers.
    const info = await ui.server.request(LspMethods.serverInfo, undefined);
    assert.ok(info.workerCount >= 1);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('a change of the model file on disk reloads the webview with the new contents', async () => {
  const modelPath = await writeSafetensors(path.join(ui.folder, 'growing.safetensors'), blocks(3));
  const session = await ui.harness.open({ server: ui.server, modelPath });
  try {
    const { page } = session;
    await waitForState(page, 'ready');
    const count = page.locator('[data-testid="tensor-count"]');
    assert.equal(await count.getAttribute('data-value'), '3');
    await writeSafetensors(modelPath, blocks(7));
    await page
      .locator('[data-testid="tensor-count"][data-value="7"]')
      .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
    assert.ok(
      session.received.some(
        (message) => message.type === 'reload' && message.reason === 'the file changed on disk',
      ),
    );
    await waitForState(page, 'ready');
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

/** Polls until `find` returns something (the last reply may still be on its way). */
async function until<T>(find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

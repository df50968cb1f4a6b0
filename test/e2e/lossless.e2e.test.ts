/**
 * End to end in a real VS Code (code-server) and a real browser: "LayerLens: Pack
 * Losslessly" from the command palette on the model in the active LayerLens editor writes
 * `<model>.llz` beside it, and the notification's "Open in LayerLens" opens the packed file
 * in the LayerLens editor with the same tensors.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/lossless.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { useExampleWorkbench } from '../support/exampleWorkbench';
import { expectedChunkDigest } from '../support/llzIndex';
import type { Workbench } from '../support/vscodeBrowser';

const TEST_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 60_000;
const MODEL = 'silero_vad_v5.onnx';

const example = useExampleWorkbench('lossless');

/** Where the workspace copy holds a file (it may sit in a subfolder). */
function findInWorkspace(fileName: string, folder = example().workspace): string | undefined {
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isFile() && entry.name === fileName) return full;
    if (entry.isDirectory()) {
      const found = findInWorkspace(fileName, full);
      if (found) return found;
    }
  }
  return undefined;
}

async function waitForEditor(browser: Workbench, fileName: string) {
  await browser.page
    .locator('.tabs-container .tab.active', { hasText: fileName })
    .waitFor({ state: 'visible', timeout: READY_TIMEOUT_MS });
  const frame = await browser.frameWith('body[data-state]', READY_TIMEOUT_MS);
  await frame.locator('body[data-state="ready"]').waitFor({ timeout: READY_TIMEOUT_MS });
  return frame;
}

test(
  'Pack Losslessly from the palette writes the .llz, which opens with the same tensors',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench } = example();
    const browser = workbench;
    const model = findInWorkspace(MODEL);
    assert.ok(model, `${MODEL} is in the workspace`);
    try {
      await browser.openFile(MODEL);
      const original = await waitForEditor(browser, MODEL);
      // The count reads "N weights of M tensors" once the server said which tensors are weights.
      const counted = (frame: typeof original) =>
        frame.locator('.ll-table-count', { hasText: 'weights of' });
      await counted(original).waitFor({ timeout: READY_TIMEOUT_MS });
      const tensorCount = await counted(original).textContent();

      await browser.runCommand('LayerLens: Pack Losslessly');
      await browser.page
        .locator('.notifications-toasts', { hasText: `Packed ${MODEL}` })
        .waitFor({ state: 'visible', timeout: READY_TIMEOUT_MS });
      const packed = `${model}.llz`;
      assert.ok(existsSync(packed), `${packed} was written`);
      assert.equal(
        readFileSync(packed).subarray(0, 4).toString('latin1'),
        '\x89LLZ',
        'it is a packed file',
      );
      await browser.screenshot('e2e-lossless-packed');

      // The notification offers to open the packed file (alone, so that its webview is the only one).
      await browser.runCommand('View: Close All Editors');
      await browser.page
        .locator('.notifications-toasts .monaco-button', { hasText: 'Open in LayerLens' })
        .click();
      const reopened = await waitForEditor(browser, `${MODEL}.llz`);
      await counted(reopened).waitFor({ timeout: READY_TIMEOUT_MS });
      assert.equal(await counted(reopened).textContent(), tensorCount);
      // Its statistics come from the bundled statistics workers, which decode the chunks.
      const std = reopened.locator('[data-testid="tensor-row"] .ll-col-std');
      assert.ok((await std.count()) > 0);
      assert.equal(await reopened.locator('.ll-col-std.ll-stats-error').count(), 0);
      assert.equal(await reopened.locator('.ll-col-std.ll-pending').count(), 0);
      assert.ok(
        (await std.allTextContents()).some((text) => /\d/.test(text)),
        'the rows show a standard deviation',
      );
      await reopened
        .getByText('original SHA-256', { exact: false })
        .first()
        .waitFor({ state: 'attached' });
      const digest = expectedChunkDigest(readFileSync(packed), readFileSync(model));
      assert.ok(
        (await reopened.locator('body').textContent())?.includes(digest),
        'the overview shows the original chunk digest (SHA-256 of chunk SHA-256s)',
      );
      await browser.screenshot('e2e-lossless-opened');
    } catch (error) {
      const screenshot = await browser.screenshot('e2e-lossless-failure').catch(() => 'none');
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\nscreenshot: ${screenshot}\n` +
          server.extensionHostLog().split('\n').slice(-40).join('\n'),
        { cause: error },
      );
    }
  },
);

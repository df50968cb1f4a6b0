/**
 * The webview's answer to a `reveal` message (a code lens's "Show in LayerLens"): the named
 * tensor's row is selected and scrolled into view, whether the message arrives before the
 * rows or after, and a filter that hides the row is cleared. Headless Chromium, real
 * server core on a generated safetensors file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { writeSafetensors, type SafetensorsTensor } from '../support/safetensorsBuilder';
import { useWebviewHarness } from '../support/webviewSession';

const READY_TIMEOUT_MS = 60_000;
const TENSORS = 1500;

let modelPath: string;

const ui = useWebviewHarness({
  folderPrefix: 'layerlens-reveal-',
  setUp: async () => {
    const tensors: SafetensorsTensor[] = Array.from({ length: TENSORS }, (_, index) => ({
      name: `blocks.${index}.fc.weight`,
      dtype: 'F32',
      shape: [4, 4],
      data: new Float32Array(16).fill(index),
    }));
    modelPath = await writeSafetensors(path.join(ui.folder, 'blocks.safetensors'), tensors);
  },
});

/** Resolves after the page's next animation frame (and the callbacks queued before it). */
async function nextFrame(page: Page): Promise<void> {
  // A string, not a function: the tests compile without the DOM's types.
  await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => resolve(null)))');
}

async function selectedRow(page: Page): Promise<{ index: number; name: string }> {
  const row = page.locator('[data-testid="tensor-row"][aria-selected="true"]');
  await row.waitFor({ timeout: READY_TIMEOUT_MS });
  return {
    index: Number(await row.getAttribute('data-index')),
    // The row shows the name without the prefix all names share; its tooltip has it whole.
    name: (await row.locator('.ll-col-name').getAttribute('title')) ?? '',
  };
}

async function isInView(page: Page, index: number): Promise<boolean> {
  return page.locator(`[data-testid="tensor-row"][data-index="${index}"]`).evaluate((row) => {
    const grid = row.closest('[role="grid"]')!.getBoundingClientRect();
    const box = row.getBoundingClientRect();
    return box.top >= grid.top && box.bottom <= grid.bottom;
  });
}

test('a reveal sent before the rows arrive selects the row once they are in, clearing a filter that hides it', async () => {
  const session = await ui.harness.open(
    { server: ui.server, modelPath },
    {
      savedState: { filter: 'blocks.3.', selectedIndex: 3, scrollTop: 0 },
    },
  );
  try {
    await session.postToWebview({ type: 'reveal', tensorName: 'blocks.1234.fc.weight' });
    // The saved selection (row 3) shows first; the reveal moves it once every row is in.
    await session.page
      .locator('[data-testid="tensor-row"][data-index="1234"][aria-selected="true"]')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    const selected = await selectedRow(session.page);
    assert.equal(selected.index, 1234);
    assert.equal(selected.name, 'blocks.1234.fc.weight');
    assert.ok(await isInView(session.page, 1234), 'the revealed row is scrolled into view');
    assert.equal(await session.page.locator('[data-testid="filter"]').inputValue(), '');
    assert.equal(session.problems.length, 0, session.problems.join('\n'));
  } finally {
    await session.close();
  }
});

test('a reveal after loading moves the selection; an unknown name changes nothing', async () => {
  const session = await ui.harness.open({ server: ui.server, modelPath });
  try {
    await session.page
      .locator('body[data-state="ready"]')
      .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
    await session.postToWebview({ type: 'reveal', tensorName: 'blocks.7.fc.weight' });
    await session.page
      .locator('[data-testid="tensor-row"][data-index="7"][aria-selected="true"]')
      .waitFor();
    assert.equal(
      await session.page.locator('[data-testid="tensor-row"][aria-selected="true"]').count(),
      1,
    );
    await session.postToWebview({ type: 'reveal', tensorName: 'blocks.1499.fc.weight' });
    await session.page
      .locator('[data-testid="tensor-row"][data-index="1499"][aria-selected="true"]')
      .waitFor();
    assert.ok(await isInView(session.page, 1499));
    // postToWebview resolves once the page's message listener has run (dispatchEvent is
    // synchronous); after the next animation frame, whatever it scheduled is drawn too.
    await session.postToWebview({ type: 'reveal', tensorName: 'no.such.tensor' });
    await nextFrame(session.page);
    assert.equal((await selectedRow(session.page)).index, 1499);
    // The histogram follows the selection, as for a click.
    await session.page
      .locator('[data-testid="histogram"]', { hasText: 'blocks.1499.fc.weight' })
      .waitFor({ timeout: READY_TIMEOUT_MS });
  } finally {
    await session.close();
  }
});

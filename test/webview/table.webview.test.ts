/**
 * The layer table on a real model (Silero VAD v5: 341 tensors, 16 of them weights, every
 * name twice under an If node's branches), in headless Chromium with the real server:
 * shortened names with the shared prefix above, the Weights / All tensors views, group by
 * module, column widths and hidden columns remembered across a reload, and the tensor panel
 * in view after a selection at 1600×1000 and 1280×720. Saves the README's screenshots of
 * the table and panel at 1280×720 in a light and a dark theme.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { Theme, WebviewSession } from '../support/webviewHarness';
import { useWebviewHarness } from '../support/webviewSession';

const READY_TIMEOUT_MS = 90_000;
const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const SCREENSHOTS = path.resolve('docs/screenshots');
const ROWS = '[data-testid="tensor-row"]';

const ui = useWebviewHarness({ folderPrefix: 'layerlens-table-webview-', workers: 2 });

async function open(
  options: {
    savedState?: unknown;
    viewport?: { width: number; height: number };
    theme?: Theme;
  } = {},
): Promise<WebviewSession> {
  const session = await ui.harness.open({ server: ui.server, modelPath: SILERO_V5 }, options);
  await session.page.waitForSelector('body[data-state="ready"]', { timeout: READY_TIMEOUT_MS });
  // The Weights view applies once the server has said which tensors are weights.
  await session.page
    .locator('[data-testid="table-count"]', { hasText: /weights|tensors$/ })
    .waitFor({ timeout: READY_TIMEOUT_MS });
  return session;
}

/** Count label, e.g. "16 weights of 341 tensors". */
async function countText(page: Page): Promise<string> {
  return (await page.locator('[data-testid="table-count"]').innerText()).trim();
}

async function nameCells(page: Page): Promise<{ text: string; title: string }[]> {
  return page.locator(`${ROWS} .ll-col-name`).evaluateAll((cells) =>
    cells.map((cell) => ({
      text: (cell.textContent ?? '').trim(),
      title: cell.getAttribute('title') ?? '',
    })),
  );
}

test('names: the shared prefix shows once above; the branches stay apart; tooltips hold full names', async () => {
  const session = await open();
  try {
    const { page } = session;
    assert.equal(await page.locator('[data-testid="name-prefix-text"]').innerText(), 'If_0_');
    const cells = await nameCells(page);
    assert.equal(cells.length, 16, JSON.stringify(cells));
    assert.ok(
      cells.every((cell) => cell.title.startsWith('If_0_') && cell.title.length > cell.text.length),
    );
    assert.equal(new Set(cells.map((cell) => cell.text)).size, 16, 'every shown name differs');
    const conv = cells.filter((cell) => cell.text.endsWith('encoder.0.reparam_conv.weight'));
    assert.deepEqual(conv.map((cell) => cell.text).sort(), [
      'else_…encoder.0.reparam_conv.weight',
      'then_…encoder.0.reparam_conv.weight',
    ]);
    // The lead (the branch) is never cut, even in a narrow column.
    const lead = page.locator(`${ROWS} .ll-col-name .ll-lead`).first();
    assert.match(await lead.innerText(), /^(else|then)_…$/);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('Weights is the default view; All tensors shows every tensor; spectra only for weights', async () => {
  const session = await open();
  try {
    const { page } = session;
    assert.equal(await countText(page), '16 weights of 341 tensors');
    assert.equal(
      await page
        .locator('[data-testid="tensor-view"] [data-view="weights"]')
        .getAttribute('aria-pressed'),
      'true',
    );
    await page.locator('[data-testid="tensor-view"] [data-view="all"]').click();
    assert.equal(await countText(page), '341 tensors');
    assert.equal((session.savedState as { tensorView?: string }).tensorView, 'all');
    // Spectra were asked for weights only (the int64 shapes and biases have none).
    const spectrumIndices = session.posted.flatMap((message) =>
      message.type === 'request' && message.name === 'spectrum'
        ? [(message.params as { index: number }).index]
        : [],
    );
    // The answer to the webview's weightTensors request.
    const weightRequest = session.received.find(
      (message) =>
        message.type === 'response' &&
        'result' in message &&
        typeof message.result === 'object' &&
        message.result !== null &&
        'indices' in message.result,
    ) as unknown as { result: { indices: number[] } } | undefined;
    assert.ok(weightRequest, 'the webview asked for the weights');
    const weightSet = new Set(weightRequest.result.indices);
    assert.ok(spectrumIndices.length > 0, 'some spectra were computed');
    assert.ok(
      spectrumIndices.every((index) => weightSet.has(index)),
      `spectra of non-weights: ${spectrumIndices.filter((i) => !weightSet.has(i)).join(', ')}`,
    );
    await page.locator('[data-testid="tensor-view"] [data-view="weights"]').click();
    assert.equal(await countText(page), '16 weights of 341 tensors');
  } finally {
    await session.close();
  }
});

test('group by module: collapsible groups with per-group totals', async () => {
  const session = await open();
  try {
    const { page } = session;
    await page.locator('[data-testid="group-by-module"]').check();
    const groups = page.locator('[data-testid="group-row"]');
    // Weights by module: stft, four encoder convolutions, the LSTM and the decoder, per branch.
    assert.equal(await groups.count(), 14);
    const conv = groups.filter({ hasText: 'else_…encoder.0.reparam_conv' });
    assert.match(await conv.innerText(), /1 tensor · 25K params · 97\.5 KB/);
    const lstm = groups.filter({ hasText: 'else_…decoder.rnn' }).first();
    assert.match(await lstm.innerText(), /2 tensors · 131K params · 512\.0 KB/);
    assert.equal(await page.locator(ROWS).count(), 16);
    await lstm.click();
    assert.equal(await lstm.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.locator(ROWS).count(), 14);
    const saved = session.savedState as { groupByModule: boolean; collapsedGroups: string[] };
    assert.equal(saved.groupByModule, true);
    assert.deepEqual(saved.collapsedGroups, ['If_0_else_branch__Inline_0__decoder.rnn']);
  } finally {
    await session.close();
  }
});

test('column widths and hidden columns are remembered across a reload; the name column stays pinned', async () => {
  const first = await open();
  let saved: unknown;
  try {
    const { page } = first;
    const header = page.locator('.ll-grid-header [data-column="shape"]');
    const before = (await header.boundingBox())!;
    const handle = (await page.locator('[data-testid="resize-shape"]').boundingBox())!;
    await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
    await page.mouse.down();
    await page.mouse.move(handle.x + 80, handle.y + handle.height / 2, { steps: 4 });
    await page.mouse.up();
    const after = (await header.boundingBox())!;
    assert.ok(
      Math.abs(after.width - (before.width + 80 - handle.width / 2)) < 6,
      `${before.width} → ${after.width}`,
    );
    await page.locator('[data-testid="columns-menu"] summary').click();
    await page.locator('[data-testid="columns-menu"] input[data-column="mean"]').uncheck();
    assert.equal(await page.locator('.ll-grid-header [data-column="mean"]').isHidden(), true);
    assert.equal(await page.locator(`${ROWS} .ll-col-mean`).first().isHidden(), true);
    saved = first.savedState;
    const layout = saved as { columnWidths: Record<string, number>; hiddenColumns: string[] };
    assert.ok(Math.abs(layout.columnWidths.shape! - after.width) < 2);
    assert.deepEqual(layout.hiddenColumns, ['mean']);

    // Scrolled sideways, the name column stays at the grid's left edge.
    const grid = page.locator('[role="grid"]');
    const gridBox = (await grid.boundingBox())!;
    await grid.evaluate((node) => {
      node.scrollLeft = 400;
    });
    const nameBox = (await page.locator(`${ROWS} .ll-col-name`).first().boundingBox())!;
    assert.ok(Math.abs(nameBox.x - gridBox.x) < 3, `name at ${nameBox.x}, grid at ${gridBox.x}`);
  } finally {
    await first.close();
  }
  const second = await open({ savedState: saved });
  try {
    const { page } = second;
    const width = (await page.locator('.ll-grid-header [data-column="shape"]').boundingBox())!
      .width;
    const remembered = (saved as { columnWidths: Record<string, number> }).columnWidths.shape!;
    assert.ok(Math.abs(width - remembered) < 2, `${width} vs ${remembered}`);
    assert.equal(await page.locator('.ll-grid-header [data-column="mean"]').isHidden(), true);
    assert.equal(await page.locator(`${ROWS} .ll-col-mean`).first().isHidden(), true);
  } finally {
    await second.close();
  }
});

for (const viewport of [
  { width: 1600, height: 1000 },
  { width: 1280, height: 720 },
]) {
  test(`the tensor panel is in view after a selection at ${viewport.width}×${viewport.height}`, async () => {
    const session = await open({ viewport });
    try {
      const { page } = session;
      await page.locator(ROWS).nth(3).click();
      await page.locator('.ll-detail-title', { hasText: 'encoder' }).waitFor();
      const box = (await page.locator('.ll-detail').boundingBox())!;
      assert.ok(box.y >= 0 && box.x >= 0, `panel at ${box.x},${box.y}`);
      assert.ok(box.y + box.height <= viewport.height, `panel bottom ${box.y + box.height}`);
      assert.ok(box.x + box.width <= viewport.width, `panel right ${box.x + box.width}`);
      // The selected row is in view too.
      const row = (await page.locator(`${ROWS}[aria-selected="true"]`).boundingBox())!;
      assert.ok(row.y >= 0 && row.y + row.height <= viewport.height);
      assert.deepEqual(session.problems, []);
    } finally {
      await session.close();
    }
  });
}

for (const theme of ['light', 'dark'] as const) {
  test(`screenshot: table and tensor panel at 1280×720, ${theme} theme`, async () => {
    const session = await open({ viewport: { width: 1280, height: 720 }, theme });
    try {
      const { page } = session;
      await page.locator(ROWS).filter({ hasText: 'rnn.weight_ih' }).first().click();
      await page.locator('.ll-histogram-chart svg').first().waitFor();
      mkdirSync(SCREENSHOTS, { recursive: true });
      const file = path.join(SCREENSHOTS, `table-panel-${theme}.png`);
      await page.screenshot({ path: file });
      copyFileSync(file, await session.screenshot(`table-panel-${theme}`));
    } finally {
      await session.close();
    }
  });
}

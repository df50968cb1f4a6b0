/**
 * A quantized ONNX model (built with Python onnx + NumPy) in headless Chromium, answered
 * by the real server: the DType column names each weight's scheme, and the histogram
 * panel's Codes toggle shows the raw integer grid (levels used, one bar per code) of the
 * weight whose decoded values it shows otherwise.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { writeQuantizedModels, type QuantizedModelReference } from '../support/quantizedOnnx';
import { useWebviewSession, WEBVIEW_READY_TIMEOUT_MS } from '../support/webviewSession';

let references: Record<string, QuantizedModelReference>;

const ui = useWebviewSession({
  folderPrefix: 'layerlens-quantized-webview-',
  workers: 2,
  model: async (folder) => {
    references = await writeQuantizedModels(folder);
    return path.join(folder, 'qdq_per_axis.onnx');
  },
});

async function select(page: Page, name: string): Promise<void> {
  await page.locator('[data-testid="filter"]').fill(name);
  const row = page.locator('[data-testid="tensor-row"]').first();
  await row.waitFor({ timeout: 10_000 });
  await row.click();
}

const bars = (page: Page) => page.locator('[data-testid="histogram"] rect.ll-bar');

test('the Codes toggle shows the levels a quantized weight uses, one bar per code', async () => {
  const { page } = ui.session;
  const reference = references.qdq_per_axis!.weights.M_q!;
  await select(page, 'M_q');
  const dtype = page.locator('[data-testid="tensor-row"] .ll-col-dtype').first();
  assert.equal((await dtype.textContent())?.trim(), 'uint8 per-channel');
  assert.match(
    (await dtype.getAttribute('title')) ?? '',
    /per channel.*values shown decoded to float32/,
  );

  // Values first: the decoded values' histogram over their own range.
  await bars(page).first().waitFor({ timeout: WEBVIEW_READY_TIMEOUT_MS });
  const valueBars = await bars(page).count();
  await page.locator('[data-testid="histogram-codes"]').click();
  const note = page.locator('[data-testid="codes-note"]');
  await note.filter({ hasText: 'levels used' }).waitFor({ timeout: 10_000 });
  const min = Math.min(...reference.codes);
  const max = Math.max(...reference.codes);
  assert.equal(
    (await note.textContent())?.trim(),
    `${reference.levelsUsed} of 256 levels used (8-bit unsigned codes ${min}…${max})`,
  );
  // A string, not a function: this file is compiled without the DOM's types.
  await page.waitForFunction(
    `document.querySelectorAll('[data-testid="histogram"] rect.ll-bar').length === ${max - min + 1}`,
    undefined,
    { timeout: 10_000 },
  );
  const axisLabel = page.locator('[data-testid="histogram"] text.ll-axis-label').first();
  assert.equal(await axisLabel.textContent(), 'code');
  await ui.session.screenshot('quantized-codes');

  await page.locator('[data-testid="histogram-values"]').click();
  assert.equal(await bars(page).count(), valueBars, 'back to the decoded values');
  assert.equal(await note.isHidden(), true);

  // A plain tensor (the Reshape's shape) has no codes to show. It is no weight: the
  // Weights view says where it is.
  await page.locator('[data-testid="filter"]').fill('flat');
  await page
    .locator('.ll-grid-empty', {
      hasText: 'No weight matches “flat”; 1 tensor in All tensors does.',
    })
    .waitFor({ timeout: 10_000 });
  await page.locator('[data-testid="tensor-view"] [data-view="all"]').click();
  await select(page, 'flat');
  assert.equal(await page.locator('[data-testid="histogram-codes"]').isHidden(), true);
  assert.deepEqual(ui.session.problems, []);
});

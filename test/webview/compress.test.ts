/**
 * The compression side of the webview in headless Chromium, on a real safetensors file
 * answered by the real server core: selecting several rows (ctrl/cmd-click, shift-click),
 * the context VS Code's row menu receives, the Compress button, and the report view of a
 * real compression, with its verdict: "Validated" only for an ONNX model compared on
 * inputs that can show a difference, "Not validated" and the reasons otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { compressModel } from '../../src/server/compress';
import { writeSafetensors } from '../support/safetensorsBuilder';
import { writeModel } from '../support/onnxBuilder';
import { saturatedSigmoidNet } from '../support/validationModels';
import { writeGaussianMlp } from '../support/gaussianMlp';
import { useWebviewSession } from '../support/webviewSession';

const row = (page: Page, index: number) =>
  page.locator(`[data-testid="tensor-row"][data-index="${index}"]`);

async function selectedIndices(page: Page): Promise<number[]> {
  const indices = await page
    .locator('[data-testid="tensor-row"][aria-selected="true"]')
    .evaluateAll((elements) => elements.map((e) => Number(e.getAttribute('data-index'))));
  return indices.sort((a, b) => a - b);
}

/** The context VS Code collects on a right-click: the row's own merged over its ancestors'. */
async function menuContext(page: Page, index: number): Promise<Record<string, unknown>> {
  const contexts = await row(page, index).evaluate((start) => {
    const found: string[] = [];
    for (let node = start.closest('[data-vscode-context]'); node;) {
      found.push(node.getAttribute('data-vscode-context')!);
      node = node.parentElement?.closest('[data-vscode-context]') ?? null;
    }
    return found;
  });
  return Object.assign({}, ...contexts.reverse().map((text) => JSON.parse(text) as object));
}

const ui = useWebviewSession({
  folderPrefix: 'layerlens-webview-compress-',
  model: (folder) =>
    writeSafetensors(
      path.join(folder, 'mlp.safetensors'),
      Array.from({ length: 10 }, (_, index) => ({
        name: `layers.${index}.weight`,
        dtype: 'F32' as const,
        shape: [8, 16],
        data: new Float32Array(128).map((_, k) => Math.sin(index * 7 + k)),
      })),
    ),
});

test('ctrl-click adds rows, shift-click selects a range; the row menu gets the selection', async () => {
  const { page } = ui.session;
  await row(page, 1).click();
  assert.deepEqual(await selectedIndices(page), [1]);
  await row(page, 3).click({ modifiers: ['ControlOrMeta'] });
  assert.deepEqual(await selectedIndices(page), [1, 3]);
  await row(page, 6).click({ modifiers: ['Shift'] });
  assert.deepEqual(await selectedIndices(page), [3, 4, 5, 6]);
  await row(page, 1).click({ modifiers: ['ControlOrMeta'] });
  await row(page, 5).click({ modifiers: ['ControlOrMeta'] });
  assert.deepEqual(await selectedIndices(page), [1, 3, 4, 6]);
  assert.equal(await page.getByTestId('compress').innerText(), 'Compress 4 tensors…');

  await row(page, 4).click({ button: 'right' });
  assert.deepEqual(await selectedIndices(page), [1, 3, 4, 6], 'a row in the selection keeps it');
  assert.deepEqual(await menuContext(page, 4), {
    tensorIndices: [1, 3, 4, 6],
    webviewSection: 'tensorRow',
    tensorIndex: 4,
    tensorName: 'layers.4.weight',
    preventDefaultContextMenuItems: true,
    // From the page: the model can be compressed (package.json's Compress… and Plan need it).
    modelCompresses: true,
  });

  await row(page, 8).click({ button: 'right' });
  assert.deepEqual(await selectedIndices(page), [8], 'a row outside the selection replaces it');
  assert.deepEqual((await menuContext(page, 8)).tensorIndices, [8]);

  const gridContext = JSON.parse(
    (await page.getByRole('grid').getAttribute('data-vscode-context')) ?? '{}',
  ) as Record<string, unknown>;
  assert.deepEqual(
    gridContext,
    {
      webviewSection: 'tensorRow',
      tensorIndices: [8],
      preventDefaultContextMenuItems: true,
    },
    'the context-menu key on the focused grid gets the selection (no modelHasGraph: no graph)',
  );

  await page.keyboard.press('ArrowUp');
  assert.deepEqual(await selectedIndices(page), [7], 'the keyboard still moves one selection');
  assert.deepEqual(ui.session.problems, []);
});

test('the Compress button asks the host to compress the selected tensors', async () => {
  const { page } = ui.session;
  await row(page, 2).click();
  await row(page, 3).click({ modifiers: ['Shift'] });
  const compress = ui.session.nextPosted('compress');
  await page.getByTestId('compress').click();
  assert.deepEqual(await compress, { type: 'compress', indices: [2, 3] });
});

test('a compression report shows totals and per-tensor results; its buttons reach the host', async () => {
  const { page } = ui.session;
  const report = await compressModel(ui.modelPath, {
    tensors: [2, 3],
    options: { method: 'int8', storeQuantized: true },
  });
  await ui.session.postToWebview({ type: 'compressionReport', report });
  const view = page.getByTestId('compression-report');
  await view.waitFor({ state: 'visible' });
  const text = await view.innerText();
  assert.match(text, /Compressed into mlp\.int8\.safetensors/i);
  assert.match(text, /int8 per channel, stored as int8 \+ scales/);
  assert.match(text, /2 compressed/);
  assert.match(text, /no graph to run/);
  const verdict = view.getByTestId('report-verdict');
  assert.equal(await verdict.getAttribute('data-validated'), 'false');
  assert.equal(await view.getByTestId('report-verdict-badge').innerText(), 'Not validated');
  assert.match(
    await view.getByTestId('report-verdict-reasons').innerText(),
    /a safetensors file has no graph to run: the outputs were not compared/,
  );
  assert.equal(await view.getByText('Validated', { exact: true }).count(), 0);
  const tensorRows = view.locator('.ll-report-tensors tbody tr');
  assert.equal(await tensorRows.count(), 2);
  assert.match(await tensorRows.first().innerText(), /layers\.2\.weight/);
  await ui.session.screenshot('compression-report');

  // The report opens in its own collapsible area below the table and the tensor panel,
  // which keep their place; folding the area is remembered.
  const area = page.getByTestId('reports-area');
  assert.equal(await area.getAttribute('open'), '');
  const tableBottom = (await page.getByTestId('layer-table').boundingBox())!;
  const areaTop = (await area.boundingBox())!;
  assert.ok(areaTop.y >= tableBottom.y + tableBottom.height, 'the report area is below the table');
  await area.locator('summary').click();
  assert.equal(await view.isVisible(), false);
  const reportsOpen = () => (ui.session.savedState as { reportsOpen?: boolean }).reportsOpen;
  // setState reaches Node through a binding, a moment after the click.
  for (let wait = 0; wait < 100 && reportsOpen() !== false; wait++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(reportsOpen(), false);
  await area.locator('summary').click();
  assert.equal(await view.isVisible(), true);

  let action = ui.session.nextPosted('reportAction');
  await view.getByRole('button', { name: 'Open new model' }).click();
  assert.deepEqual(await action, { type: 'reportAction', action: 'openOutput' });
  action = ui.session.nextPosted('reportAction');
  await view.getByRole('button', { name: 'Compare with original' }).click();
  assert.deepEqual(await action, { type: 'reportAction', action: 'compareWithOriginal' });
  action = ui.session.nextPosted('reportAction');
  await view.getByRole('button', { name: 'Close' }).click();
  assert.deepEqual(await action, { type: 'reportAction', action: 'dismiss' });
  assert.equal(await page.getByTestId('compression-report').count(), 0);
  assert.deepEqual(ui.session.problems, []);
});

test('the report says "Not validated" and why for a saturated sigmoid, "Validated" for a responsive MLP', async () => {
  const { page } = ui.session;
  const saturated = await writeModel(ui.folder, 'saturated.onnx', saturatedSigmoidNet());
  const notValidated = await compressModel(saturated, {
    tensors: [],
    options: { method: 'int8' },
  });
  assert.equal(notValidated.verdict.validated, false);
  await ui.session.postToWebview({ type: 'compressionReport', report: notValidated });
  const view = page.getByTestId('compression-report');
  await view
    .getByTestId('report-verdict-badge')
    .filter({ hasText: 'Not validated' })
    .waitFor({ state: 'visible' });
  const reasons = await view.getByTestId('report-verdict-reasons').locator('li').allInnerTexts();
  assert.deepEqual(reasons, [...notValidated.verdict.reasons]);
  assert.match(reasons.join('\n'), /output 'score' is pinned near 1 for every sample input/);
  assert.match(
    await view.getByTestId('report-deviation-caption').innerText(),
    /on 8 sample inputs: the worst sample, and the mean/,
  );
  const headers = await view.locator('.ll-report-outputs th').allInnerTexts();
  assert.deepEqual(headers, [
    'Output',
    'Samples',
    'Max abs diff (worst)',
    'Relative L2 (worst)',
    'Relative L2 (mean)',
    'Cosine (worst)',
    'Cosine (mean)',
  ]);
  assert.match(await view.locator('.ll-report-outputs tbody tr').first().innerText(), /score\s+8/);
  await ui.session.screenshot('compression-report-not-validated');

  const mlp = await writeGaussianMlp(ui.folder, { input: 32, hidden: 64, output: 16 });
  const validated = await compressModel(mlp, { tensors: [], options: { method: 'int8' } });
  assert.deepEqual([validated.verdict.validated, validated.verdict.reasons], [true, []]);
  await ui.session.postToWebview({ type: 'compressionReport', report: validated });
  await view
    .getByTestId('report-verdict-badge')
    .filter({ hasText: /^Validated$/ })
    .waitFor({ state: 'visible' });
  assert.equal(await view.getByTestId('report-verdict').getAttribute('data-validated'), 'true');
  assert.equal(await view.getByTestId('report-verdict-reasons').count(), 0);
  // The badge never stands alone: the worst cosine it was measured at is beside it.
  const cosine = validated.verdict.worstCosine!.toPrecision(4);
  assert.match(
    await view.getByTestId('report-verdict').innerText(),
    new RegExp(`worst output cosine ${cosine.replace('.', '\\.')} over 8 samples`),
  );
  assert.match((await view.textContent()) ?? '', /Compressed into mlp\.int8\.onnx/);
  await ui.session.screenshot('compression-report-validated');
  assert.deepEqual(ui.session.problems, []);
});

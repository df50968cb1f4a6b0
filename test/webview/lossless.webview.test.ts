/**
 * The webview on a packed model (.llz) in headless Chromium, answered by the real server
 * core: the table shows the packed model's tensors with their statistics, and the lossless
 * columns (exponent entropy, packed ratio) fill in and sort; a fine-tune delta shows its
 * difference from the base model. It offers no Compress… and no Sensitivity tab.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { LosslessService } from '../../src/server/lossless/service';
import { ModelService } from '../../src/server/modelService';
import type { TensorCompressibility } from '../../src/shared/lossless';
import { formatBytes } from '../../src/shared/format';
import { writeSafetensors } from '../support/safetensorsBuilder';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let service: ModelService;
let lossless: LosslessService;
let packed: string;

const ui = useWebviewHarness({
  folderPrefix: 'layerlens-lossless-webview-',
  workers: 2,
  setUp: async ({ folder }) => {
    const model = path.join(folder, 'silero_vad_v5.onnx');
    await copyFile(SILERO_V5, model);
    service = new ModelService({ workerCount: 2 });
    lossless = new LosslessService(service, 2);
    packed = (await lossless.pack(model)).out;
  },
});

after(() => {
  lossless?.dispose();
  service?.dispose();
});

test('a packed model shows its tensors, statistics and sortable lossless columns', async () => {
  const session = await ui.harness.open({ server: ui.server, modelPath: packed });
  const { page } = session;
  try {
    await page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout: 90_000 });
    await page
      .getByText('original SHA-256', { exact: false })
      .first()
      .waitFor({ state: 'attached' });
    // A packed model is read, not compressed or swept: the webview offers neither (the
    // server's capabilities say so), while the tabs that read it stay.
    assert.equal(await page.getByTestId('compress').isHidden(), true);
    assert.equal(await page.getByTestId('tab-sensitivity').isHidden(), true);
    assert.equal(await page.getByTestId('tab-spectrum').isVisible(), true);
    // Nor do the menus (package.json's Compress… and Plan need the page's modelCompresses)
    // or the graph's overlays (no sensitivity to colour by).
    const pageContext = JSON.parse(
      (await page.locator('body').getAttribute('data-vscode-context')) ?? '{}',
    ) as { modelCompresses?: boolean };
    assert.equal(pageContext.modelCompresses, undefined);
    const sensitivityOverlay = (list: string) =>
      page.locator(`[data-testid="${list}"] option[value="sensitivity"]`);
    assert.equal(await sensitivityOverlay('graph-overlay-fill').isDisabled(), true);
    assert.equal(await sensitivityOverlay('graph-overlay-fill').count(), 1);
    const ratioHeader = page.locator('[role="columnheader"].ll-col-packRatio');
    assert.equal(await ratioHeader.locator('.ll-sort-label').textContent(), 'Packed');
    assert.equal(
      await page.locator('[role="columnheader"].ll-col-expEntropy .ll-sort-label').textContent(),
      'Exp. H',
    );
    // Sorted by packed ratio ascending, the best-packing tensor comes first once all are in.
    await ratioHeader.locator('button').click();
    await ratioHeader.locator('button').click();
    assert.equal(await ratioHeader.getAttribute('aria-sort'), 'ascending');
    // Expected values from the server's per-tensor results, summed here: the panel's total
    // comes from totalCompressibility() in src/shared/lossless.ts, which the test leaves out.
    const summary = await service.openModel(packed);
    const indices = Array.from({ length: summary.tensorCount }, (_, i) => i);
    const results = await lossless.compressibility(packed, indices);
    assert.deepEqual(
      results.filter((result) => 'error' in result),
      [],
      'every tensor of the packed model is measured',
    );
    const measured = results as TensorCompressibility[];
    const best = measured.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    const tensors = (await service.tensors(packed, 0, summary.tensorCount)).tensors;
    const rawBytes = tensors.reduce((sum, tensor) => sum + tensor.byteLength, 0);
    assert.equal(
      measured.reduce((sum, result) => sum + result.rawBytes, 0),
      rawBytes,
      'the measured tensors cover all the tensor data',
    );
    // A pack stores a repeated chunk once, and the rest of the file as it is.
    const packedBytes =
      measured.reduce((sum, result) => sum + result.packedBytes - (result.repeatedBytes ?? 0), 0) +
      Math.max(0, summary.totalBytes - rawBytes);
    const totalRatio = packedBytes / summary.totalBytes;

    // Once every ratio is in, the first row is the best-packing tensor.
    await page
      .locator('[data-testid="tensor-row"]')
      .first()
      .locator('.ll-col-packRatio', { hasText: new RegExp(`^${best.ratio.toFixed(3)}$`) })
      .waitFor({ timeout: 60_000 });
    await page
      .locator('.ll-col-packRatio.ll-pending, .ll-col-packRatio[data-state="pending"]')
      .first()
      .waitFor({ state: 'detached', timeout: 60_000 });
    assert.equal(
      await page
        .locator('[data-testid="tensor-row"]')
        .first()
        .locator('.ll-col-packRatio')
        .textContent(),
      best.ratio.toFixed(3),
    );
    await page
      .locator('[data-testid="pack-total"]', {
        hasText: `Packs losslessly to ≈ ${formatBytes(packedBytes)} of ${formatBytes(summary.totalBytes)} (${totalRatio.toFixed(3)})`,
      })
      .waitFor({ state: 'visible', timeout: 60_000 });
    // The treemap's list, refreshed as the rows came in, leaves it out too.
    assert.equal(await sensitivityOverlay('treemap-overlay').isDisabled(), true);
    assert.equal(await sensitivityOverlay('treemap-overlay').count(), 1);
    await session.screenshot('lossless-packed-sorted');
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('a fine-tune delta shows its difference from the base model per tensor', async () => {
  const count = 4096;
  const base = new Float32Array(count).map((_, i) => Math.sin(i) * 0.02);
  const tuned = base.slice();
  for (let i = 0; i < count; i += 4) tuned[i] = tuned[i]! + 0.001;
  const basePath = await writeSafetensors(path.join(ui.folder, 'base.safetensors'), [
    { name: 'fc.weight', dtype: 'F32', shape: [64, 64], data: base },
    { name: 'fc.bias', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
  ]);
  const tunedPath = await writeSafetensors(path.join(ui.folder, 'tuned.safetensors'), [
    { name: 'fc.weight', dtype: 'F32', shape: [64, 64], data: tuned },
    { name: 'fc.bias', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
  ]);
  const delta = (await lossless.pack(tunedPath, { base: basePath })).out;
  const session = await ui.harness.open(
    { server: ui.server, modelPath: delta },
    {
      viewport: { width: 1920, height: 700 },
      // All tensors: the bias (no weight) is checked too.
      savedState: { tensorView: 'all' },
    },
  );
  const { page } = session;
  try {
    await page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout: 90_000 });
    const header = page.locator('[role="columnheader"].ll-col-sameBits');
    assert.ok(await header.isVisible(), 'the delta columns are shown for a delta');
    const sameOf = (index: number) =>
      page.locator(`[data-testid="tensor-row"][data-index="${index}"] .ll-col-sameBits`);
    // fc.weight: 3 of 4 values untouched; fc.bias: all identical.
    const weightIndex = (await service.tensors(delta, 0, 10)).tensors.find(
      (t) => t.name === 'fc.weight',
    )!.index;
    const biasIndex = (await service.tensors(delta, 0, 10)).tensors.find(
      (t) => t.name === 'fc.bias',
    )!.index;
    // The delta columns fill in: wait for both cells to show a percentage.
    for (const index of [weightIndex, biasIndex]) {
      await page
        .locator(`[data-testid="tensor-row"][data-index="${index}"] .ll-col-sameBits`, {
          hasText: /%$/,
        })
        .waitFor({ timeout: 60_000 });
    }
    assert.equal(await sameOf(weightIndex).textContent(), '75.0%');
    assert.equal(await sameOf(biasIndex).textContent(), '100.0%');
    await session.screenshot('lossless-delta');
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
  // A model that is not a delta hides those columns.
  const plain = await ui.harness.open({ server: ui.server, modelPath: basePath });
  try {
    await plain.page
      .locator('body[data-state="ready"]')
      .waitFor({ state: 'attached', timeout: 60_000 });
    assert.equal(
      await plain.page.locator('[role="columnheader"].ll-col-sameBits').isVisible(),
      false,
    );
  } finally {
    await plain.close();
  }
});

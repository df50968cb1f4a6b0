/**
 * Every label state of the report and plan views in headless Chromium, each checked
 * against the data it shows (real compressions, a real plan applied by the real server
 * code, a real lossless measurement): one method, a mixed plan, a target met, a target
 * missed, an unchanged size, and the toolbar's lossless estimate against the file size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Locator } from 'playwright-core';
import { compressModel } from '../../src/server/compress';
import { compressPerTensor } from '../../src/server/compress/perTensor';
import { LosslessService } from '../../src/server/lossless/service';
import { ModelService } from '../../src/server/modelService';
import { planModel } from '../../src/server/plan';
import { applyRecipe } from '../../src/server/plan/apply';
import type { CompressionReport } from '../../src/shared/compress';
import { methodShareLines, methodsHeadline } from '../../src/shared/compressText';
import { formatBytes, formatRatio } from '../../src/shared/format';
import { packEstimateText } from '../../src/shared/lossless';
import { writeSafetensors } from '../support/safetensorsBuilder';
import { useWebviewSession } from '../support/webviewSession';
import { writeGaussianMlp } from '../support/gaussianMlp';

const ui = useWebviewSession({
  folderPrefix: 'layerlens-webview-labels-',
  model: writeGaussianMlp,
});

/** The report view's facts: label → text. */
async function facts(view: Locator): Promise<Record<string, string>> {
  const terms = await view.locator('dl.ll-facts > dt').allInnerTexts();
  const values = await view.locator('dl.ll-facts > dd').allInnerTexts();
  return Object.fromEntries(terms.map((term, i) => [term.trim(), values[i]!.trim()]));
}

async function showReport(report: CompressionReport): Promise<Locator> {
  await ui.session.postToWebview({ type: 'compressionReport', report });
  const view = ui.session.page.getByTestId('compression-report');
  await view
    .locator('.ll-section-title', { hasText: path.basename(report.output) })
    .waitFor({ state: 'visible', timeout: 30_000 });
  return view;
}

const sizeLine = (before: number, after: number) =>
  `${formatBytes(before)} → ${formatBytes(after)} (${formatRatio(before, after)})`;

test('one method: its name and level, and the file size with its ratio in words', async () => {
  const report = await compressModel(ui.modelPath, { tensors: [], options: { method: 'int8' } });
  const view = await showReport(report);
  const shown = await facts(view);
  assert.equal(shown.Method, 'int8 per channel');
  assert.equal(shown.Methods, undefined);
  assert.equal(shown['File size'], sizeLine(report.fileBytesBefore, report.fileBytesAfter));
  assert.match(shown['File size']!, /\(\d+\.\d× smaller\)$/);
  assert.equal(await view.getByTestId('report-methods').count(), 0);
  assert.deepEqual(ui.session.problems, []);
});

test('a mixed plan says "mixed (N methods)" and lists each with its share', async () => {
  const report = await compressPerTensor(ui.modelPath, [
    { tensor: 'w1', options: { method: 'int4', blockSize: 128 } },
    { tensor: 'w2', options: { method: 'fp16' } },
  ]);
  const view = await showReport(report);
  const shown = await facts(view);
  assert.equal(shown.Method, undefined, 'not one method named for the whole file');
  const methods = view.getByTestId('report-methods');
  assert.equal(methodsHeadline(report), 'mixed (2 methods)');
  assert.match(await methods.innerText(), /^mixed \(2 methods\)/);
  assert.deepEqual(await methods.locator('li').allInnerTexts(), methodShareLines(report));
  assert.match(
    methodShareLines(report)[0]!,
    /^int4, block 128( \(matmulnbits\))?: 1 tensor, 32\.0 KB$/,
  );
  assert.match(methodShareLines(report)[1]!, /^float16 weights: 1 tensor, 16\.0 KB$/);
  await ui.session.screenshot('labels-mixed-report');
  assert.deepEqual(ui.session.problems, []);
});

test('an unchanged size reads "unchanged", never "1× smaller"', async () => {
  const stPath = await writeSafetensors(path.join(ui.folder, 'dense.safetensors'), [
    {
      name: 'fc.weight',
      dtype: 'F32',
      shape: [32, 64],
      data: new Float32Array(32 * 64).map((_, k) => Math.sin(k * 0.7)),
    },
  ]);
  const report = await compressModel(stPath, {
    tensors: [],
    options: { method: 'prune', sparsity: 0.5 },
  });
  const [pruned] = report.tensors;
  assert.equal(pruned!.bytesBefore, pruned!.bytesAfter, 'dense zeros take the same bytes');
  const view = await showReport(report);
  const shown = await facts(view);
  assert.equal(
    shown['Their bytes'],
    `${formatBytes(pruned!.bytesBefore)} → ${formatBytes(pruned!.bytesAfter)} (unchanged)`,
  );
  assert.equal(shown['File size'], sizeLine(report.fileBytesBefore, report.fileBytesAfter));
  assert.doesNotMatch(await view.innerText(), /\b1(\.0)?× (smaller|larger)/);
  assert.deepEqual(ui.session.problems, []);
});

test('a plan: status "met" once the measured file meets the target, no "Feasible"', async () => {
  const { page } = ui.session;
  const plan = await planModel(ui.modelPath, {
    target: { kind: 'ratio', value: 3 },
    measured: false,
  });
  assert.equal(plan.feasible, true);
  await ui.session.postToWebview({ type: 'plan', view: { plan } });
  const status = page.getByTestId('plan-status');
  await status.waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal(await status.getAttribute('data-state'), 'predicted');
  assert.equal(await status.innerText(), 'not applied yet; predicted to meet the target');

  const result = await applyRecipe(ui.modelPath, plan.recipe, { refine: false });
  assert.equal(result.targetMet, true);
  await ui.session.postToWebview({ type: 'plan', view: { plan, result } });
  await page.locator('[data-testid="plan-status"][data-state="met"]').waitFor({ timeout: 30_000 });
  assert.equal(await status.innerText(), 'met');
  const shown = await facts(page.getByTestId('plan-panel'));
  assert.equal(shown.Feasible, undefined);
  assert.equal(
    shown['Measured size'],
    sizeLine(result.report.fileBytesBefore, result.report.fileBytesAfter),
  );
  assert.ok(
    result.report.fileBytesAfter <= Math.floor(result.report.fileBytesBefore / 3),
    'met means the measured file is within the target',
  );
  assert.deepEqual(ui.session.problems, []);
});

test('a plan that misses: "missed: why" from the measured result, before it "predicted to miss"', async () => {
  const { page } = ui.session;
  const plan = await planModel(ui.modelPath, {
    target: { kind: 'ratio', value: 20 },
    measured: false,
  });
  assert.equal(plan.feasible, false);
  await ui.session.postToWebview({ type: 'plan', view: { plan } });
  const status = page.locator('[data-testid="plan-status"][data-state="out of reach"]');
  await status.waitFor({ timeout: 30_000 });
  assert.equal(await status.innerText(), `predicted to miss: ${plan.limits[0]}`);

  const result = await applyRecipe(ui.modelPath, plan.recipe, { refine: false });
  assert.equal(result.targetMet, false);
  await ui.session.postToWebview({ type: 'plan', view: { plan, result } });
  const missed = page.locator('[data-testid="plan-status"][data-state="missed"]');
  await missed.waitFor({ timeout: 30_000 });
  assert.equal(await missed.innerText(), `missed: ${result.missedBecause[0]}`);
  const text = await page.getByTestId('plan-panel').innerText();
  assert.doesNotMatch(text, /Feasible|yes, as predicted/);
  assert.match(text, /Target missed/);
  await ui.session.screenshot('labels-plan-missed');
  assert.deepEqual(ui.session.problems, []);
});

test('the lossless estimate is stated against the file size the overview shows', async () => {
  const { page } = ui.session;
  const models = new ModelService();
  const lossless = new LosslessService(models, 1);
  try {
    const summary = await models.openModel(ui.modelPath);
    const results = await lossless.compressibility(
      ui.modelPath,
      Array.from({ length: summary.tensorCount }, (_, i) => i),
    );
    const expected = packEstimateText(results, summary.totalBytes);
    const line = page.getByTestId('pack-total');
    await page
      .locator('[data-testid="pack-total"]', { hasText: 'Packs losslessly to' })
      .waitFor({ timeout: 60_000 });
    assert.equal(await line.innerText(), expected.text);
    const fileCard = page.locator('.ll-card', { hasText: 'File size' }).locator('.ll-card-value');
    assert.ok(
      expected.text.includes(` of ${await fileCard.innerText()} (`),
      `${expected.text} against the card's ${await fileCard.innerText()}`,
    );
    // The real pack lands near the estimate.
    const packed = await lossless.pack(ui.modelPath, { out: path.join(ui.folder, 'mlp.onnx.llz') });
    const ratio = Number(/\((\d\.\d+)\)$/.exec(expected.text)![1]);
    assert.ok(
      Math.abs(ratio - packed.packedBytes / packed.originalBytes) < 0.02,
      `estimate ${ratio}, pack ${packed.packedBytes / packed.originalBytes}`,
    );
  } finally {
    lossless.dispose();
  }
  assert.deepEqual(ui.session.problems, []);
});

/**
 * The Sensitivity tab in headless Chromium, answered by the real server core on Silero
 * VAD v5: the proxy arrives when the tab opens (labelled as a proxy), the measured sweep
 * runs from the button with a progress bar, the ranking chart follows the level select,
 * the selected layer's curves show measured and proxy lines, the table colours its
 * sensitivity column; a sweep can be cancelled. On a saturated-sigmoid model the measured
 * sweep is marked not trustworthy, with the reasons.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { clearSensitivityCache, computeSensitivity } from '../../src/server/sensitivity';
import { LspMethods, type SensitivityParams } from '../../src/shared/lsp';
import type { SensitivityResult } from '../../src/shared/sensitivity';
import type { ModelBackend, WebviewSession } from '../support/webviewHarness';
import { writeModel } from '../support/onnxBuilder';
import { saturatedSigmoidNet } from '../support/validationModels';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const READY_TIMEOUT_MS = 60_000;
const SWEEP_TIMEOUT_MS = 120_000;
const CONV = 'If_0_then_branch__Inline_0__encoder.1.reparam_conv.weight';

const ui = useWebviewHarness({ folderPrefix: 'layerlens-webview-sens-' });

async function waitReady(page: Page): Promise<void> {
  await page
    .locator('body[data-state="ready"]')
    .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
}

/**
 * The ranking's bar labels, once drawn: a new level replaces the chart at once, and the
 * bar chart draws its rows when its resize observer first fires, a frame later.
 */
async function barLabels(page: Page): Promise<string[]> {
  const titles = page.locator('[data-testid="sensitivity-chart"] g.ll-bar-row title');
  await titles.first().waitFor({ state: 'attached', timeout: 10_000 });
  return titles.allTextContents();
}

/**
 * The layer the ranking chart should put first at `level`, worked out here from the server's
 * values rather than with rankLayers() of src/shared/sensitivity.ts that the chart uses: the
 * largest measured deviation at that level, or the proxy's relative error for a layer the
 * sweep did not measure; the first such layer in file order on a tie.
 */
function mostSensitiveAt(result: SensitivityResult, level: string): string {
  let top: { name: string; value: number } | undefined;
  for (const layer of result.layers) {
    const point = layer.measured
      ? layer.measured.find((measured) => measured.key === level)?.deviation
      : layer.proxy.find((proxy) => proxy.key === level)?.relativeError;
    if (point !== undefined && (top === undefined || point > top.value)) {
      top = { name: layer.name, value: point };
    }
  }
  assert.ok(top, `some layer has a value at ${level}`);
  return top.name;
}

describe('Silero VAD v5: the Sensitivity tab', () => {
  let session: WebviewSession;

  before(async () => {
    clearSensitivityCache();
    session = await ui.harness.open(
      { server: ui.server, modelPath: SILERO_V5 },
      {
        viewport: { width: 1600, height: 1100 },
      },
    );
    await waitReady(session.page);
  });

  after(async () => {
    await session?.close();
  });

  test('proxy first, then the measured sweep: chart, level select, curves and table colours', async () => {
    const { page } = session;
    await page.locator('[data-testid="filter"]').fill(CONV);
    await page.locator('[data-testid="tensor-row"]').first().click();
    await page.locator('[data-testid="tab-sensitivity"]').click();
    const status = page.locator('[data-testid="sensitivity-status"]');
    await page
      .locator('[data-testid="sensitivity-chart"] svg')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    assert.match((await status.textContent()) ?? '', /^Proxy \(data-free\)/);
    const curves = page.locator('[data-testid="sensitivity-curves"]');
    assert.ok((await curves.locator('g[data-kind="proxy"]').count()) > 0);
    assert.equal(await curves.locator('g[data-kind="measured"]').count(), 0);
    assert.match(
      (await page.locator('.ll-sens-legend').textContent()) ?? '',
      /proxy: weight error/,
    );

    await page.locator('[data-testid="sensitivity-run"]').click();
    await page
      .locator('[data-testid="sensitivity-progress"]:not([hidden])')
      .waitFor({ state: 'attached', timeout: 5_000 });
    await page
      .locator('[data-testid="sensitivity-status"]', { hasText: /^Measured:/ })
      .waitFor({ timeout: SWEEP_TIMEOUT_MS });
    assert.match((await status.textContent()) ?? '', /runs in 1 onnxruntime session/);
    assert.ok((await curves.locator('g[data-kind="measured"]').count()) > 0);
    assert.ok((await curves.locator('g[data-kind="proxy"]').count()) > 0);

    // The ranking follows the level select and matches the server's ranking.
    const expected = await computeSensitivity(SILERO_V5, { indices: [], measured: true });
    for (const level of ['prune:0.5', 'int4:32']) {
      await page.locator('[data-testid="sensitivity-level"]').selectOption(level);
      const labels = await barLabels(page);
      const top = mostSensitiveAt(expected, level);
      assert.ok(labels[0]!.startsWith(top), `${level}: ${labels[0]} (expected ${top})`);
    }
    // The bars' shown names: each branch's twin keeps its branch, so no two read alike.
    const shown = await page
      .locator('[data-testid="sensitivity-chart"] text.ll-bar-label')
      .allTextContents();
    assert.ok(
      shown.some((label) => label.startsWith('else_…')),
      shown.join(', '),
    );
    assert.ok(
      shown.some((label) => label.startsWith('then_…')),
      shown.join(', '),
    );
    assert.equal(new Set(shown).size, shown.length, shown.join(', '));
    // A layer the sweep measured at 0 (the branch the sample rate does not run): a log
    // axis has no 0, so each zero is a diamond on the x axis beside the axis's "0".
    const zeroLayer = expected.layers.find((layer) =>
      layer.measured?.some((point) => point.deviation === 0),
    );
    assert.ok(zeroLayer, 'Silero v5 has a layer measured at 0');
    const zeroCount = zeroLayer.measured!.filter((point) => point.deviation === 0).length;
    await page.locator('[data-testid="filter"]').fill(zeroLayer.name);
    await page.locator('[data-testid="tensor-row"]').first().click();
    await curves
      .locator('g[data-kind="measured"] [data-testid="sens-zero"]')
      .first()
      .waitFor({ timeout: 10_000 });
    assert.equal(
      await curves.locator('g[data-kind="measured"] [data-testid="sens-zero"]').count(),
      zeroCount,
    );
    assert.equal(await curves.getByTestId('sens-zero-label').textContent(), '0');
    const axisY = await curves.getByTestId('sens-zero-label').getAttribute('y');
    const zeroYs = await curves
      .locator('g[data-kind="measured"] [data-testid="sens-zero"]')
      .evaluateAll((nodes) =>
        nodes.map((n) => /,([-\d.]+)\)/.exec(n.getAttribute('transform') ?? '')?.[1]),
      );
    assert.ok(
      zeroYs.every((value) => value === axisY),
      `${zeroYs} on the axis at ${axisY}`,
    );
    assert.ok(
      (await curves.locator('g[data-kind="measured"] circle').count()) <=
        zeroLayer.measured!.length - zeroCount,
      'no zero is drawn as a point on the log scale',
    );
    // The table's column shows the value at that level, coloured.
    await page.locator('[data-testid="filter"]').fill('');
    const heated = page.locator('[data-testid="tensor-row"] .ll-col-sensitivity.ll-heat');
    await heated.first().waitFor({ timeout: 10_000 });
    assert.ok((await heated.count()) >= 8);
    await session.screenshot('sensitivity-silero-v5');
    assert.deepEqual(session.problems, []);
  });

  test('a running sweep can be cancelled', async () => {
    clearSensitivityCache();
    const slow: ModelBackend = {
      server: ui.server,
      modelPath: SILERO_V5,
      intercept: async (method, params, signal, forward) => {
        if (method === LspMethods.sensitivity && (params as SensitivityParams).request.measured) {
          // Held until the page cancels it, as a long sweep would be.
          await new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => reject(new Error('cancelled'))),
          );
        }
        return forward();
      },
    };
    const cancelled = await ui.harness.open(slow, { viewport: { width: 1600, height: 1000 } });
    try {
      const { page } = cancelled;
      await waitReady(page);
      await page.locator('[data-testid="tab-sensitivity"]').click();
      await page
        .locator('[data-testid="sensitivity-chart"] svg')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      await page.locator('[data-testid="sensitivity-run"]').click();
      const cancel = cancelled.nextPosted('cancel');
      await page.locator('[data-testid="sensitivity-cancel"]').click();
      await page
        .locator('[data-testid="sensitivity-status"]', { hasText: 'Measured sweep cancelled.' })
        .waitFor({ timeout: 10_000 });
      await cancel; // the cancel reached the host
      assert.equal(await page.locator('[data-testid="sensitivity-run"]').isDisabled(), false);
    } finally {
      await cancelled.close();
    }
  });
});

describe('a saturated sigmoid: the measured sweep is marked not trustworthy', () => {
  let session: WebviewSession;

  before(async () => {
    const saturated = await writeModel(ui.folder, 'saturated.onnx', saturatedSigmoidNet());
    session = await ui.harness.open({ server: ui.server, modelPath: saturated });
    await waitReady(session.page);
  });

  after(async () => {
    await session?.close();
  });

  test('the input problems show with the measured values, not with the proxy', async () => {
    const { page } = session;
    await page.locator('[data-testid="tensor-row"]').first().click();
    await page.locator('[data-testid="tab-sensitivity"]').click();
    await page
      .locator('[data-testid="sensitivity-status"]', { hasText: /^Proxy \(data-free\)/ })
      .waitFor({ timeout: READY_TIMEOUT_MS });
    const problems = page.locator('[data-testid="sensitivity-input-problems"]');
    assert.equal(await problems.isHidden(), true, 'the proxy has no input problems');

    await page.locator('[data-testid="sensitivity-run"]').click();
    await page
      .locator('[data-testid="sensitivity-status"]', { hasText: /^Measured:/ })
      .waitFor({ timeout: SWEEP_TIMEOUT_MS });
    await problems.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match((await problems.textContent()) ?? '', /^Not trustworthy/);
    assert.match(
      (await problems.locator('li').allTextContents()).join('\n'),
      /output 'score' is pinned near 1 for every sample input/,
    );
    assert.match(
      (await page.locator('[data-testid="sensitivity-status"]').textContent()) ?? '',
      /NOT trustworthy/,
    );
    await session.screenshot('sensitivity-not-trustworthy');
    assert.deepEqual(session.problems, []);
  });
});

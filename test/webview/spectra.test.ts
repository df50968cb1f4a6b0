/**
 * The Spectrum and Heatmap tabs in headless Chromium, answered by the real server core:
 * the spectrum chart of a Silero LSTM weight follows the rank slider and the energy
 * target; the heatmap draws server tiles, and zooming asks for tiles of another level;
 * the table's spectral columns fill in.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { AnalysisService } from '../../src/server/analysisService';
import { ModelService } from '../../src/server/modelService';
import { writeSafetensors } from '../support/safetensorsBuilder';
import type { WebviewSession } from '../support/webviewHarness';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const READY_TIMEOUT_MS = 60_000;
const LSTM_WEIGHT = 'If_0_then_branch__Inline_0__decoder.rnn.weight_ih';

let service: ModelService;
let analysis: AnalysisService;

const ui = useWebviewHarness({ folderPrefix: 'layerlens-spectra-webview-', workers: 2 });

before(() => {
  service = new ModelService({ workerCount: 2 });
  analysis = new AnalysisService(service);
});

after(() => {
  analysis?.dispose();
  service?.dispose();
});

async function waitReady(page: Page): Promise<void> {
  await page
    .locator('body[data-state="ready"]')
    .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
}

async function selectRowNamed(page: Page, name: string): Promise<number> {
  await page.locator('[data-testid="filter"]').fill(name);
  const row = page.locator('[data-testid="tensor-row"]').first();
  await row.waitFor({ timeout: 10_000 });
  await row.click();
  return Number(await row.getAttribute('data-index'));
}

async function dataValue(page: Page, testId: string): Promise<string> {
  const value = await page.locator(`[data-testid="${testId}"]`).getAttribute('data-value');
  assert.ok(value !== null, `${testId} has no data-value`);
  return value;
}

/**
 * The expected readouts are worked out here from the singular values, with plain sums
 * rather than the helpers of src/shared/spectrum.ts that the panel itself uses.
 */
function keptEnergy(singularValues: readonly number[], rank: number): number {
  let sum = 0;
  for (const sigma of singularValues.slice(0, rank)) sum += sigma * sigma;
  return sum;
}

/** Smallest r whose first r singular values keep `fraction` of ‖W‖_F². */
function smallestRankKeeping(
  singularValues: readonly number[],
  frobeniusSquared: number,
  fraction: number,
): number {
  for (let rank = 1; rank <= singularValues.length; rank++) {
    if (keptEnergy(singularValues, rank) >= fraction * frobeniusSquared) return rank;
  }
  return singularValues.length;
}

/** Waits until every heatmap tile in view is drawn. */
async function waitForAllTilesDrawn(page: Page): Promise<void> {
  // A string, not a function: the tests compile without the DOM's types.
  await page.waitForFunction(
    `(() => {
      const canvas = document.querySelector('[data-testid="heatmap"]');
      return canvas !== null && canvas.dataset.tilesDrawn === canvas.dataset.tilesWanted;
    })()`,
    undefined,
    { timeout: READY_TIMEOUT_MS },
  );
}

function assertNoProblems(session: WebviewSession): void {
  assert.deepEqual(session.problems, [], 'the page logged CSP violations or errors');
}

function tileRequests(session: WebviewSession): { level: number; tileX: number; tileY: number }[] {
  return session.posted.flatMap((message) =>
    message.type === 'request' && message.name === 'heatmapTile'
      ? [message.params as { level: number; tileX: number; tileY: number }]
      : [],
  );
}

describe('Silero VAD v5: spectrum and heatmap of an LSTM weight', () => {
  let session: WebviewSession;

  before(async () => {
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

  test('the spectrum chart follows the rank slider and the energy target', async () => {
    const { page } = session;
    const index = await selectRowNamed(page, LSTM_WEIGHT);
    await page.locator('[data-testid="tab-spectrum"]').click();
    await page
      .locator('[data-testid="spectrum-chart"] path.ll-sigma-line')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    const spectrum = await analysis.spectrum(SILERO_V5, index);
    const sigma = spectrum.singularValues;
    const total = spectrum.frobeniusSquared;
    assert.equal(sigma.length, 128);

    // The slider starts at the rank keeping 90% of the energy.
    const rank90 = smallestRankKeeping(sigma, total, 0.9);
    assert.equal(spectrum.metrics.rank90, rank90, "the ui.server's own r90 agrees");
    assert.equal(Number(await dataValue(page, 'spectrum-rank')), rank90);
    const slider = page.locator('[data-testid="rank-slider"]');
    assert.equal(await slider.getAttribute('max'), '128');

    await slider.fill('10');
    assert.equal(await dataValue(page, 'spectrum-rank'), '10');
    // A: 512 × 10 and B: 10 × 128.
    assert.equal(Number(await dataValue(page, 'spectrum-params')), 10 * 512 + 10 * 128);
    const error = Number(await dataValue(page, 'spectrum-error'));
    const expected = Math.sqrt((total - keptEnergy(sigma, 10)) / total);
    assert.ok(Math.abs(error - expected) < 1e-12, `error ${error} vs ${expected}`);
    const energyAt10 = Number(await dataValue(page, 'spectrum-energy'));
    const expectedEnergy = keptEnergy(sigma, 10) / total;
    assert.ok(
      Math.abs(energyAt10 - expectedEnergy) < 1e-12,
      `energy ${energyAt10} vs ${expectedEnergy}`,
    );
    assert.equal(await dataValue(page, 'spectrum-saves'), 'true');
    assert.equal(
      await page.locator('[data-testid="rank-marker"]').getAttribute('data-rank'),
      '10',
      'the chart marks the rank',
    );

    // Rank r saves space while r · (512 + 128) < 512 · 128, that is r < 102.4.
    await slider.fill('102');
    assert.equal(await dataValue(page, 'spectrum-saves'), 'true', 'r = 102 saves');
    await slider.fill('103');
    assert.equal(await dataValue(page, 'spectrum-saves'), 'false', 'r = 103 does not save');
    await slider.fill('120');
    assert.equal(await dataValue(page, 'spectrum-saves'), 'false', 'r ≤ 102 saves');
    assert.ok(Number(await dataValue(page, 'spectrum-energy')) > energyAt10);

    const energyTarget = page.locator('[data-testid="energy-target"]');
    await energyTarget.fill('99');
    await energyTarget.press('Enter');
    const rank99 = smallestRankKeeping(sigma, total, 0.99);
    assert.equal(spectrum.metrics.rank99, rank99, "the ui.server's own r99 agrees");
    assert.equal(Number(await dataValue(page, 'spectrum-rank')), rank99);
    assert.match(
      await page.locator('[data-testid="spectral-metrics"]').innerText(),
      /Stable rank[\s\S]*Power-law α/,
    );
    await session.screenshot('spectrum-silero-lstm');

    // float64 is another request with other options.
    await page.locator('[data-testid="spectrum-precision"]').selectOption('float64');
    await page.locator('[data-testid="spectrum-panel"][data-state="ready"]').waitFor();
    const spectrumRequests = session.posted.filter(
      (message) => message.type === 'request' && message.name === 'spectrum',
    );
    assert.ok(
      spectrumRequests.some(
        (message) =>
          message.type === 'request' &&
          JSON.stringify(message.params).includes('"precision":"float64"'),
      ),
    );
    assertNoProblems(session);
  });

  test('the table fills the spectral columns of small matrices', async () => {
    const { page } = session;
    await page.locator('[data-testid="filter"]').fill(LSTM_WEIGHT);
    const cell = page.locator('[data-testid="tensor-row"]').first().locator('.ll-col-stableRank');
    // The stable rank of the LSTM weight fills in once its spectrum is computed.
    await page
      .locator('[data-testid="tensor-row"]')
      .first()
      .locator('.ll-col-stableRank', { hasText: /^\s*\d/ })
      .waitFor({ timeout: READY_TIMEOUT_MS });
    const text = (await cell.innerText()).trim();
    assert.match(text, /^\d+(\.\d+)?$/, `stable rank cell: ${text}`);
    // Stable rank ‖W‖²_F / σ₁², worked out here from the server's spectrum, to the cell's
    // three significant digits.
    const index = Number(
      await page.locator('[data-testid="tensor-row"]').first().getAttribute('data-index'),
    );
    const spectrum = await analysis.spectrum(SILERO_V5, index);
    const stableRank = spectrum.frobeniusSquared / spectrum.singularValues[0]! ** 2;
    const halfLastDigit = 0.5 * 10 ** (Math.floor(Math.log10(stableRank)) - 2);
    assert.ok(
      Math.abs(Number(text) - stableRank) <= halfLastDigit * (1 + 1e-9),
      `stable rank cell ${text} vs ${stableRank}`,
    );
    const header = page.locator('[role="columnheader"].ll-col-alpha');
    await page.locator('[data-testid="filter"]').fill('');
    await header.locator('button').click();
    assert.equal(await header.getAttribute('aria-sort'), 'descending');
    assertNoProblems(session);
  });

  test('the heatmap draws server tiles; changing the layer shows structured sparsity', async () => {
    const { page } = session;
    await selectRowNamed(page, LSTM_WEIGHT);
    await page.locator('[data-testid="tab-heatmap"]').click();
    const canvas = page.locator('[data-testid="heatmap"]');
    await page
      .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    assert.equal(
      await canvas.getAttribute('data-tiles-drawn'),
      await canvas.getAttribute('data-tiles-wanted'),
    );
    assert.match(
      await page.locator('[data-testid="structured-sparsity"]').innerText(),
      /All-zero rows\s+0 of 512/,
    );
    const before = tileRequests(session).length;
    await page.locator('[data-testid="heatmap-layers"] [data-layer="int4"]').click();
    await page.locator('[data-testid="heatmap-panel"][data-state="ready"]').waitFor();
    await page
      .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    assert.ok(tileRequests(session).length > before, 'the new layer asked for its own tiles');
    await page.locator('[data-testid="heatmap-layers"] [data-layer="magnitude"]').click();
    await page
      .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    await session.screenshot('heatmap-silero-lstm');
    assertNoProblems(session);
  });
});

describe('a 2048 × 2048 matrix: zoom and pan ask for tiles of other levels', () => {
  let session: WebviewSession;
  const rows = 2048;
  const cols = 2048;

  before(async () => {
    const values = new Float32Array(rows * cols);
    for (let i = 0; i < values.length; i++) {
      const row = Math.floor(i / cols);
      // The top quarter is zero; elsewhere a smooth pattern with every 4th value zero.
      values[i] = row < rows / 4 || i % 4 === 0 ? 0 : Math.sin(i * 0.001) * (1 + row / rows);
    }
    const file = await writeSafetensors(path.join(ui.folder, 'large.safetensors'), [
      { name: 'proj.weight', dtype: 'F32', shape: [rows, cols], data: values },
    ]);
    session = await ui.harness.open(
      { server: ui.server, modelPath: file },
      {
        viewport: { width: 1600, height: 1100 },
      },
    );
    await waitReady(session.page);
  });

  after(async () => {
    await session?.close();
  });

  test('zooming in requests finer tiles, and the view pans by dragging', async () => {
    const { page } = session;
    await selectRowNamed(page, 'proj.weight');
    await page.locator('[data-testid="tab-heatmap"]').click();
    const canvas = page.locator('[data-testid="heatmap"]');
    await page
      .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    const startLevel = Number(await canvas.getAttribute('data-level'));
    assert.ok(startLevel >= 2, `the fitted view of 2048² is coarse, level ${startLevel}`);
    assert.match(
      await page.locator('[data-testid="structured-sparsity"]').innerText(),
      /All-zero rows\s+512 of 2,048/,
    );
    assert.equal(
      await page.locator('[data-testid="nm-compliance"]').getAttribute('data-value'),
      '0.25',
    );

    const requestsBefore = tileRequests(session);
    for (let i = 0; i < 4; i++) await page.locator('[data-testid="heatmap-zoom-in"]').click();
    await page.waitForFunction(
      `Number(document.querySelector('[data-testid="heatmap"]')?.dataset.level) < ${startLevel}`,
      undefined,
      { timeout: READY_TIMEOUT_MS },
    );
    const zoomedLevel = Number(await canvas.getAttribute('data-level'));
    await waitForAllTilesDrawn(page);
    const newRequests = tileRequests(session).slice(requestsBefore.length);
    assert.ok(
      newRequests.some((request) => request.level === zoomedLevel),
      `tiles of level ${zoomedLevel} were requested: ${JSON.stringify(newRequests)}`,
    );

    // Wheel zoom at a point, then a drag: the hovered readout names rows and columns.
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -200);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 150, box.y + box.height / 2 - 100, { steps: 5 });
    await page.mouse.up();
    assert.match(await page.locator('[data-testid="heatmap-hover"]').innerText(), /row/);
    await session.screenshot('heatmap-zoomed');
    assertNoProblems(session);
  });
});

describe('a matrix whose singular values span eleven decades', () => {
  let session: WebviewSession;

  before(async () => {
    // Diagonal: its singular values are the diagonal's.
    const diagonal = [1e3, 10, 1, 1e-2, 1e-3, 1e-5, 1e-6, 1e-8];
    const values = new Float32Array(64);
    diagonal.forEach((value, i) => (values[i * 8 + i] = value));
    const file = await writeSafetensors(path.join(ui.folder, 'decades.safetensors'), [
      { name: 'decades.weight', dtype: 'F32', shape: [8, 8], data: values },
    ]);
    session = await ui.harness.open({ server: ui.server, modelPath: file });
    await waitReady(session.page);
  });

  after(async () => {
    await session?.close();
  });

  test('the σ axis labels small values as powers of ten, every label inside the chart', async () => {
    const { page } = session;
    await selectRowNamed(page, 'decades.weight');
    await page.locator('[data-testid="tab-spectrum"]').click();
    await page
      .locator('[data-testid="spectrum-chart"] path.ll-sigma-line')
      .waitFor({ timeout: READY_TIMEOUT_MS });
    // A string, not a function: the tests compile without the DOM's types.
    const { chart, title, ticks } = (await page.evaluate(`(() => {
      const box = (node) => {
        const r = node.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      };
      const svg = document.querySelector('[data-testid="spectrum-chart"] svg');
      return {
        chart: box(svg),
        title: box(svg.querySelector('text.ll-sigma-label')),
        ticks: [...svg.querySelectorAll('g.ll-axis-sigma .tick text')]
          .filter((text) => text.textContent !== '')
          .map((text) => ({ text: text.textContent, ...box(text) })),
      };
    })()`)) as {
      chart: Rect;
      title: Rect;
      ticks: (Rect & { text: string })[];
    };
    for (const tick of ticks) {
      assert.ok(
        tick.left >= chart.left && tick.right <= chart.right,
        `"${tick.text}" (${tick.left}–${tick.right}) inside the chart (${chart.left}–${chart.right})`,
      );
      assert.ok(tick.left >= title.right, `"${tick.text}" clear of the axis title`);
      assert.ok(tick.text.length <= 5, `"${tick.text}" is short`);
    }
    const labels = ticks.map((tick) => tick.text);
    assert.ok(labels.includes('1e-6'), `1e-6 is labelled as such: ${labels.join(', ')}`);
    assert.ok(labels.includes('1'), labels.join(', '));
    await session.screenshot('spectrum-decades');
    assertNoProblems(session);
  });
});

interface Rect {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

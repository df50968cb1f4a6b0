/**
 * The shared HTML report (`layerlens report`) opened from disk (file://) in headless
 * Chromium with every network request refused: the editor's view runs from the data the
 * file embeds, with no console error. Its table is checked against the model (its tensors,
 * and one tensor's statistics computed here from the values it was written with), a row's
 * histogram is drawn, and with --compare the diff table pairs a weight with its low-rank
 * factors and overlays both histograms of a pair. Saves docs/screenshots/html-report.png
 * (Silero VAD v5 compared with its int8 copy).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { reportCommand } from '../../src/cli/report';
import { compressModel } from '../../src/server/compress';
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from '../support/chromium';
import { lowRankValues, normalValues } from '../support/matrices';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../support/onnxBuilder';
import { assertTableFits } from '../support/diffTableFit';
import { ensureWebviewBundle, testResultsDir } from '../support/webviewHarness';

const READY_TIMEOUT_MS = 60_000;
const ROWS = '[data-testid="tensor-row"]';
const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const FC2 = normalValues(48 * 16, 3, 0.2);

let browser: Browser;
let remove: () => Promise<void>;
let folder: string;
let original: string;
let lowRank: string;
let assets: () => { script: string; stylesheet: string };

before(async () => {
  const script = path.join(path.dirname(ensureWebviewBundle()), 'report.js');
  assets = () => ({ script, stylesheet: path.resolve('media/layerlens.css') });
  ({ folder, remove } = await makeTempFolder('layerlens-report-webview-'));
  original = await writeModel(
    folder,
    'mlp.onnx',
    model(
      graph({
        initializers: [
          tensor('fc1.weight', 'float32', [64, 48], lowRankValues(64, 48, 4, 1)),
          tensor('fc1.bias', 'float32', [48], normalValues(48, 2, 0.2)),
          tensor('fc2.weight', 'float32', [48, 16], FC2),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 64])],
        outputs: [valueInfo('y', 'float32', ['batch', 16])],
        nodes: [
          node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
          node('Add', ['h0', 'fc1.bias'], ['h1']),
          node('Relu', ['h1'], ['h2']),
          node('MatMul', ['h2', 'fc2.weight'], ['y'], { name: 'fc2' }),
        ],
      }),
    ),
  );
  lowRank = (
    await compressModel(original, { tensors: [], options: { method: 'lowrank', rank: 4 } })
  ).output;
  browser = await chromium.launch({
    executablePath: CHROMIUM_EXECUTABLE,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});
after(async () => {
  await browser?.close();
  await remove();
});

async function writeReport(name: string, ...args: string[]): Promise<string> {
  const out = path.join(folder, name);
  assert.equal(await reportCommand([...args, '--html', out], assets), 0);
  return out;
}

/** The report opened from disk, offline, with every request off the file refused and noted. */
async function openReport(
  file: string,
  viewport = { width: 1400, height: 1000 },
  colorScheme: 'light' | 'dark' = 'light',
): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport, offline: true, colorScheme });
  const problems: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    problems.push(`network request: ${url}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('request', (request) => {
    const url = request.url();
    if (!/^(file|data|blob):/.test(url)) problems.push(`request: ${url}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-state="ready"]', { timeout: READY_TIMEOUT_MS });
  return { page, problems, close: () => context.close() };
}

/** The page's background colour, as the theme variables set it. */
function background(page: Page): Promise<string> {
  return page.evaluate('getComputedStyle(document.body).backgroundColor') as Promise<string>;
}

function cellNumber(text: string): number {
  return Number(text.trim().replace('−', '-'));
}

test('the report opens from disk offline: its table matches the model and a histogram is drawn', async () => {
  const { page, problems, close } = await openReport(await writeReport('mlp.html', original));
  try {
    assert.match(
      await page.getByTestId('report-header').innerText(),
      /LayerLens report: mlp\.onnx/,
    );
    assert.equal(await background(page), 'rgb(255, 255, 255)', 'light theme by default');
    await page.locator('[data-testid="tensor-view"] [data-view="all"]').click();
    const rows = page.locator(ROWS);
    await rows.nth(2).waitFor();
    assert.equal(await rows.count(), 3);
    assert.deepEqual(
      (
        await page
          .locator(`${ROWS} .ll-col-name`)
          .evaluateAll((cells) =>
            cells.map((cell) => cell.getAttribute('title') ?? cell.textContent),
          )
      ).sort(),
      ['fc1.bias', 'fc1.weight', 'fc2.weight'],
    );

    // fc2.weight's statistics, computed here from the values it was written with (float32).
    const values = Float32Array.from(FC2);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length);
    const row = rows.filter({ hasText: 'fc2.weight' });
    const cell = async (column: string) =>
      cellNumber(await row.locator(`.ll-col-${column}`).innerText());
    await row.locator('.ll-col-mean', { hasText: /\d/ }).waitFor();
    assert.ok(Math.abs((await cell('mean')) - mean) <= Math.abs(mean) * 1e-3, 'mean');
    assert.ok(Math.abs((await cell('std')) - std) <= std * 1e-3, 'std');
    assert.ok(Math.abs((await cell('min')) - Math.min(...values)) <= 1e-3, 'min');
    assert.ok(Math.abs((await cell('max')) - Math.max(...values)) <= 1e-3, 'max');
    assert.equal(
      cellNumber((await row.locator('.ll-col-params').innerText()).replace(/,/g, '')),
      768,
    );

    // Selecting the row draws its histogram from the embedded bins.
    await row.click();
    const bars = page.locator('.ll-histogram-chart g.ll-bars rect');
    await bars.first().waitFor();
    assert.ok((await bars.count()) > 10);

    // fc1.weight was written with rank 4: its embedded spectrum says 90% of the energy needs at most 4.
    await rows.filter({ hasText: 'fc1.weight' }).click();
    await page.getByTestId('tab-spectrum').click();
    await page.locator('[data-testid="spectrum-chart"] path.ll-sigma-line').waitFor();
    const rank = Number(await page.getByTestId('spectrum-rank').getAttribute('data-value'));
    assert.ok(rank >= 1 && rank <= 4, `rank ${rank}`);
    // A view the report does not hold says so in place.
    await page.getByTestId('tab-heatmap').click();
    await page
      .getByText(/Not in this report/)
      .first()
      .waitFor();
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test('the report with --compare, in dark mode, shows the diff table and overlays both histograms of a pair', async () => {
  const file = await writeReport('compare.html', original, '--compare', lowRank);
  const { page, problems, close } = await openReport(file, undefined, 'dark');
  try {
    assert.equal(
      await background(page),
      'rgb(31, 31, 31)',
      'dark theme when the browser prefers it',
    );
    const compare = page.getByTestId('report-compare');
    const rows = compare.getByTestId('diff-row');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 3);
    assert.match(
      await compare.locator('.ll-diff-summary').innerText(),
      /Paired\s+3: by name 1, by node 0, as factors 2/,
    );
    assert.match(
      await compare.locator('[data-tensor="fc1.weight"]').innerText(),
      /factors fc1\.weight_lowrank_a · fc1\.weight_lowrank_b/,
    );
    await compare.locator('[data-tensor="fc1.bias"]').click();
    const chart = compare.getByTestId('diff-histogram');
    await chart.locator('rect.ll-bar-overlay').first().waitFor();
    assert.ok((await chart.locator('rect.ll-bar-overlay').count()) > 10);
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test('screenshot: the report of Silero VAD v5 compared with its int8 copy', async () => {
  const copy = path.join(folder, 'silero_vad_v5.onnx');
  copyFileSync(SILERO_V5, copy);
  const int8 = (await compressModel(copy, { tensors: [], options: { method: 'int8' } })).output;
  const file = await writeReport('silero.html', copy, '--compare', int8);
  const { page, problems, close } = await openReport(file, { width: 1280, height: 720 });
  try {
    await page.locator(ROWS).filter({ hasText: 'rnn.weight_ih' }).first().click();
    await page.locator('.ll-histogram-chart g.ll-bars rect').first().waitFor();
    await page.getByTestId('report-compare').getByTestId('diff-row').first().waitFor();
    // Long names are cut: the compared pairs' table is no wider than the window.
    await assertTableFits(page);
    const screenshots = path.resolve('docs/screenshots');
    mkdirSync(screenshots, { recursive: true });
    mkdirSync(testResultsDir, { recursive: true });
    // The header, overview, table with the selected row's histogram, and the diff's start.
    await page.evaluate('window.scrollTo(0, 0)');
    const diffTop = (await page.getByTestId('report-compare').boundingBox())!.y;
    await page.screenshot({
      path: path.join(screenshots, 'html-report.png'),
      fullPage: true,
      clip: { x: 0, y: 0, width: 1280, height: Math.round(diffTop + 420) },
    });
    await page.screenshot({
      path: path.join(testResultsDir, 'html-report-full.png'),
      fullPage: true,
    });
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

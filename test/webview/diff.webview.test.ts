/**
 * The diff editor's webview in headless Chromium under the extension's HTML shell and CSP:
 * fed the real diff of a model and its low-rank copy, it shows the summary and the table,
 * filters to changed pairs, sorts, and overlays both histograms of a selected pair, which
 * it asks for as the extension's panel answers it (layerlens/tensorStats of each model from
 * the real server); and for a selected matrix both spectra overlaid, the |ΔW| heatmap and
 * ΔW's fine-tune analysis (layerlens/pairDetail from the real server).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { compressModel } from '../../src/server/compress';
import { diffModels } from '../../src/server/diff';
import { webviewDocument } from '../../src/extension/webviewDocument';
import { LspMethods } from '../../src/shared/lsp';
import { isStatsError } from '../../src/shared/model';
import type { DiffPanelToHost, HostToDiffPanel } from '../../src/shared/protocol';
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
import { startServer, type ServerProcess } from '../support/serverProcess';
import { writeSyntheticFineTune, type SyntheticFineTune } from '../support/fineTune';
import { assertTableFits } from '../support/diffTableFit';
import { ensureWebviewBundle, testResultsDir, themeStylesheet } from '../support/webviewHarness';

let browser: Browser;
let http: Server;
let origin: string;
let server: ServerProcess;
let remove: () => Promise<void>;
let original: string;
let lowRank: string;
let fineTune: SyntheticFineTune;
let folder: string;
const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

before(async () => {
  const bundleDir = path.dirname(ensureWebviewBundle());
  ({ folder, remove } = await makeTempFolder('layerlens-diff-webview-'));
  fineTune = await writeSyntheticFineTune(folder);
  original = await writeModel(
    folder,
    'mlp.onnx',
    model(
      graph({
        initializers: [
          tensor('fc1.weight', 'float32', [64, 48], lowRankValues(64, 48, 4, 1)),
          tensor('fc1.bias', 'float32', [48], normalValues(48, 2, 0.2)),
          tensor('fc2.weight', 'float32', [48, 16], normalValues(48 * 16, 3, 0.2)),
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
    await compressModel(original, {
      tensors: [],
      options: { method: 'lowrank', rank: 4 },
    })
  ).output;
  server = await startServer({ 'stats.workerCount': 1 });
  // The shell names the page's own origin, known once the server listens.
  let page = '';
  const shell = () =>
    webviewDocument({
      cspSource: origin,
      nonce: randomBytes(16).toString('base64'),
      stylesheets: ['/theme.css', '/media/layerlens.css'],
      scripts: [
        {
          inline: `window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__post(m) });`,
        },
        { src: '/dist/webview/diff.js' },
      ],
    });
  http = createServer((request, response) => {
    const files: Record<string, [string, string | Buffer]> = {
      '/': ['text/html', page],
      '/dist/webview/diff.js': ['text/javascript', readFileSync(path.join(bundleDir, 'diff.js'))],
      '/media/layerlens.css': ['text/css', readFileSync('media/layerlens.css')],
      '/theme.css': ['text/css', themeStylesheet('dark')],
    };
    if (request.url === '/favicon.ico') return void response.writeHead(204).end();
    const file = files[request.url ?? ''];
    response.writeHead(file ? 200 : 404, { 'Content-Type': file?.[0] ?? 'text/plain' });
    response.end(file?.[1] ?? 'not found');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  page = shell();
  browser = await chromium.launch({
    executablePath: CHROMIUM_EXECUTABLE,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});
after(async () => {
  await browser?.close();
  http?.close();
  server?.stop();
  await remove();
});

/** "Show in graph" clicks the pages asked the extension for (it opens B's graph). */
let showInGraphAsked = 0;

/** The page, answering its messages as src/extension/diffPanel.ts does. */
async function openPage(
  a = original,
  b = lowRank,
  viewport = { width: 1300, height: 1000 },
): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  const deliver = (message: HostToDiffPanel) =>
    page.evaluate(
      `window.dispatchEvent(new MessageEvent('message', { data: ${JSON.stringify(message)} }))`,
    );
  const histogram = async (file: string, index: number) => {
    const [result] = await server.request(LspMethods.tensorStats, {
      uri: pathToFileURL(file).toString(),
      indices: [index],
    });
    assert.ok(result && !isStatsError(result));
    return result.histogram;
  };
  await page.exposeFunction('__post', async (message: DiffPanelToHost) => {
    if (message.type === 'ready') {
      await deliver({ type: 'diff', diff: await diffModels(a, b) });
    } else if (message.type === 'extractLora') {
      // As the extension does once the rank or energy and the folder are chosen.
      const extraction = await server.request(LspMethods.extractLora, {
        uri: pathToFileURL(a).toString(),
        other: pathToFileURL(b).toString(),
        outUri: pathToFileURL(path.join(folder, 'adapter')).toString(),
        energy: 0.999,
      });
      await deliver({ type: 'lora', extraction });
    } else if (message.type === 'pairDetail') {
      const { indexA } = message;
      const detail = await server.request(LspMethods.pairDetail, {
        uri: pathToFileURL(a).toString(),
        other: pathToFileURL(b).toString(),
        indexA,
      });
      await deliver({ type: 'pairDetail', indexA, detail });
    } else if (message.type === 'showInGraph') {
      showInGraphAsked++;
    } else if (message.type === 'histograms') {
      const { indexA, indexB } = message;
      const [ha, hb] = await Promise.all([
        histogram(a, indexA),
        indexB === null ? null : histogram(b, indexB),
      ]);
      await deliver({ type: 'histograms', indexA: message.indexA, a: ha, b: hb });
    }
  });
  await page.goto(origin + '/');
  return { page, problems };
}

test('the diff editor shows the pairs, filters and sorts them, and overlays both histograms of a selected pair', async () => {
  const { page, problems } = await openPage();
  const rows = page.getByTestId('diff-row');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  const summary = await page.locator('.ll-diff-summary').innerText();
  assert.match(summary, /Paired\s+3: by name 1, by node 0, as factors 2/);
  const fc1 = page.locator('[data-tensor="fc1.weight"]');
  assert.match(await fc1.innerText(), /factors fc1\.weight_lowrank_a · fc1\.weight_lowrank_b/);
  assert.match(await fc1.innerText(), /\[64, 48\] → \[64, 4\] · \[4, 48\]/);
  assert.match(await page.getByTestId('diff-structure').innerText(), /split fc1 \(MatMul\)/);
  // Show in graph asks the extension for B's graph (test/webview/structureDiff: what it shows).
  const asked = showInGraphAsked;
  await page.getByTestId('diff-show-in-graph').click();
  for (let i = 0; i < 50 && showInGraphAsked === asked; i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal(showInGraphAsked, asked + 1);
  // Factors and a bias: nothing a LoRA adapts, so no Extract LoRA….
  assert.equal(await page.getByTestId('diff-extract-lora').count(), 0);

  await page.getByTestId('diff-changed-only').check();
  assert.equal(await rows.count(), 2);
  assert.deepEqual(await rows.evaluateAll((r) => r.map((e) => e.getAttribute('data-tensor'))), [
    'fc1.weight',
    'fc2.weight',
  ]);
  // Sort by ‖ΔW‖/‖W‖, then descending: fc2 (full rank, cut to 4) loses more than fc1 (rank 4).
  const header = page.locator('.ll-diff-table th', { hasText: '‖ΔW‖/‖W‖' });
  await header.click();
  await header.click();
  assert.equal(await header.getAttribute('aria-sort'), 'descending');
  assert.equal(await rows.first().getAttribute('data-tensor'), 'fc2.weight');

  // A factored weight: A's histogram alone (the factors' values are not W's).
  await fc1.click();
  const chart = page.getByTestId('diff-histogram');
  await chart.locator('g.ll-bars rect').first().waitFor();
  assert.ok((await chart.locator('g.ll-bars rect').count()) > 10);
  assert.equal(await chart.locator('rect.ll-bar-overlay').count(), 0);
  assert.match(
    await page.getByTestId('diff-detail').innerText(),
    /B stores it as the factors fc1\.weight_lowrank_a · fc1\.weight_lowrank_b/,
  );
  // A pair with the same name: both histograms, B's over A's.
  await page.getByTestId('diff-changed-only').uncheck();
  await page.locator('[data-tensor="fc1.bias"]').click();
  await page.getByText('B: fc1.bias (overlay)').waitFor();
  await chart.locator('rect.ll-bar-overlay').first().waitFor();
  assert.ok((await chart.locator('rect.ll-bar-overlay').count()) > 10);
  await page.screenshot({ path: path.join(testResultsDir, 'webview-diff.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a selected matrix shows both spectra overlaid, the |ΔW| heatmap and the fine-tune analysis of ΔW', async () => {
  const { page, problems } = await openPage();
  await page.getByTestId('diff-row').first().waitFor();
  // fc2 (48 × 16, full rank) cut to rank 4: B is the factors' product.
  await page.locator('[data-tensor="fc2.weight"]').click();
  const spectra = page.getByTestId('diff-spectra');
  await spectra.locator('path.ll-sigma-overlay').waitFor();
  assert.equal(await spectra.locator('path.ll-sigma-line').count(), 1);
  const pathLength = (selector: string) =>
    spectra
      .locator(selector)
      .evaluate((p) => (p as unknown as { getTotalLength(): number }).getTotalLength());
  assert.ok((await pathLength('path.ll-sigma-line')) > 50);
  assert.ok((await pathLength('path.ll-sigma-overlay')) > 50);
  const facts = await page.getByTestId('diff-spectra-part').innerText();
  // B has rank 4: its 90%/99% ranks are at most 4, A's (full rank) are more.
  const ranks = /Rank for 90% \/ 99%\s+(\d+) \/ (\d+) → (\d+) \/ (\d+)/.exec(facts);
  assert.ok(ranks, facts);
  assert.ok(Number(ranks[2]) > 4 && Number(ranks[4]) <= 4, facts);

  // The heatmap: 48 rows × 16 columns of cells scaled up, in many colours.
  const heatmap = page.getByTestId('diff-delta-heatmap');
  await heatmap.waitFor();
  assert.equal(await heatmap.getAttribute('data-level'), '0');
  const colours = await heatmap.evaluate((canvas) => {
    const c = canvas as unknown as {
      width: number;
      height: number;
      getContext(kind: '2d'): {
        getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
      };
    };
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<string>();
    for (let i = 0; i < data.length; i += 4 * 97)
      seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    return { width: c.width, height: c.height, seen: seen.size };
  });
  assert.ok(colours.width >= 16 * 5 && colours.height >= 48 * 5, JSON.stringify(colours));
  assert.ok(colours.seen > 10, JSON.stringify(colours));

  // ΔW = W − W₄: the energy table stops at the smaller side, 16, where all of it is kept.
  const energy = page.getByTestId('diff-delta-energy');
  assert.deepEqual(
    await energy
      .locator('td')
      .evaluateAll((cells) => cells.map((c) => c.getAttribute('data-rank'))),
    ['4', '8', '16'],
  );
  assert.match(await energy.locator('td[data-rank="16"]').innerText(), /^100(\.0)?%$/);
  await page.getByTestId('diff-delta-spectrum').locator('path.ll-sigma-line').waitFor();
  assert.match(await page.getByTestId('diff-delta-part').innerText(), /Stable rank\s+\d/);
  await page.screenshot({
    path: path.join(testResultsDir, 'webview-diff-detail.png'),
    fullPage: true,
  });

  // A bias has no spectrum and no ΔW heatmap.
  await page.locator('[data-tensor="fc1.bias"]').click();
  await page.getByText(/No spectra: \[48\] is not a matrix/).waitFor();
  assert.equal(await page.getByTestId('diff-delta-heatmap').count(), 0);
  assert.deepEqual(problems, []);
  await page.close();
});

test('Extract LoRA… on a base and its fine-tune shows each matrix’s rank and the error of base + B·A', async () => {
  const { page, problems } = await openPage(fineTune.basePath, fineTune.tunedPath);
  await page.getByTestId('diff-row').first().waitFor();
  assert.equal(await page.getByTestId('diff-lora').isVisible(), false);
  await page.getByTestId('diff-extract-lora').click();
  const table = page.getByTestId('diff-lora-table');
  await table.waitFor();
  const rows = await table
    .locator('tbody tr')
    .evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
  assert.deepEqual(
    rows.map((r) => [r[0], r[1], r[2]]),
    [
      ['model.layers.0.q_proj.weight', '96 × 64', '8'],
      ['model.layers.0.v_proj.weight', '64 × 64', '8'],
    ],
  );
  // base + B·A is off the fine-tune by the noise only: far below 1e-2 of ‖tuned‖.
  for (const row of rows) assert.ok(Number(row[5]) < 1e-2, row.join(' | '));
  const text = await page.getByTestId('diff-lora').innerText();
  assert.match(text, /per matrix for 99\.9% of ‖ΔW‖²/);
  assert.match(text, /Not in the adapter: model\.norm\.weight: not a 2-D matrix/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('at 1280 px the pairs of Silero VAD and its int8 copy fit the page: long names are cut, the full name in the tooltip', async () => {
  const silero = path.join(folder, 'silero_vad_v5.onnx');
  copyFileSync(SILERO_V5, silero);
  const int8 = (await compressModel(silero, { tensors: [], options: { method: 'int8' } })).output;
  const { page, problems } = await openPage(silero, int8, { width: 1280, height: 720 });
  await page.getByTestId('diff-row').first().waitFor();
  await assertTableFits(page);
  // A weight paired through its node: both names are long, each is cut and kept whole in its tooltip.
  const name = 'If_0_else_branch__Inline_0__decoder.rnn.weight_ih';
  const row = page.locator(`[data-tensor="${name}"]`);
  assert.equal(await row.locator('.ll-short-name').first().getAttribute('title'), name);
  assert.match(
    (await row.locator('.ll-short-name').nth(1).getAttribute('title')) ?? '',
    /^same node as If_0_else_branch__Inline_0__decoder\.rnn\.weight_ih_quantized$/,
  );
  assert.deepEqual(problems, []);
  await page.close();
});

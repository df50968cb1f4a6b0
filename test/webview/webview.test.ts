/**
 * The webview in headless Chromium, under the extension's CSP, with its requests answered
 * by the real server core (ModelService) on real files: the Silero VAD model, a generated
 * ONNX model with a string tensor, a generated safetensors file with 5,000 tensors, and a
 * file of random bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { ModelService } from '../../src/server/modelService';
import { LspMethods } from '../../src/shared/lsp';
import type { TensorInfo } from '../../src/shared/model';
import { graph, model, node, tensor, valueInfo, writeModel } from '../support/onnxBuilder';
import type { WebviewSession } from '../support/webviewHarness';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
/** Loading a model and all its statistics; generous for a 2-core machine. */
const READY_TIMEOUT_MS = 60_000;
const MANY_TENSORS = 5000;

let service: ModelService;

const rows = (page: Page) => page.locator('[data-testid="tensor-row"]');
const rowIndices = async (page: Page): Promise<number[]> =>
  (
    await rows(page).evaluateAll((elements) => elements.map((e) => e.getAttribute('data-index')))
  ).map(Number);

async function waitForState(page: Page, state: 'ready' | 'error'): Promise<void> {
  await page
    .locator(`body[data-state="${state}"]`)
    .waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
}

/** Polls `condition` until it holds (for effects that reach Node asynchronously, like setState). */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the count label next to the filter reads `text` (e.g. `22 of 341 tensors`). */
async function waitForRowTotal(page: Page, text: string): Promise<void> {
  const exactly = new RegExp(`^${text}$`);
  await page.locator('.ll-table-count', { hasText: exactly }).waitFor({ state: 'visible' });
}

async function allTensors(modelPath: string): Promise<TensorInfo[]> {
  const first = await service.tensors(modelPath, 0, 5000);
  const tensors = [...first.tensors];
  while (tensors.length < first.total)
    tensors.push(...(await service.tensors(modelPath, tensors.length, 5000)).tensors);
  return tensors;
}

/** Waits until the row of tensor `index`, and no other, is shown selected. */
async function waitForSelected(page: Page, index: number): Promise<void> {
  await page
    .locator(`[data-testid="tensor-row"][data-index="${index}"][aria-selected="true"]`)
    .waitFor({ state: 'attached', timeout: 5000 });
  assert.equal(await page.locator('[data-testid="tensor-row"][aria-selected="true"]').count(), 1);
}

/**
 * Sorts the table by `column` in `direction` with clicks on its header, as a user would:
 * each test that depends on the order sets it up itself rather than inheriting it.
 */
async function sortBy(
  page: Page,
  column: string,
  direction: 'ascending' | 'descending',
): Promise<void> {
  const header = page.locator(`[role="columnheader"].ll-col-${column}`);
  // The first click sorts in the column's first direction, later ones toggle it.
  for (let clicks = 0; clicks < 2; clicks++) {
    if ((await header.getAttribute('aria-sort')) === direction) return;
    await header.locator('button').click();
  }
  assert.equal(await header.getAttribute('aria-sort'), direction, `sorted by ${column}`);
}

/** Empties the filter box and waits until every row is counted again. */
async function clearFilter(page: Page, total: number): Promise<void> {
  await page.locator('[data-testid="filter"]').fill('');
  await waitForRowTotal(page, `${total.toLocaleString('en-US')} tensors`);
}

function assertNoProblems(session: WebviewSession): void {
  assert.deepEqual(session.problems, [], 'the page logged CSP violations or errors');
}

/** A safetensors file: 8-byte little-endian header length, JSON header, then the values. */
async function writeManyTensorsFile(file: string): Promise<void> {
  const header: Record<string, unknown> = {
    __metadata__: { format: 'pt', source: 'layerlens webview test' },
  };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < MANY_TENSORS; i++) {
    const shape = [4, 2 + (i % 7)];
    const values = new Float32Array(shape[0]! * shape[1]!);
    // Every third tensor is half zeros, so sparsity varies between rows.
    for (let j = 0; j < values.length; j++) {
      values[j] = i % 3 === 0 && j % 2 === 0 ? 0 : Math.sin(i * 31 + j) * (1 + (i % 5));
    }
    const bytes = Buffer.from(values.buffer);
    const block = Math.floor(i / 4);
    const part = ['q', 'k', 'v', 'o'][i % 4];
    header[`blocks.${block}.attn.${part}.weight`] = {
      dtype: 'F32',
      shape,
      data_offsets: [offset, offset + bytes.length],
    };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  await writeFile(file, Buffer.concat([length, json, ...chunks]));
}

const ui = useWebviewHarness({ folderPrefix: 'layerlens-webview-', workers: 2 });

before(() => {
  service = new ModelService({ workerCount: 2 });
});

after(() => service?.dispose());

describe('Silero VAD v5', () => {
  let session: WebviewSession;

  before(async () => {
    // Every tensor, not the Weights view: the counts below are of the whole model.
    session = await ui.harness.open(
      { server: ui.server, modelPath: SILERO_V5 },
      { savedState: { tensorView: 'all' } },
    );
    await waitForState(session.page, 'ready');
  });

  after(async () => {
    await session?.close();
  });

  test('shows the overview with the exact parameter and tensor counts', async () => {
    const summary = await service.openModel(SILERO_V5);
    const { page } = session;
    assert.equal(session.posted[0]?.type, 'ready', 'the first message is ready');
    const overview = page.locator('[data-testid="overview"]');
    assert.ok(await overview.isVisible());
    assert.match(await overview.innerText(), /silero_vad_v5\.onnx/);

    const parameters = page.locator('[data-testid="parameter-count"]');
    assert.equal(await parameters.getAttribute('data-value'), String(summary.parameterCount));
    assert.equal(
      (await parameters.innerText()).trim(),
      summary.parameterCount.toLocaleString('en-US'),
    );
    const tensorCount = page.locator('[data-testid="tensor-count"]');
    assert.equal(await tensorCount.getAttribute('data-value'), String(summary.tensorCount));

    // The details start closed, keeping the table in view; opening them shows the charts.
    const operators = page.locator('.ll-operators');
    assert.equal(await operators.isVisible(), false);
    await page.getByText('Dtypes, operators, inputs and outputs, metadata').click();
    const mostUsedOp = Object.entries(summary.opCounts).sort((a, b) => b[1] - a[1])[0]![0];
    // The bar chart draws once its container has a width (a resize observer, a frame later).
    await page
      .locator('.ll-operators svg text', { hasText: mostUsedOp })
      .first()
      .waitFor({ state: 'visible', timeout: 10_000 });
    await session.screenshot('silero-overview');
    assertNoProblems(session);
  });

  test('loads every row and every statistic progressively, then hides the progress bar', async () => {
    const summary = await service.openModel(SILERO_V5);
    const { page } = session;
    const progress = page.locator('[data-testid="progress"]');
    // The page is ready with its rows; the statistics keep coming in after that.
    await progress.waitFor({ state: 'hidden', timeout: READY_TIMEOUT_MS });
    assert.equal(await progress.getAttribute('data-total'), String(summary.tensorCount));
    assert.equal(await progress.getAttribute('data-done'), String(summary.tensorCount));
    assert.equal(await progress.isHidden(), true);

    const visible = await rowIndices(page);
    assert.ok(visible.length > 0 && visible.length <= summary.tensorCount);
    assert.equal(
      await page.locator('.ll-row .ll-pending').count(),
      0,
      'no cell still waits for statistics',
    );

    const statsRequests = session.posted.flatMap((message) =>
      message.type === 'request' && message.name === 'tensorStats' ? [message.params] : [],
    );
    const requested = statsRequests.flatMap((params) =>
      'indices' in params ? params.indices : [],
    );
    assert.equal(
      new Set(requested).size,
      summary.tensorCount,
      'statistics of every tensor were requested once',
    );
    assert.equal(requested.length, summary.tensorCount);
    assert.ok(statsRequests.every((params) => 'indices' in params && params.indices.length <= 32));
    assert.ok(
      session.maxStatsInFlight <= 2,
      `at most 2 statistics requests in flight, saw ${session.maxStatsInFlight}`,
    );
    assertNoProblems(session);
  });

  test('sorts by a column, toggling the direction, with aria-sort on its header', async () => {
    const { page } = session;
    const tensors = await allTensors(SILERO_V5);
    const largest = Math.max(...tensors.map((t) => t.parameterCount));
    const smallest = Math.min(...tensors.map((t) => t.parameterCount));
    const header = page.locator('[role="columnheader"].ll-col-params');
    await clearFilter(page, tensors.length);
    // Start from another column's order, so that the next click is params' first.
    await sortBy(page, 'name', 'ascending');
    assert.equal(await header.getAttribute('aria-sort'), null);

    await header.locator('button').click();
    assert.equal(await header.getAttribute('aria-sort'), 'descending');
    const [firstDescending] = await rowIndices(page);
    assert.equal(tensors[firstDescending!]!.parameterCount, largest);
    assert.equal(
      await page.locator('[aria-sort]').count(),
      1,
      'only the sorted column has aria-sort',
    );

    await header.locator('button').click();
    assert.equal(await header.getAttribute('aria-sort'), 'ascending');
    const [firstAscending] = await rowIndices(page);
    assert.equal(tensors[firstAscending!]!.parameterCount, smallest);

    await header.locator('button').click();
    await session.screenshot('silero-sorted');
    assert.deepEqual(session.savedState && (session.savedState as { sort: unknown }).sort, {
      column: 'params',
      direction: 'descending',
    });
    assertNoProblems(session);
  });

  test('selects rows from the keyboard and draws the histogram of the selected tensor', async () => {
    const { page } = session;
    const tensors = await allTensors(SILERO_V5);
    await clearFilter(page, tensors.length);
    await sortBy(page, 'params', 'descending');
    const grid = page.locator('[role="grid"]');
    await grid.focus();
    await page.keyboard.press('Home');
    const [first, second] = await rowIndices(page);
    await waitForSelected(page, first!);
    await page.keyboard.press('ArrowDown');
    await waitForSelected(page, second!);

    const histogram = page.locator('[data-testid="histogram"]');
    const bars = histogram.locator('svg rect.ll-bar');
    await bars.first().waitFor({ state: 'attached' });
    const barCount = await bars.count();
    assert.ok(barCount > 0 && barCount <= 256, `${barCount} bars`);
    const tensorName = (await service.tensors(SILERO_V5, second!, 1)).tensors[0]!.name;
    assert.equal(await histogram.locator('.ll-detail-title').innerText(), tensorName);
    assert.match(await histogram.innerText(), /L2 norm/);

    await histogram.getByRole('button', { name: 'Log' }).click();
    assert.equal(await histogram.locator('.ll-axis-label', { hasText: 'count (log)' }).count(), 1);
    await grid.focus();
    await session.screenshot('silero-histogram');

    const smallest = Math.min(...tensors.map((t) => t.parameterCount));
    await page.keyboard.press('End');
    const lastSelected = page.locator('[data-testid="tensor-row"][aria-selected="true"]');
    await lastSelected.waitFor({ state: 'attached' });
    const lastIndex = Number(await lastSelected.getAttribute('data-index'));
    assert.equal(
      tensors[lastIndex]!.parameterCount,
      smallest,
      'End selects the last row (the smallest tensor)',
    );
    assertNoProblems(session);
  });

  test('filters rows by a case-insensitive substring of name, node, op or dtype', async () => {
    const { page } = session;
    const tensors = await allTensors(SILERO_V5);
    const needle = 'CONV';
    const expected = tensors.filter((t) =>
      [t.name, t.node, t.op ?? '', t.dtype].some((text) => text.toLowerCase().includes('conv')),
    );
    assert.ok(expected.length > 0 && expected.length < tensors.length);
    await page.locator('[data-testid="filter"]').fill(needle);
    await waitForRowTotal(page, `${expected.length} of ${tensors.length} tensors`);
    const shown = await rowIndices(page);
    const expectedIndices = new Set(expected.map((t) => t.index));
    assert.ok(shown.length > 0 && shown.length <= expected.length);
    assert.ok(shown.every((index) => expectedIndices.has(index)));
    await session.screenshot('silero-filtered');

    await page.locator('[data-testid="filter"]').fill('no tensor has this name');
    await waitForRowTotal(page, `0 of ${tensors.length} tensors`);
    assert.equal(await rows(page).count(), 0);
    assert.ok(await page.locator('.ll-grid-empty').isVisible());
    await page.locator('[data-testid="filter"]').fill('');
    assertNoProblems(session);
  });

  test('keeps sort, filter and selection across a reload of the page', async () => {
    const { page } = session;
    await sortBy(page, 'params', 'descending');
    await page.locator('[data-testid="filter"]').fill('conv');
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('Home');
    const [selected] = await rowIndices(page);
    await waitForSelected(page, selected!);
    const savedState = () => session.savedState as { filter: string; selectedIndex: number | null };
    await until(() => savedState().selectedIndex === selected, 'the selection to be saved');
    const saved = savedState();
    assert.equal(saved.filter, 'conv');

    const reopened = await ui.harness.open(
      { server: ui.server, modelPath: SILERO_V5 },
      {
        savedState: saved,
      },
    );
    try {
      await waitForState(reopened.page, 'ready');
      assert.equal(await reopened.page.locator('[data-testid="filter"]').inputValue(), 'conv');
      await waitForSelected(reopened.page, selected!);
      assert.equal(
        await reopened.page
          .locator('[role="columnheader"].ll-col-params')
          .getAttribute('aria-sort'),
        'descending',
      );
      await reopened.page.locator('[data-testid="histogram"] svg').waitFor({ state: 'attached' });
      assertNoProblems(reopened);
    } finally {
      await reopened.close();
    }
  });

  test('fetches everything again on a reload message', async () => {
    const { page } = session;
    const summaryRequests = () =>
      session.posted.filter((message) => message.type === 'request' && message.name === 'openModel')
        .length;
    const before = summaryRequests();
    await session.postToWebview({ type: 'reload', reason: 'the file changed on disk' });
    await waitForState(page, 'ready');
    assert.equal(summaryRequests(), before + 1);
    assert.ok((await rowIndices(page)).length > 0);
    assert.equal(await page.locator('[data-testid="progress"]').isHidden(), true);
    assertNoProblems(session);
  });
});

test('shows per-tensor statistics errors in the row, with the reason as a tooltip', async () => {
  const modelPath = await writeModel(
    ui.folder,
    'labels.onnx',
    model(
      graph({
        initializers: [
          tensor('fc.weight', 'float32', [2, 3], [0.5, -1, 0, 2, 0.25, -0.75]),
          tensor('labels', 'string', [2], ['speech', 'silence']),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 2])],
        outputs: [valueInfo('y', 'float32', ['batch', 3])],
        nodes: [node('MatMul', ['x', 'fc.weight'], ['y'], { name: 'fc' })],
      }),
    ),
  );
  // All tensors: the string tensor is no weight.
  const session = await ui.harness.open(
    { server: ui.server, modelPath },
    { savedState: { tensorView: 'all' } },
  );
  try {
    await waitForState(session.page, 'ready');
    const tensors = await allTensors(modelPath);
    const labels = tensors.find((t) => t.name === 'labels');
    assert.ok(labels, 'the model lists the string tensor');
    const errorCell = session.page.locator(
      `[data-testid="tensor-row"][data-index="${labels.index}"] .ll-col-std`,
    );
    // Drawn on the frame after the statistics arrive.
    await session.page
      .locator(`[data-testid="tensor-row"][data-index="${labels.index}"] .ll-col-std`, {
        hasText: '—',
      })
      .waitFor({ timeout: 5000 });
    assert.match((await errorCell.getAttribute('title')) ?? '', /string/);
    const weight = tensors.find((t) => t.name === 'fc.weight')!;
    const sparsity = session.page.locator(
      `[data-testid="tensor-row"][data-index="${weight.index}"] .ll-col-sparsity`,
    );
    assert.equal(await sparsity.innerText(), '16.7%');
    assertNoProblems(session);
  } finally {
    await session.close();
  }
});

test('fills in 5,000 rows progressively, keeping only the rows in view in the DOM', async () => {
  const modelPath = path.join(ui.folder, 'many.safetensors');
  await writeManyTensorsFile(modelPath);
  // Statistics wait until the test has looked at the table without them.
  let releaseStats = (): void => undefined;
  const statsAllowed = new Promise<void>((resolve) => (releaseStats = resolve));
  const session = await ui.harness.open(
    {
      server: ui.server,
      modelPath,
      intercept: async (method, _params, _signal, forward) => {
        if (method === LspMethods.tensorStats) await statsAllowed;
        return forward();
      },
    },
    { savedState: { tensorView: 'all' } },
  );
  try {
    const { page } = session;
    await waitForRowTotal(page, `${MANY_TENSORS.toLocaleString('en-US')} tensors`);
    const progress = page.locator('[data-testid="progress"]');
    assert.equal(await progress.isVisible(), true, 'the progress bar shows while statistics load');
    assert.equal(await progress.getAttribute('data-done'), '0');
    assert.equal(await progress.getAttribute('data-total'), String(MANY_TENSORS));
    assert.equal(await page.locator('body').getAttribute('data-state'), 'loading');
    assert.ok((await page.locator('.ll-row .ll-col-std.ll-pending').count()) > 0);
    releaseStats();

    await waitForState(page, 'ready');
    // safetensors has no graph: the details name only what they hold.
    assert.equal(
      await page.locator('.ll-overview-details-summary').innerText(),
      'Dtypes, metadata',
    );
    assert.equal(await progress.isHidden(), true);
    assert.equal(await progress.getAttribute('data-done'), String(MANY_TENSORS));
    assert.equal(
      await page.locator('[data-testid="tensor-count"]').getAttribute('data-value'),
      String(MANY_TENSORS),
    );
    const initial = await rows(page).count();
    assert.ok(initial > 0 && initial < 200, `${initial} rows in the DOM`);

    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('End');
    await page
      .locator(`[data-testid="tensor-row"][data-index="${MANY_TENSORS - 1}"]`)
      .waitFor({ state: 'attached' });
    const atEnd = await rows(page).count();
    assert.ok(atEnd < 200, `${atEnd} rows in the DOM after scrolling to the end`);
    await waitForSelected(page, MANY_TENSORS - 1);
    await page.keyboard.press('PageUp');
    await page
      .locator(
        `[data-testid="tensor-row"][data-index="${MANY_TENSORS - 1}"][aria-selected="false"]`,
      )
      .waitFor();
    const selected = Number(
      await page
        .locator('[data-testid="tensor-row"][aria-selected="true"]')
        .getAttribute('data-index'),
    );
    assert.ok(
      selected < MANY_TENSORS - 1 && selected > MANY_TENSORS - 100,
      `PageUp selected ${selected}`,
    );

    await page.locator('[role="columnheader"].ll-col-sparsity button').click();
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('Home');
    const top = page.locator('[data-testid="tensor-row"][aria-rowindex="2"]');
    await top.locator('.ll-col-sparsity', { hasText: '50.0%' }).waitFor();
    assert.equal(
      Number(await top.getAttribute('data-index')) % 3,
      0,
      'the half-zero tensors sort first by sparsity',
    );
    await session.screenshot('many-tensors');
    assertNoProblems(session);
  } finally {
    await session.close();
  }
});

test('shows the error, naming the file, when the model cannot be read', async () => {
  const brokenPath = path.join(ui.folder, 'broken.onnx');
  await writeFile(brokenPath, randomBytes(4096));
  await assert.rejects(service.openModel(brokenPath));
  const session = await ui.harness.open({ server: ui.server, modelPath: brokenPath });
  try {
    const { page } = session;
    await waitForState(page, 'error');
    const error = page.locator('[data-testid="error"]');
    assert.ok(await error.isVisible());
    assert.match(await error.innerText(), /broken\.onnx/);
    assert.equal(await page.locator('[data-testid="overview"]').count(), 0);
    assert.equal(await page.locator('[data-testid="layer-table"]').isVisible(), false);
    await session.screenshot('broken-file');
    assertNoProblems(session);
  } finally {
    await session.close();
  }
});

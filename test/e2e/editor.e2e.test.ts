/**
 * End to end in a real VS Code (code-server) and a real browser: the LayerLens custom editor
 * opens the example workspace's models and shows what the files hold.
 *
 * Needs the host (`node scripts/ensure-host.mjs`, installed on first use) and the VSIX
 * (`npm run package`); both are done here when missing or stale, so the file also runs alone:
 *   node --import tsx --test --test-concurrency=1 test/e2e/*.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame } from 'playwright-core';
import { useExampleWorkbench } from '../support/exampleWorkbench';
import { countStoredTensors } from '../support/protoWire';

const TEST_TIMEOUT_MS = 120_000;
const EDITOR_READY_TIMEOUT_MS = 60_000;
const EXTENSION_ID = 'layerlens.layerlens';

const example = useExampleWorkbench('editor');

function lastLines(text: string, count: number): string {
  return text.split('\n').slice(-count).join('\n');
}

/** Runs a test step; on failure, saves a screenshot and adds the extension host's log. */
async function withDiagnostics(name: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (error) {
    const { server: running, workbench: browser } = example();
    const screenshot = await browser.screenshot(`e2e-${name}-failure`).catch(() => 'none');
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${lastLines(running.extensionHostLog(), 60)}` +
        `\n\nbrowser console (end):\n${lastLines(browser.consoleLog(), 30)}`,
      { cause: error },
    );
  }
}

/** Opens a model with Quick Open and returns the LayerLens webview frame once it settled. */
async function openModel(fileName: string): Promise<{ frame: Frame; state: string }> {
  const { workbench: browser } = example();
  await browser.runCommand('View: Close All Editors');
  await browser.openFile(fileName);
  await browser.page
    .locator('.tabs-container .tab.active', { hasText: fileName })
    .waitFor({ state: 'visible', timeout: EDITOR_READY_TIMEOUT_MS });
  const frame = await browser.frameWith('body[data-state]', EDITOR_READY_TIMEOUT_MS);
  // document.body.dataset.state: loading, then ready or error.
  const body = frame.locator('body');
  await frame
    .locator('body:not([data-state="loading"])')
    .waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
  const state = (await body.getAttribute('data-state')) ?? '';
  return { frame, state };
}

/** The extension that owns a webview frame, from the outer webview iframe's URL. */
function owningExtension(frame: Frame): string | undefined {
  for (let current: Frame | null = frame; current; current = current.parentFrame()) {
    const extensionId = new URL(current.url()).searchParams.get('extensionId');
    if (extensionId) return extensionId;
  }
  return undefined;
}

/** Expected numbers from the test's own protobuf wire walker, which shares no code with the extension's reader. */
function onnxParameters(file: string): { parameters: number; tensors: number } {
  const counted = countStoredTensors(readFileSync(file));
  return { parameters: counted.parameterCount, tensors: counted.tensorCount };
}

interface SafetensorsEntry {
  readonly dtype: string;
  readonly shape: number[];
}

function safetensorsTensors(file: string): Map<string, SafetensorsEntry> {
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Record<
    string,
    SafetensorsEntry
  >;
  return new Map(Object.entries(header).filter(([name]) => name !== '__metadata__'));
}

async function shownInteger(frame: Frame, testId: string): Promise<number> {
  const value = await frame.getAttribute(`[data-testid="${testId}"]`, 'data-value');
  assert.ok(value !== null, `[data-testid="${testId}"] has no data-value`);
  assert.match(value, /^\d+$/, `[data-testid="${testId}"] data-value is not an integer: ${value}`);
  return Number(value);
}

test(
  'a real ONNX model opens in the LayerLens editor with its exact parameter count',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    withDiagnostics('onnx', async () => {
      const model = path.join(example().workspace, 'models', 'silero_vad_v5.onnx');
      const expected = onnxParameters(model);
      assert.ok(
        expected.parameters > 100_000,
        `the test's own count looks wrong: ${expected.parameters}`,
      );

      const { frame, state } = await openModel('silero_vad_v5.onnx');
      assert.equal(state, 'ready');
      assert.equal(owningExtension(frame), EXTENSION_ID);
      await frame
        .locator('[data-testid="tensor-row"]')
        .first()
        .waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
      await frame.locator('[data-testid="overview"]').waitFor();

      assert.equal(await shownInteger(frame, 'parameter-count'), expected.parameters);
      assert.equal(await shownInteger(frame, 'tensor-count'), expected.tensors);
      const rows = await frame.locator('[data-testid="tensor-row"]').count();
      assert.ok(
        rows > 0 && rows <= expected.tensors,
        `${rows} rows for ${expected.tensors} tensors`,
      );
      // Largest tensor first, selected: its histogram is drawn by the webview.
      await frame
        .locator('[data-testid="layer-table"]')
        .getByRole('columnheader', { name: 'Params', exact: true })
        .click();
      const firstRow = frame.locator('[data-testid="tensor-row"]').first();
      await firstRow.click();
      await frame.locator('[data-testid="histogram"] svg').waitFor({ timeout: 10_000 });
      assert.equal(await firstRow.getAttribute('aria-selected'), 'true');
      await example().workbench.screenshot('e2e-onnx');
    }),
);

test(
  'a safetensors file shows one row per tensor with its name',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    withDiagnostics('safetensors', async () => {
      const model = path.join(example().workspace, 'models', 'mlp_classifier.safetensors');
      const tensors = safetensorsTensors(model);
      const expectedParameters = [...tensors.values()].reduce(
        (total, tensor) => total + tensor.shape.reduce((product, dim) => product * dim, 1),
        0,
      );

      const { frame, state } = await openModel('mlp_classifier.safetensors');
      assert.equal(state, 'ready');
      const rows = frame.locator('[data-testid="tensor-row"]');
      await rows.first().waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
      assert.equal(await shownInteger(frame, 'parameter-count'), expectedParameters);
      assert.equal(await shownInteger(frame, 'tensor-count'), tensors.size);
      // The Weights view (the default) lists the two matrices; All tensors every tensor.
      await frame.locator('[data-testid="table-count"]', { hasText: 'weights' }).waitFor();
      assert.equal(await rows.count(), 2);
      await frame.locator('[data-testid="tensor-view"] [data-view="all"]').click();
      assert.equal(await rows.count(), tensors.size);
      const indices = await rows.evaluateAll((elements) =>
        elements.map((element) => element.getAttribute('data-index')),
      );
      assert.deepEqual(
        indices,
        [...tensors.keys()].map((_, index) => String(index)),
      );
      const rowTexts = await rows.allTextContents();
      for (const name of tensors.keys()) {
        assert.ok(
          rowTexts.some((text) => text.includes(name)),
          `no row names ${name}; rows:\n${rowTexts.join('\n')}`,
        );
      }
      await example().workbench.screenshot('e2e-safetensors');
    }),
);

test(
  'a broken model file shows an error that names the file and the problem',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    withDiagnostics('error', async () => {
      const { frame, state } = await openModel('broken.onnx');
      assert.equal(state, 'error');
      const error = (await frame.locator('[data-testid="error"]').textContent()) ?? '';
      assert.ok(error.includes('broken.onnx'), `the error does not name the file: ${error}`);
      const problem = error.replaceAll('broken.onnx', '').trim();
      assert.ok(problem.split(/\s+/).length >= 3, `the error does not say what is wrong: ${error}`);
      assert.equal(await frame.locator('[data-testid="tensor-row"]').count(), 0);
      await example().workbench.screenshot('e2e-error');
    }),
);

async function poll<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test(
  'a crashed server is restarted and the open editor fetches its model again',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    withDiagnostics('restart', async () => {
      const { server: running } = example();
      const model = path.join(example().workspace, 'models', 'silero_vad_legacy.onnx');
      const expected = onnxParameters(model);
      const { frame, state } = await openModel('silero_vad_legacy.onnx');
      assert.equal(state, 'ready');

      const servers = running.extensionProcesses('dist/server.js');
      assert.equal(servers.length, 1, `LayerLens server processes: ${servers.join(', ')}`);
      const crashed = servers[0]!;
      // Marks the overview shown now: after the reload the webview renders a new one.
      await frame
        .locator('[data-testid="overview"]')
        .evaluate((overview) => overview.setAttribute('data-e2e-before-crash', ''));
      process.kill(crashed, 'SIGKILL');

      const restarted = await poll(
        'a new LayerLens server process',
        () => running.extensionProcesses('dist/server.js').find((id) => id !== crashed),
        30_000,
      );
      assert.notEqual(restarted, crashed);
      await frame
        .locator('[data-testid="overview"]:not([data-e2e-before-crash])')
        .waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
      await frame.locator('body[data-state="ready"]').waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
      assert.equal(await shownInteger(frame, 'parameter-count'), expected.parameters);
      assert.ok((await frame.locator('[data-testid="tensor-row"]').count()) > 0);
      await example().workbench.screenshot('e2e-restart');
    }),
);

/**
 * End to end in a real VS Code (code-server) and a real browser: the example training
 * script shows LayerLens code lenses with the model's numbers, and "Show in LayerLens" on
 * a layer opens the model in the LayerLens editor with that layer's tensor selected.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/lenses.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Locator } from 'playwright-core';
import { useExampleWorkbench } from '../support/exampleWorkbench';
import type { Workbench } from '../support/vscodeBrowser';

const TEST_TIMEOUT_MS = 150_000;
const LENS_TIMEOUT_MS = 60_000;

const example = useExampleWorkbench('lenses');

function lastLines(text: string, count: number): string {
  return text.split('\n').slice(-count).join('\n');
}

/** The code lens row (all lenses of one line) whose text contains `text`. */
function lensRow(browser: Workbench, text: string): Locator {
  return browser.page.locator('.monaco-editor .codelens-decoration', { hasText: text }).first();
}

/** Moves the cursor of the active text editor to `line` (1-based) with Go to Line. */
async function goToLine(browser: Workbench, line: number): Promise<void> {
  await browser.page.keyboard.press('Control+G');
  const input = browser.page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}`);
  await browser.page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

test(
  'the training script shows lenses with the model numbers; Show in LayerLens opens its row',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench } = example();
    const browser = workbench;
    try {
      await browser.openFile('train.py');
      await browser.page
        .locator('.tabs-container .tab.active', { hasText: 'train.py' })
        .waitFor({ state: 'visible', timeout: LENS_TIMEOUT_MS });

      // The layer lens is resolved (sparsity needs the server's statistics) before it shows.
      const fc1 = lensRow(browser, '✓ 64×32');
      await fc1.waitFor({ state: 'visible', timeout: LENS_TIMEOUT_MS });
      const fc1Text = (await fc1.textContent())?.replace(/\s+/g, ' ').trim() ?? '';
      assert.match(
        fc1Text,
        /^LayerLens: ✓ 64×32 · 2\.11K params · sparsity 0\.0% · eff\. rank [\d.]+ \| Show in LayerLens \| Compress…$/,
      );
      const head = (await lensRow(browser, '✓ 10×64').textContent()) ?? '';
      assert.match(head, /LayerLens: ✓ 10×64 · 650 params/);
      await browser.screenshot('e2e-lenses');

      // VS Code draws the lenses of the lines in view only: scroll to the save calls.
      await browser.page.locator('.monaco-editor .view-lines').first().click();
      await goToLine(browser, 75);
      const saved = lensRow(browser, 'params · 10.6 KB');
      await saved.waitFor({ state: 'visible', timeout: LENS_TIMEOUT_MS });
      assert.equal(
        (await saved.textContent())?.trim(),
        'LayerLens: 2.89K params · 10.6 KB · 3 layers · Open',
      );
      await lensRow(browser, 'not written yet').waitFor({ state: 'visible' });
      await browser.screenshot('e2e-lenses-save');
      await goToLine(browser, 1);
      await fc1.waitFor({ state: 'visible', timeout: LENS_TIMEOUT_MS });

      // A hover on the definition gives every tensor's numbers.
      // (The editor renders spaces as no-break spaces, which \s matches.)
      await browser.page
        .locator('.monaco-editor .view-line', { hasText: /self\.encoder\.fc1\s=\snn\.Linear/ })
        .hover({ position: { x: 120, y: 8 } });
      const hover = browser.page.locator('.monaco-hover', { hasText: 'encoder.fc1.weight' });
      await hover.waitFor({ state: 'visible', timeout: LENS_TIMEOUT_MS });
      const hoverText = (await hover.innerText()).replace(/\s+/g, ' ');
      assert.match(hoverText, /Declared: weight 64×32, bias 64/);
      assert.match(hoverText, /mlp_classifier\.safetensors/);
      assert.match(hoverText, /encoder\.fc1\.bias/);
      await browser.screenshot('e2e-lenses-hover');
      await browser.page.keyboard.press('Escape');
      await browser.page.mouse.move(0, 0);

      // The head's row is not the first one: the editor must select and scroll to it.
      await lensRow(browser, '✓ 10×64').getByText('Show in LayerLens', { exact: true }).click();
      const frame = await browser.frameWith('[data-testid="tensor-row"]', LENS_TIMEOUT_MS);
      const selected = frame.locator('[data-testid="tensor-row"][aria-selected="true"]');
      await selected.waitFor({ timeout: LENS_TIMEOUT_MS });
      const rowText = (await selected.textContent()) ?? '';
      assert.ok(rowText.includes('head.fc2.weight'), `selected row: ${rowText}`);
      assert.equal(await selected.count(), 1);
      // The script stays open beside the model.
      await browser.page
        .locator('.tabs-container .tab', { hasText: 'mlp_classifier.safetensors' })
        .waitFor({ state: 'visible' });
      assert.ok(await lensRow(browser, '✓ 64×32').isVisible());
      await browser.screenshot('e2e-lenses-show');
    } catch (error) {
      const screenshot = await browser.screenshot('e2e-lenses-failure').catch(() => 'none');
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(
        `${message}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${lastLines(server.extensionHostLog(), 60)}` +
          `\n\nbrowser console (end):\n${lastLines(browser.consoleLog(), 30)}`,
        { cause: error },
      );
    }
  },
);

/**
 * End to end in a real VS Code (code-server) and a real browser: compress the example
 * safetensors model from its editor, then "Compare with original" in the report opens the
 * diff editor, whose table lists the compressed tensors and overlays a pair's histograms.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/diff.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickQuickItem, useExampleWorkbench } from '../support/exampleWorkbench';

const TEST_TIMEOUT_MS = 240_000;
const UI_TIMEOUT_MS = 60_000;
const MODEL = 'mlp_classifier.safetensors';

const example = useExampleWorkbench('diff');

test(
  'compress, then Compare with original: the diff editor shows the table, an overlaid histogram, both spectra and the ΔW heatmap',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench } = example();
    const { page } = workbench;
    try {
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      const row = frame.locator('[data-testid="tensor-row"][data-index="0"]');
      await row.waitFor({ timeout: UI_TIMEOUT_MS });
      await row.click({ button: 'right' });
      const menuItem = page.locator('.context-view .monaco-menu .action-label', {
        hasText: 'Compress…',
      });
      await menuItem.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await menuItem.click();
      await pickQuickItem(page, 'Int8 per', 'Int8 per channel', UI_TIMEOUT_MS);
      await pickQuickItem(page, 'Fake', 'Fake-quant', UI_TIMEOUT_MS);

      const report = frame.locator('[data-testid="compression-report"]');
      await report.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await report.getByRole('button', { name: 'Compare with original' }).click();

      const diff = await workbench.frameWith('[data-testid="diff-table"]', UI_TIMEOUT_MS);
      const pair = diff.locator('[data-testid="diff-row"][data-tensor="encoder.fc1.weight"]');
      await pair.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match((await pair.textContent()) ?? '', /same name/);
      await diff.getByTestId('diff-changed-only').check();
      assert.equal(await diff.locator('[data-testid="diff-row"]').count(), 1);
      await pair.click();
      await diff
        .locator('[data-testid="diff-histogram"] rect.ll-bar-overlay')
        .first()
        .waitFor({ timeout: UI_TIMEOUT_MS });
      // layerlens/pairDetail through the panel: both spectra overlaid, the |ΔW| heatmap.
      await diff
        .locator('[data-testid="diff-spectra"] path.ll-sigma-overlay')
        .waitFor({ timeout: UI_TIMEOUT_MS });
      await diff.getByTestId('diff-delta-heatmap').waitFor({ timeout: UI_TIMEOUT_MS });
      await workbench.screenshot('e2e-diff-editor');
    } catch (error) {
      const screenshot = await workbench.screenshot('e2e-diff-failure').catch(() => 'none');
      const log = server.extensionHostLog().split('\n').slice(-60).join('\n');
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${log}`,
        { cause: error },
      );
    }
  },
);

/**
 * End to end in a real VS Code (code-server): the Spectrum and Heatmap tabs of a Silero
 * LSTM weight, computed by the LayerLens server through the extension. Saves screenshots
 * of both panels (test-results/e2e-spectrum*.png, e2e-heatmap*.png).
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/spectra.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Frame } from 'playwright-core';
import { testResultsDir } from '../support/codeServer';
import { useExampleWorkbench } from '../support/exampleWorkbench';

const TEST_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 90_000;
const LSTM_WEIGHT = 'If_0_then_branch__Inline_0__decoder.rnn.weight_ih';
const STFT_BASIS = 'If_0_then_branch__Inline_0__stft.forward_basis_buffer';

const example = useExampleWorkbench('spectra');

async function panelScreenshot(frame: Frame, name: string): Promise<void> {
  mkdirSync(testResultsDir, { recursive: true });
  await frame
    .locator('[data-testid="histogram"]')
    .screenshot({ path: path.join(testResultsDir, `${name}.png`) });
}

test(
  "a Silero LSTM weight's spectrum and heatmap in the real VS Code",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench } = example();
    const browser = workbench;
    try {
      await browser.openFile('silero_vad_v5.onnx');
      const frame = await browser.frameWith('body[data-state]', READY_TIMEOUT_MS);
      await frame.locator('body[data-state="ready"]').waitFor({ timeout: READY_TIMEOUT_MS });

      await frame.locator('[data-testid="filter"]').fill(LSTM_WEIGHT);
      const row = frame.locator('[data-testid="tensor-row"]').first();
      await row.click();
      await frame.locator('[data-testid="tab-spectrum"]').click();
      await frame
        .locator('[data-testid="spectrum-chart"] path.ll-sigma-line')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      const rank = frame.locator('[data-testid="spectrum-rank"]');
      const startRank = Number(await rank.getAttribute('data-value'));
      assert.ok(startRank > 1 && startRank < 128, `rank for 90% energy: ${startRank}`);
      await frame.locator('[data-testid="rank-slider"]').fill('32');
      assert.equal(await rank.getAttribute('data-value'), '32');
      const error = Number(
        await frame.locator('[data-testid="spectrum-error"]').getAttribute('data-value'),
      );
      assert.ok(error > 0 && error < 1, `relative error at rank 32: ${error}`);
      await frame.locator('[data-testid="filter"]').fill('decoder.rnn');
      await browser.screenshot('e2e-spectrum');
      await panelScreenshot(frame, 'e2e-spectrum-panel');

      await frame.locator('[data-testid="tab-heatmap"]').click();
      await frame
        .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      assert.match(
        await frame.locator('[data-testid="structured-sparsity"]').innerText(),
        /All-zero rows/,
      );
      await frame.locator('[data-testid="heatmap-zoom-in"]').click();
      await frame.locator('[data-testid="heatmap-zoom-in"]').click();
      await browser.screenshot('e2e-heatmap');
      await panelScreenshot(frame, 'e2e-heatmap-panel');

      // A convolution kernel: the STFT basis [258, 1, 256] as a 258 × 256 matrix.
      await frame.locator('[data-testid="filter"]').fill(STFT_BASIS);
      await frame.locator('[data-testid="tensor-row"]').first().click();
      await frame
        .locator('[data-testid="heatmap"]:not([data-tiles-drawn="0"])[data-tiles-drawn]')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      assert.match(await frame.locator('[data-testid="heatmap-legend"]').innerText(), /258 × 256/);
      await browser.screenshot('e2e-heatmap-conv');
      await panelScreenshot(frame, 'e2e-heatmap-conv-panel');
    } catch (failure) {
      await browser.screenshot('e2e-spectra-failure').catch(() => undefined);
      const log = server.extensionHostLog().split('\n').slice(-40).join('\n');
      throw new Error(
        `${failure instanceof Error ? failure.message : String(failure)}\n\nextension host log (end):\n${log}`,
        { cause: failure },
      );
    }
  },
);

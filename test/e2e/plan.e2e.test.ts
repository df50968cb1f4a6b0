/**
 * End to end in a real VS Code (code-server) and a real browser: open the Silero VAD v5
 * model, run the measured sensitivity sweep and see its chart, run LayerLens: Plan
 * Compression… (target 4x, measured), see the plan in the editor, apply it, and see the
 * attempts and the compression report; the planned file is on disk and at most a quarter
 * of the original, which is unchanged.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/plan.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startPlanCompression, useExampleWorkbench } from '../support/exampleWorkbench';

const TEST_TIMEOUT_MS = 300_000;
const UI_TIMEOUT_MS = 60_000;
/** The measured sweep and the plan's application run the model many times. */
const JOB_TIMEOUT_MS = 180_000;
const MODEL = 'silero_vad_v5.onnx';

const example = useExampleWorkbench('plan');

test(
  'sensitivity chart, then Plan Compression… 4x: the plan shows, Apply writes the file and the report',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench, workspace } = example();
    const { page } = workbench;
    const model = path.join(workspace, 'models', MODEL);
    const checksum = createHash('sha256').update(readFileSync(model)).digest('hex');
    try {
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      const row = frame.locator('[data-testid="tensor-row"]', { hasText: 'decoder.rnn.weight_ih' });
      await row.first().click({ timeout: UI_TIMEOUT_MS });
      await frame.locator('[data-testid="tab-sensitivity"]').click({ timeout: UI_TIMEOUT_MS });
      await frame.locator('[data-testid="sensitivity-run"]').click({ timeout: UI_TIMEOUT_MS });
      const chart = frame.locator('[data-testid="sensitivity-chart"]');
      await chart.locator('svg, canvas, [data-testid="sensitivity-bar"]').first().waitFor({
        state: 'visible',
        timeout: JOB_TIMEOUT_MS,
      });
      await frame
        .locator('[data-testid="sensitivity-progress"]')
        .waitFor({ state: 'hidden', timeout: JOB_TIMEOUT_MS });
      await workbench.screenshot('plan-sensitivity');

      await startPlanCompression(page, '4x', UI_TIMEOUT_MS);
      // A click, not Enter: the pick stays open when focus goes back to the webview.
      await page
        .locator('.quick-input-list .monaco-list-row[data-index="0"]', {
          hasText: 'Measured sensitivity',
        })
        .click({ timeout: UI_TIMEOUT_MS });

      const panel = frame.locator('[data-testid="plan-panel"]');
      await panel.waitFor({ state: 'visible', timeout: JOB_TIMEOUT_MS });
      const planText = (await panel.textContent()) ?? '';
      assert.match(planText, /4× smaller/);
      assert.match(planText, /decoder\.rnn\.weight_ih/);
      assert.match(planText, /int8|int4/);
      await workbench.screenshot('plan-panel');

      await frame.locator('[data-testid="plan-apply"]').click({ timeout: UI_TIMEOUT_MS });
      const attempts = frame.locator('[data-testid="plan-attempts"]');
      await attempts.waitFor({ state: 'visible', timeout: JOB_TIMEOUT_MS });
      assert.match((await attempts.textContent()) ?? '', /Target met/);
      const report = frame.locator('[data-testid="compression-report"]');
      await report.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      assert.match((await report.textContent()) ?? '', /silero_vad_v5\.plan\.onnx/);
      await workbench.screenshot('plan-applied');

      const output = path.join(workspace, 'models', 'silero_vad_v5.plan.onnx');
      assert.ok(existsSync(output), `${output} was not written`);
      // Reports and recipes go into the model's .layerlens folder, not beside it.
      const own = path.join(workspace, 'models', 'silero_vad_v5.onnx.layerlens');
      assert.deepEqual(readdirSync(own).sort(), [
        'silero_vad_v5.plan.onnx.recipe.json',
        'silero_vad_v5.plan.onnx.report.json',
      ]);
      assert.ok(!existsSync(`${output}.report.json`), 'a loose report beside the model');
      assert.ok(statSync(output).size <= statSync(model).size / 4, 'the file meets 4×');
      const left = readdirSync(path.dirname(model)).filter((name) => name.includes('plan-attempt'));
      assert.deepEqual(left, [], 'the attempts are removed');
      assert.equal(
        createHash('sha256').update(readFileSync(model)).digest('hex'),
        checksum,
        'the original is unchanged',
      );
    } catch (error) {
      const screenshot = await workbench.screenshot('plan-failure').catch(() => 'none');
      const log = server.extensionHostLog().split('\n').slice(-60).join('\n');
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${log}`,
        { cause: error },
      );
    }
  },
);

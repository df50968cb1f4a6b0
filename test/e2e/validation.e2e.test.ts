/**
 * End to end in a real VS Code (code-server) and a real browser: a model whose output is
 * a saturated sigmoid (pinned near 1 for every sample input, so no comparison on those
 * inputs can show a difference) is written into the workspace at set-up. Compress… int8
 * writes the file and the report says "Not validated" with the reason; Plan Compression…
 * warns before Apply and, once applied, the plan panel says "Not validated" and why.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/validation.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Frame } from 'playwright-core';
import {
  pickQuickItem,
  startPlanCompression,
  useExampleWorkbench,
  withDiagnostics,
} from '../support/exampleWorkbench';
import { writeModel } from '../support/onnxBuilder';
import { saturatedSigmoidNet } from '../support/validationModels';

const TEST_TIMEOUT_MS = 240_000;
const UI_TIMEOUT_MS = 60_000;
const JOB_TIMEOUT_MS = 120_000;
const MODEL = 'saturated_sigmoid.onnx';

// The model is in the workspace before VS Code starts, as a user's file would be.
const example = useExampleWorkbench('validation', (workspace) =>
  writeModel(path.join(workspace, 'models'), MODEL, saturatedSigmoidNet()).then(() => undefined),
);
/** The model's editor, opened by the first test. */
let editorFrame: Frame | undefined;

test(
  'Compress… int8 on a saturated sigmoid: the report says "Not validated" and why',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const opened = example();
    const { workbench, workspace } = opened;
    const { page } = workbench;
    await withDiagnostics(opened, 'e2e-validation-compress', async () => {
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      editorFrame = frame;
      await frame
        .locator('[data-testid="tensor-row"]', { hasText: 'fc1.weight' })
        .first()
        .waitFor({ timeout: UI_TIMEOUT_MS });

      await frame.locator('[data-testid="compress"]').click({ timeout: UI_TIMEOUT_MS });
      await page
        .locator('.quick-input-widget', { hasText: `Compress ${MODEL} (whole model)` })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await pickQuickItem(page, 'Int8 per', 'Int8 per channel', UI_TIMEOUT_MS);

      const report = frame.locator('[data-testid="compression-report"]');
      await report.waitFor({ state: 'visible', timeout: JOB_TIMEOUT_MS });
      const badge = report.locator('[data-testid="report-verdict-badge"]');
      assert.equal(await badge.textContent(), 'Not validated');
      const reasons = await report
        .locator('[data-testid="report-verdict-reasons"] li')
        .allTextContents();
      assert.ok(
        reasons.some((reason) => /output 'score' is pinned near 1/.test(reason)),
        reasons.join('\n'),
      );
      assert.match(
        (await report.locator('[data-testid="report-deviation-caption"]').textContent()) ?? '',
        /on 8 sample inputs: the worst sample, and the mean/,
      );
      await workbench.screenshot('e2e-validation-report');
      const output = path.join(workspace, 'models', 'saturated_sigmoid.int8.onnx');
      assert.ok(existsSync(output), `${output} was written although not validated`);
      await report.getByRole('button', { name: 'Close' }).click();
      await report.waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
    });
  },
);

test(
  'Plan Compression… 3x measured on a saturated sigmoid: a warning, then "Not validated" and why',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const opened = example();
    const { workbench, workspace } = opened;
    const { page } = workbench;
    await withDiagnostics(opened, 'e2e-validation-plan', async () => {
      const frame = editorFrame;
      assert.ok(frame, 'the model is open (the first test opened it)');
      await startPlanCompression(page, '3x', UI_TIMEOUT_MS);
      // A click, not Enter: under load Enter reached the list before it took key presses.
      await page
        .locator('.quick-input-list .monaco-list-row[data-index="0"]', {
          hasText: 'Measured sensitivity',
        })
        .click({ timeout: UI_TIMEOUT_MS });

      const panel = frame.locator('[data-testid="plan-panel"]');
      await panel.waitFor({ state: 'visible', timeout: JOB_TIMEOUT_MS });
      const warnings = panel.locator('[data-testid="plan-warnings"]');
      await warnings.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      assert.match((await warnings.textContent()) ?? '', /pinned/);
      await workbench.screenshot('e2e-validation-plan');

      await frame.locator('[data-testid="plan-apply"]').click({ timeout: UI_TIMEOUT_MS });
      const attempts = frame.locator('[data-testid="plan-attempts"]');
      await attempts.waitFor({ state: 'visible', timeout: JOB_TIMEOUT_MS });
      assert.match((await attempts.textContent()) ?? '', /\(not validated\)/);
      assert.equal(
        await frame.locator('[data-testid="plan-verdict-badge"]').textContent(),
        'Not validated',
      );
      const reasons = await frame
        .locator('[data-testid="plan-verdict-reasons"] li')
        .allTextContents();
      assert.ok(
        reasons.some((reason) => /output 'score' is pinned near 1/.test(reason)),
        reasons.join('\n'),
      );
      await workbench.screenshot('e2e-validation-plan-applied');
      assert.ok(existsSync(path.join(workspace, 'models', 'saturated_sigmoid.plan.onnx')));
    });
  },
);

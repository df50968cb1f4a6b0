/**
 * Retakes media/screenshot.png, the picture at the top of the README, from the real
 * VS Code (code-server with the packaged extension, as the end-to-end tests run it): a
 * real model fetched by scripts/fetch-models.mjs into .tmp/models/, its Weights table and
 * the detail panel of its largest weight.
 *
 *   node scripts/fetch-models.mjs && node --import tsx scripts/readme-screenshot.mts
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openExampleWorkbench } from '../test/support/exampleWorkbench.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const MODEL = 'ppocr-v3-en-rec.onnx';
const READY_TIMEOUT_MS = 120_000;

const source = path.join(projectRoot, '.tmp', 'models', MODEL);
if (!existsSync(source)) {
  throw new Error(`${source} is missing: run node scripts/fetch-models.mjs first`);
}
const example = await openExampleWorkbench('readme-screenshot', async (workspace) => {
  mkdirSync(path.join(workspace, 'models'), { recursive: true });
  copyFileSync(source, path.join(workspace, 'models', MODEL));
});
try {
  const { workbench } = example;
  await workbench.openFile(MODEL);
  const frame = await workbench.frameWith('body[data-state]', READY_TIMEOUT_MS);
  await frame.locator('body[data-state="ready"]').waitFor({ timeout: READY_TIMEOUT_MS });
  // The Weights view, once the server said which tensors are weights.
  await frame
    .locator('.ll-table-count', { hasText: 'weights of' })
    .waitFor({ timeout: READY_TIMEOUT_MS });
  await frame
    .locator('[data-testid="layer-table"]')
    .getByRole('columnheader', { name: 'Params', exact: true })
    .click();
  await frame.locator('[data-testid="tensor-row"]').first().click();
  await frame.locator('[data-testid="histogram"] svg').waitFor({ timeout: READY_TIMEOUT_MS });
  // Statistics of the visible rows settle before the picture is taken.
  await frame
    .locator('[data-testid="tensor-row"] .ll-col-std')
    .first()
    .filter({ hasText: /\d/ })
    .waitFor({ timeout: READY_TIMEOUT_MS });
  await workbench.page.waitForTimeout(2_000);
  const shot = await workbench.screenshot('readme-screenshot');
  copyFileSync(shot, path.join(projectRoot, 'media', 'screenshot.png'));
  console.log(`media/screenshot.png retaken from ${shot}`);
} finally {
  await example.close();
}

/**
 * End to end in a real VS Code (code-server) and a real browser: right-click a row of the
 * example safetensors model → Compress… → method and level in the quick picks → the report
 * appears in the editor and the new file is on disk, the original unchanged.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/compress.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pickQuickItem, useExampleWorkbench } from '../support/exampleWorkbench';

const TEST_TIMEOUT_MS = 180_000;
const UI_TIMEOUT_MS = 60_000;
const MODEL = 'mlp_classifier.safetensors';

const example = useExampleWorkbench('compress');

function safetensorsHeader(file: string): Record<string, { dtype: string; shape: number[] }> {
  const bytes = readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.toString('utf8', 8, 8 + length)) as Record<
    string,
    { dtype: string; shape: number[] }
  >;
}

test(
  'right-click a row → Compress… → int8 + scales: the report appears and the new file exists',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench, workspace } = example();
    const { page } = workbench;
    const model = path.join(workspace, 'models', MODEL);
    const checksum = createHash('sha256').update(readFileSync(model)).digest('hex');
    try {
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      const row = frame.locator('[data-testid="tensor-row"][data-index="0"]');
      await row.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match((await row.textContent()) ?? '', /encoder\.fc1\.weight/);

      await row.click({ button: 'right' });
      const menuItem = page.locator('.context-view .monaco-menu .action-label', {
        hasText: 'Compress…',
      });
      await menuItem.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await workbench.screenshot('e2e-compress-menu');
      await menuItem.click();
      await page
        .locator('.quick-input-widget', { hasText: `Compress ${MODEL} (1 tensor)` })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await workbench.screenshot('e2e-compress-after-menu');
      await pickQuickItem(page, 'Int8 per', 'Int8 per channel', UI_TIMEOUT_MS);
      await pickQuickItem(page, 'scales', 'Int8 + scales', UI_TIMEOUT_MS);

      const report = frame.locator('[data-testid="compression-report"]');
      await report.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      const text = (await report.textContent()) ?? '';
      assert.match(text, /mlp_classifier\.int8\.safetensors/);
      assert.match(text, /encoder\.fc1\.weight/);
      await workbench.screenshot('e2e-compress-report');

      const output = path.join(workspace, 'models', 'mlp_classifier.int8.safetensors');
      assert.ok(existsSync(output), `${output} was not written`);
      assert.ok(
        existsSync(
          path.join(
            workspace,
            'models',
            'mlp_classifier.safetensors.layerlens',
            'mlp_classifier.int8.safetensors.report.json',
          ),
        ),
        "the JSON report was not written into the model's .layerlens folder",
      );
      const header = safetensorsHeader(output);
      assert.equal(header['encoder.fc1.weight']?.dtype, 'I8');
      assert.deepEqual(header['encoder.fc1.weight.scale']?.shape, [64]);
      assert.equal(header['encoder.fc1.bias']?.dtype, 'F32', 'tensors not picked are copied');
      assert.equal(
        createHash('sha256').update(readFileSync(model)).digest('hex'),
        checksum,
        'the original is unchanged',
      );
    } catch (error) {
      const screenshot = await workbench.screenshot('e2e-compress-failure').catch(() => 'none');
      const log = server.extensionHostLog().split('\n').slice(-60).join('\n');
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${log}`,
        { cause: error },
      );
    }
  },
);

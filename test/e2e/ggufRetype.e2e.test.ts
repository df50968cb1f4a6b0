/**
 * End to end in a real VS Code (code-server): an unquantized llama-shaped GGUF written by
 * the tests' own writer (test/support/gguf_fixtures.py) is re-typed from the tensor
 * table's right-click menu (Compress… → llama.cpp block type → Q4_K); the written GGUF
 * reopens in LayerLens with the tensor as Q4_K. Then Plan Compression… at 4.5 bpw shows
 * the type table and the llama-quantize command.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/ggufRetype.e2e.test.ts
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readGgufHeader } from '../../src/server/formats/gguf/header';
import {
  pickQuickItem,
  startPlanCompression,
  useExampleWorkbench,
  withDiagnostics,
} from '../support/exampleWorkbench';
import { writeGgufLlm } from '../support/ggufFixtures';

const TEST_TIMEOUT_MS = 240_000;
const UI_TIMEOUT_MS = 60_000;
const MODEL = 'tiny-llm.gguf';
const OUTPUT = 'tiny-llm.ggml.gguf';
const TENSOR = 'blk.0.ffn_up.weight';

const example = useExampleWorkbench('gguf-retype', async (workspace) => {
  writeGgufLlm(path.join(workspace, 'models', MODEL), {
    layers: 2,
    width: 256,
    ff: 512,
    vocab: 512,
    alignment: 32,
  });
});

test(
  'right-click a GGUF tensor → Compress… → Q4_K: the written GGUF reopens with the tensor as Q4_K',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const opened = example();
    const { workbench, workspace } = opened;
    const { page } = workbench;
    const model = path.join(workspace, 'models', MODEL);
    const checksum = createHash('sha256').update(readFileSync(model)).digest('hex');
    await withDiagnostics(opened, 'e2e-gguf-retype', async () => {
      // The first Quick Open after start can outlast its wait on a loaded machine.
      await workbench.runCommand('View: Close All Editors');
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      const row = frame.locator('[data-testid="tensor-row"]', { hasText: TENSOR }).first();
      await row.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match((await row.textContent()) ?? '', /float16/);

      await row.click({ button: 'right' });
      const menuItem = page.locator('.context-view .monaco-menu .action-label', {
        hasText: 'Compress…',
      });
      await menuItem.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await menuItem.click();
      await page
        .locator('.quick-input-widget', { hasText: `Compress ${MODEL} (1 tensor)` })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await pickQuickItem(page, 'llama.cpp', 'llama.cpp block type', UI_TIMEOUT_MS);
      await pickQuickItem(page, 'Q4_K', 'Q4_K', UI_TIMEOUT_MS);

      const report = frame.locator('[data-testid="compression-report"]');
      await report.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      const text = (await report.textContent()) ?? '';
      assert.match(text, new RegExp(OUTPUT.replace(/\./g, '\\.')));
      assert.match(text, new RegExp(TENSOR.replace(/\./g, '\\.')));
      await workbench.screenshot('e2e-gguf-retype-report');

      const output = path.join(workspace, 'models', OUTPUT);
      assert.ok(existsSync(output), `${output} was not written`);
      const types = new Map(readGgufHeader(output).tensors.map((t) => [t.name, t.type.name]));
      assert.equal(types.get(TENSOR), 'Q4_K');
      assert.equal(types.get('blk.0.ffn_down.weight'), 'F16', 'tensors not picked are kept');
      assert.equal(
        createHash('sha256').update(readFileSync(model)).digest('hex'),
        checksum,
        'the original is unchanged',
      );

      // The written file opens in LayerLens with the new type.
      await workbench.runCommand('View: Close All Editors');
      // Quick Open's file index may not list a file written a moment ago (CI once saw "No
      // matching results"); the Explorer shows it as soon as the file watcher does.
      await page
        .locator('.explorer-folders-view .monaco-list-row .label-name', {
          hasText: new RegExp(`^${OUTPUT.replaceAll('.', '\\.')}$`),
        })
        .dblclick({ timeout: UI_TIMEOUT_MS });
      const reopened = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      const retyped = reopened.locator('[data-testid="tensor-row"]', { hasText: TENSOR }).first();
      await retyped.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match((await retyped.textContent()) ?? '', /Q4_K/);
      await workbench.screenshot('e2e-gguf-retype-reopened');
    });
  },
);

test(
  'Plan Compression… at 4.5 bpw on a GGUF shows the type table and the llama-quantize command',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const opened = example();
    const { workbench } = opened;
    const { page } = workbench;
    await withDiagnostics(opened, 'e2e-gguf-plan', async () => {
      await workbench.runCommand('View: Close All Editors');
      await workbench.openFile(MODEL);
      const frame = await workbench.frameWith('body[data-state="ready"]', UI_TIMEOUT_MS);
      await startPlanCompression(page, '4.5 bpw', UI_TIMEOUT_MS);

      const panel = frame.locator('[data-testid="plan-panel"]');
      await panel.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      const planText = (await panel.textContent()) ?? '';
      assert.match(planText, /output\.weight/);
      assert.match(planText, /Q6_K \(output matrix/);
      assert.match(planText, /blk\.1\.ffn_down\.weight/);
      assert.match(planText, /Q[2-8]_[0K]|IQ4_NL/);
      const command = frame.locator('[data-testid="plan-llama-quantize"]');
      await command.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      const commandText = (await command.textContent()) ?? '';
      assert.match(commandText, /llama-quantize/);
      assert.match(commandText, /--output-tensor-type q6_k/);
      assert.match(commandText, new RegExp(`${MODEL.replace(/\./g, '\\.')}`));
      await workbench.screenshot('e2e-gguf-plan-4.5bpw');
    });
  },
);

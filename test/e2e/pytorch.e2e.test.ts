/**
 * End to end in a real VS Code (code-server): a PyTorch checkpoint written by Python's
 * pickle and zipfile (test/support/torchSave.py, no torch) opens in the LayerLens editor,
 * and its int8 tensor's histogram is drawn.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/pytorch.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { useExampleWorkbench } from '../support/exampleWorkbench';
import { writeTorchCheckpoints, type CheckpointReference } from '../support/torchCheckpoints';

const TEST_TIMEOUT_MS = 120_000;
const EDITOR_READY_TIMEOUT_MS = 60_000;

let reference: CheckpointReference | undefined;
const example = useExampleWorkbench('pytorch', async (workspace) => {
  const written = await writeTorchCheckpoints(path.join(workspace, 'pt-fixtures'));
  reference = written['checkpoint.pt'];
  await copyFile(
    path.join(workspace, 'pt-fixtures', 'checkpoint.pt'),
    path.join(workspace, 'models', 'checkpoint.pt'),
  );
});

test(
  'a PyTorch checkpoint opens with its exact parameter count and an int8 tensor’s histogram',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { workbench } = example();
    const tensors = Object.entries(reference!.tensors);
    const parameters = tensors.reduce(
      (sum, [, tensor]) => sum + tensor.shape.reduce((product, side) => product * side, 1),
      0,
    );
    await workbench.runCommand('View: Close All Editors');
    await workbench.openFile('checkpoint.pt');
    const frame = await workbench.frameWith('body[data-state]', EDITOR_READY_TIMEOUT_MS);
    await frame
      .locator('body:not([data-state="loading"])')
      .waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
    assert.equal(await frame.locator('body').getAttribute('data-state'), 'ready');
    const rows = frame.locator('[data-testid="tensor-row"]');
    await rows.first().waitFor({ timeout: EDITOR_READY_TIMEOUT_MS });
    const shown = await frame.getAttribute('[data-testid="parameter-count"]', 'data-value');
    assert.equal(Number(shown), parameters);
    // Every tensor shows in the All tensors view (the default, Weights, lists the matrices).
    await frame.locator('[data-testid="table-count"]', { hasText: 'weights' }).waitFor();
    await frame.locator('[data-testid="tensor-view"] [data-view="all"]').click();
    assert.equal(await rows.count(), tensors.length);
    const quantized = rows.filter({ hasText: 'model.quant.codes' });
    await quantized.click();
    await frame.locator('[data-testid="histogram"] svg').waitFor({ timeout: 20_000 });
    assert.equal(await quantized.getAttribute('aria-selected'), 'true');
    await workbench.screenshot('e2e-pytorch');
  },
);

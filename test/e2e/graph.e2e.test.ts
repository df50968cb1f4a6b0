/**
 * End to end in a real VS Code (code-server): Silero VAD's Graph tab. Opens the model,
 * switches to Graph, expands the If group, fills the nodes by std (the statistics the table
 * computes anyway; measured sensitivity runs the model many times and is covered by
 * validation.e2e.test.ts), clicks a Conv node and sees its weight's histogram in the detail
 * panel. Saves test-results/e2e-graph*.png.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/graph.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from 'playwright-core';
import { useExampleWorkbench } from '../support/exampleWorkbench';

const TEST_TIMEOUT_MS = 240_000;
const READY_TIMEOUT_MS = 90_000;

const example = useExampleWorkbench('graph');

/** Types a query into the graph's search box and waits until its first match is focused. */
async function find(frame: Frame, query: string): Promise<void> {
  await frame.locator('[data-testid="graph-search"]').fill(query);
  await frame.locator('[data-testid="graph-search"]').press('Enter');
  await frame
    .locator('[data-testid="graph-search-count"]')
    .filter({ hasText: / of / })
    .waitFor({ timeout: READY_TIMEOUT_MS });
}

test(
  "Silero VAD's graph: expand the If group, overlay std, click a Conv node, see its histogram",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { server, workbench: browser } = example();
    try {
      await browser.openFile('silero_vad_v5.onnx');
      const frame = await browser.frameWith('body[data-state]', READY_TIMEOUT_MS);
      await frame.locator('body[data-state="ready"]').waitFor({ timeout: READY_TIMEOUT_MS });

      await frame.locator('[data-testid="view-graph"]').click();
      const view = frame.locator('[data-testid="graph-view"]');
      await frame
        .locator('[data-testid="graph-view"][data-state="ready"]')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      const status = frame.locator('[data-testid="graph-status"]');

      // The If node is a collapsed group; Enter lays out its branches.
      await find(frame, 'If');
      assert.match((await status.textContent()) ?? '', /· If ·.*collapsed/);
      const before = Number(await view.getAttribute('data-items'));
      await frame.locator('[data-testid="graph-canvas"]').focus();
      await browser.page.keyboard.press('Enter');
      await status.filter({ hasText: /expanded/ }).waitFor({ timeout: READY_TIMEOUT_MS });
      const after = Number(await view.getAttribute('data-items'));
      assert.ok(after > before, `expanding the If adds its branches (${before} → ${after} items)`);

      // Fill by std: the legend's range is the spread of the weights' std, and the focused
      // node's value lies inside it.
      await frame.locator('[data-testid="graph-overlay-fill"]').selectOption('std');
      const legend = frame.locator('[data-testid="legend-fill"]');
      await legend.waitFor({ timeout: READY_TIMEOUT_MS });
      const min = Number(await legend.getAttribute('data-min'));
      const max = Number(await legend.getAttribute('data-max'));
      assert.ok(min >= 0 && max > min, `std legend ${min} … ${max}`);

      // A Conv inside the opened branch, centred by the search: click it.
      await find(frame, 'Conv');
      assert.match((await status.textContent()) ?? '', /· Conv ·/);
      const value = Number(await status.getAttribute('data-fill-value'));
      assert.ok(value >= min && value <= max, `Conv std ${value} within ${min} … ${max}`);
      const box = (await frame.locator('[data-testid="graph-canvas"]').boundingBox())!;
      await browser.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      const header = frame.locator('[data-testid="histogram"] .ll-detail-header');
      // Silero's first Conv reads the STFT basis, a Constant of the else branch.
      await header.filter({ hasText: /Conv/ }).waitFor({ timeout: READY_TIMEOUT_MS });
      await frame.locator('[data-testid="histogram"] svg').waitFor({ timeout: READY_TIMEOUT_MS });
      assert.match((await header.textContent()) ?? '', /stft\.forward_basis_buffer/);
      await browser.screenshot('e2e-graph');
    } catch (failure) {
      await browser.screenshot('e2e-graph-failure').catch(() => undefined);
      const log = server.extensionHostLog().split('\n').slice(-40).join('\n');
      throw new Error(
        `${failure instanceof Error ? failure.message : String(failure)}\n\nextension host log (end):\n${log}`,
        { cause: failure },
      );
    }
  },
);

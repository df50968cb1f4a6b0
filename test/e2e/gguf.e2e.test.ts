/**
 * End to end in a real VS Code (code-server): a GGUF file written by the tests' independent
 * writer (test/support/gguf_fixtures.py) opens in the LayerLens editor, and the histogram of
 * a quantized (Q4_K) tensor is drawn from its dequantized values.
 *   node --import tsx --test --test-concurrency=1 test/e2e/gguf.e2e.test.ts
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { formatStat } from '../../src/shared/format';
import { useExampleWorkbench } from '../support/exampleWorkbench';
import { float32Of, writeGgufFixtures } from '../support/ggufFixtures';

const TEST_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 60_000;
const FILE = 'types-v3.gguf';
const TENSOR = 'blk.7.ffn_q4_k.weight';

let expected: Float32Array = new Float32Array();

const example = useExampleWorkbench('gguf', async (workspace) => {
  const fixtures = writeGgufFixtures();
  try {
    copyFileSync(fixtures.path(FILE), path.join(workspace, 'models', FILE));
    expected = float32Of(fixtures.expected[FILE]![TENSOR]!);
  } finally {
    fixtures.remove();
  }
});

test(
  'a GGUF opens in the LayerLens editor; a Q4_K tensor’s histogram shows its dequantized values',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { workbench } = example();
    try {
      await workbench.runCommand('View: Close All Editors');
      await workbench.openFile(FILE);
      const frame = await workbench.frameWith('body[data-state]', READY_TIMEOUT_MS);
      await frame
        .locator('body:not([data-state="loading"])')
        .waitFor({ timeout: READY_TIMEOUT_MS });
      assert.equal(await frame.locator('body').getAttribute('data-state'), 'ready');
      assert.equal(await frame.getAttribute('[data-testid="tensor-count"]', 'data-value'), '17');
      const row = frame.locator('[data-testid="tensor-row"]', { hasText: TENSOR });
      await row.waitFor({ timeout: READY_TIMEOUT_MS });
      assert.match((await row.textContent()) ?? '', /Q4_K/);
      await row.click();
      await frame.locator('[data-testid="histogram"] svg').waitFor({ timeout: 20_000 });
      const facts = (await frame.locator('[data-testid="histogram"]').textContent()) ?? '';
      // The panel's Min and Max are those of the values the blocks stand for.
      const min = Math.min(...expected);
      const max = Math.max(...expected);
      assert.ok(expected.length === 512, 'the fixture tensor');
      assert.match(facts, /Min/);
      assert.match(facts, /Max/);
      for (const value of [min, max]) {
        assert.ok(
          facts.includes(formatStat(value)),
          `the panel does not show ${formatStat(value)}: ${facts}`,
        );
      }
      await workbench.screenshot('e2e-gguf-q4k-histogram');
    } catch (error) {
      const screenshot = await workbench.screenshot('e2e-gguf-failure').catch(() => 'none');
      throw new Error(`${(error as Error).message}\nscreenshot: ${screenshot}`, { cause: error });
    }
  },
);

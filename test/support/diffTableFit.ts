/**
 * The diff table fits its page sideways (the Compare panel and the HTML report at 1280 px):
 * neither the page nor the table's container is wider than the window.
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';

export async function assertTableFits(page: Page): Promise<void> {
  // A string: this project's Node type check has no DOM types.
  const sizes = (await page.evaluate(`(() => {
    const root = document.documentElement;
    const table = document.querySelector('[data-testid="diff-table"]');
    const container = table.closest('.ll-diff-table-scroll') ?? table;
    return {
      pageWidth: root.scrollWidth,
      windowWidth: root.clientWidth,
      containerRight: container.getBoundingClientRect().right + window.scrollX,
    };
  })()`)) as { pageWidth: number; windowWidth: number; containerRight: number };
  assert.ok(
    sizes.pageWidth <= sizes.windowWidth,
    `the page is ${sizes.pageWidth} px wide in a ${sizes.windowWidth} px window`,
  );
  assert.ok(
    sizes.containerRight <= sizes.windowWidth,
    `the table's container ends at ${sizes.containerRight} px in a ${sizes.windowWidth} px window`,
  );
}

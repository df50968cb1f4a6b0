/**
 * The graph's "Compare: structure" overlay in headless Chromium, answered by the real
 * server: Silero VAD (legacy) against its int8 copy, as "Show in graph" of a comparison
 * opens it. The nodes the structure diff reports (added, changed, split) are filled with their
 * kind's colour on the legend, and the legend counts each kind and A's removed nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { compressModel } from '../../src/server/compress';
import { GRAPH_DIFF_KINDS, type GraphDiffKind } from '../../src/shared/diff';
import { LspMethods } from '../../src/shared/lsp';
import { lowRankValues, normalValues } from '../support/matrices';
import { graph, model, node, tensor, valueInfo, writeModel } from '../support/onnxBuilder';
import { useWebviewHarness } from '../support/webviewSession';

const SILERO_LEGACY = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');

const ui = useWebviewHarness({ folderPrefix: 'layerlens-structure-webview-' });

/**
 * B's editor shown as "Show in graph" shows it: its legend counts what the server's
 * structure diff of A and B reports, and nodes of each kind (those a search finds alone)
 * are filled with their kind's colour. Returns the kinds' counts.
 */
async function checkOverlay(
  a: string,
  b: string,
  screenshot?: string,
): Promise<Record<GraphDiffKind, number>> {
  const [uriA, uriB] = [pathToFileURL(a).toString(), pathToFileURL(b).toString()];
  // The comparison the Compare panel shows: its structure diff is what the graph must show.
  const diff = await ui.server.request(LspMethods.diff, { uri: uriA, other: uriB });
  const structure = diff.structure!;
  assert.equal(structure.unlisted, 0);
  const kindOf = new Map<string, GraphDiffKind>();
  const expected: Record<GraphDiffKind, number> = { unchanged: 0, added: 0, changed: 0, split: 0 };
  for (const change of structure.changes) {
    if (change.kind === 'removed') continue;
    for (const bNode of change.after ?? []) {
      kindOf.set(bNode.name, change.kind);
      expected[change.kind]++;
    }
  }
  const overview = await ui.server.request(LspMethods.graph, { uri: uriB });
  expected.unchanged = overview.nodeCount - expected.added - expected.changed - expected.split;

  const session = await ui.harness.open({ server: ui.server, modelPath: b });
  const { page } = session;
  try {
    await page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout: 90_000 });
    // "Show in graph" of the comparison: the Graph tab, filled by the structure diff.
    await session.postToWebview({ type: 'reveal', compareWith: uriA });
    await page
      .locator('[data-testid="graph-view"][data-state="ready"]')
      .waitFor({ timeout: 60_000 });
    const legend = page.locator('[data-testid="legend-fill"][data-metric="structureDiff"]');
    await legend.waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('graph-overlay-fill').inputValue(), 'structureDiff');
    const swatches = await legend.locator('[data-category]').evaluateAll((list) =>
      list.map((el) => ({
        name: el.getAttribute('data-category') ?? '',
        colour: el.getAttribute('data-colour') ?? '',
        count: el.getAttribute('data-count'),
      })),
    );
    assert.deepEqual(
      swatches.map((s) => s.name),
      [...GRAPH_DIFF_KINDS, 'mixed'],
    );
    for (const kind of GRAPH_DIFF_KINDS) {
      const swatch = swatches.find((s) => s.name === kind)!;
      assert.equal(Number(swatch.count), expected[kind], `${kind}: ${JSON.stringify(swatches)}`);
    }
    assert.equal(new Set(swatches.map((s) => s.colour)).size, swatches.length);
    const note = (await page.getByTestId('legend-note').textContent()) ?? '';
    assert.ok(note.includes(`${structure.counts.removed} of its node`), note);
    const colourOf = new Map(swatches.map((s) => [s.name, s.colour]));

    // Nodes of each kind that a search finds alone: focused, their fill is their kind's.
    const status = page.getByTestId('graph-status');
    for (const kind of GRAPH_DIFF_KINDS.filter((k) => k !== 'unchanged' && expected[k] > 0)) {
      const names = [...kindOf].filter(([, k]) => k === kind).map(([name]) => name);
      let checked = 0;
      for (const name of names) {
        const found = await ui.server.request(LspMethods.graphFind, {
          uri: uriB,
          query: { text: name },
        });
        if (found.total !== 1) continue;
        await page.getByTestId('graph-search').fill(name);
        await page.getByTestId('graph-search').press('Enter');
        await status
          .filter({ hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} · `) })
          .waitFor({ timeout: 60_000 });
        assert.equal(await status.getAttribute('data-fill-colour'), colourOf.get(kind), name);
        assert.ok(((await status.textContent()) ?? '').includes(`Compare: structure ${kind}`));
        if (++checked === 3) break;
      }
      assert.ok(checked > 0, `no ${kind} node is found alone by a search: ${names.join(', ')}`);
    }
    if (screenshot) await page.getByTestId('graph-view').screenshot({ path: screenshot });
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
  return expected;
}

test('Silero legacy against its int8 copy: the nodes the diff reports coloured by kind, the legend counts them', async () => {
  const a = path.join(ui.folder, 'silero_vad_legacy.onnx');
  await copyFile(SILERO_LEGACY, a);
  const b = (await compressModel(a, { tensors: [], options: { method: 'int8' } })).output;
  const counts = await checkOverlay(
    a,
    b,
    path.resolve('docs/screenshots/graph-structure-diff.png'),
  );
  // int8 inserts a DequantizeLinear before each weight's consumer (its output keeps the name).
  assert.ok(counts.added > 0, JSON.stringify(counts));
});

test('an MLP against its low-rank copy: the MatMuls split in two are coloured as split', async () => {
  const a = await writeModel(
    ui.folder,
    'mlp.onnx',
    model(
      graph({
        initializers: [
          tensor('fc1.weight', 'float32', [64, 48], lowRankValues(64, 48, 4, 1)),
          tensor('fc2.weight', 'float32', [48, 16], normalValues(48 * 16, 3, 0.2)),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 64])],
        outputs: [valueInfo('y', 'float32', ['batch', 16])],
        nodes: [
          node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
          node('Relu', ['h0'], ['h1']),
          node('MatMul', ['h1', 'fc2.weight'], ['y'], { name: 'fc2' }),
        ],
      }),
    ),
  );
  const b = (await compressModel(a, { tensors: [], options: { method: 'lowrank', rank: 4 } }))
    .output;
  const counts = await checkOverlay(a, b);
  assert.ok(counts.split >= 2, JSON.stringify(counts));
});

test('the overlay is offered once the model was compared, and not before', async () => {
  const a = path.join(ui.folder, 'first.onnx');
  await copyFile(SILERO_LEGACY, a);
  const b = (await compressModel(a, { tensors: [], options: { method: 'int8' } })).output;
  const option = (page: Page) =>
    page.locator('[data-testid="graph-overlay-fill"] option[value="structureDiff"]');
  const before = await ui.harness.open({ server: ui.server, modelPath: b });
  try {
    await before.page
      .locator('body[data-state="ready"]')
      .waitFor({ state: 'attached', timeout: 90_000 });
    assert.equal(await option(before.page).isDisabled(), true);
  } finally {
    await before.close();
  }
  // A comparison (the Compare panel's request): B's editor asks the server for its last one.
  await ui.server.request(LspMethods.diff, {
    uri: pathToFileURL(a).toString(),
    other: pathToFileURL(b).toString(),
  });
  const afterCompare = await ui.harness.open({ server: ui.server, modelPath: b });
  try {
    await afterCompare.page
      .locator('body[data-state="ready"]')
      .waitFor({ state: 'attached', timeout: 90_000 });
    await option(afterCompare.page)
      .and(afterCompare.page.locator(':enabled'))
      .waitFor({ state: 'attached', timeout: 60_000 });
    assert.deepEqual(afterCompare.problems, []);
  } finally {
    await afterCompare.close();
  }
});

/**
 * The Graph and Modules tabs in headless Chromium, answered by the real server: Silero
 * VAD's If nodes as groups holding their branches, overlay colours against the legend and
 * the table's numbers, click → table selection, search, keyboard, the DOM staying small
 * for a 20,000-node model, and the treemap of a safetensors file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { LspMethods } from '../../src/shared/lsp';
import { writeScopedModel } from '../support/graphModels';
import { graph, model, node, tensor, valueInfo, writeModel } from '../support/onnxBuilder';
import { writeSafetensors } from '../support/safetensorsBuilder';
import { startServer, type ServerProcess } from '../support/serverProcess';
import { WebviewHarness } from '../support/webviewHarness';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const SILERO_LEGACY = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
/** Elements the whole page may hold with the graph of a 20,000-node model on screen. */
const DOM_NODE_BUDGET = 3000;

let harness: WebviewHarness;
let server: ServerProcess;
let folder: string;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'layerlens-graph-webview-'));
  harness = await WebviewHarness.start();
  server = await startServer({ 'stats.workerCount': 2 });
});

after(async () => {
  await harness?.close();
  server?.stop();
  await rm(folder, { recursive: true, force: true });
});

async function openGraph(page: Page): Promise<void> {
  await page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout: 90_000 });
  await page.getByTestId('view-graph').click();
  await page.locator('[data-testid="graph-view"][data-state="ready"]').waitFor({ timeout: 60_000 });
}

const status = (page: Page) => page.getByTestId('graph-status');

/** Waits until the status line matches (it changes once a layout is drawn). */
async function statusMatches(page: Page, pattern: RegExp): Promise<void> {
  await page.getByTestId('graph-status').filter({ hasText: pattern }).waitFor({ timeout: 120_000 });
}

/** Types a query into the search box and goes to its first match. */
async function find(page: Page, query: string): Promise<void> {
  await page.getByTestId('graph-search').fill(query);
  await page.getByTestId('graph-search').press('Enter');
  // The count reads "k of n" once the match's groups are laid out and it is focused.
  await page
    .getByTestId('graph-search-count')
    .filter({ hasText: / of / })
    .waitFor({ timeout: 120_000 });
}

test('Silero VAD: the If nodes are groups whose branches open as groups', async () => {
  const session = await harness.open({ server, modelPath: SILERO_V5 });
  const { page } = session;
  try {
    await openGraph(page);
    await find(page, 'If');
    const count = await page.getByTestId('graph-search-count').textContent();
    assert.match(count ?? '', /^1 of \d+$/);
    const text = await status(page).textContent();
    assert.match(text ?? '', /· If ·.*collapsed/, `status: ${text}`);
    assert.match(
      (await status(page).getAttribute('data-key')) ?? '',
      /^g\d+$/,
      'the If node is drawn as a group',
    );
    const before = Number(await page.getByTestId('graph-view').getAttribute('data-items'));
    await page.getByTestId('graph-canvas').focus();
    await page.keyboard.press('Enter');
    await statusMatches(page, /expanded/);
    assert.match(
      (await status(page).textContent()) ?? '',
      /groups (then_branch, else_branch|else_branch, then_branch)/,
    );
    const afterItems = Number(await page.getByTestId('graph-view').getAttribute('data-items'));
    assert.ok(afterItems > before, `expanding adds the branches (${before} → ${afterItems} items)`);
    // Two overlays at once over an opened branch: fill by std, border by bytes.
    await page.getByTestId('graph-overlay-fill').selectOption('std');
    await page.getByTestId('graph-overlay-border').selectOption('bytes');
    await find(page, 'Conv');
    await statusMatches(page, /· Conv ·.*Std .*Bytes /);
    assert.ok(Number(await status(page).getAttribute('data-fill-value')) > 0);
    await page.getByTestId('graph-view').screenshot({
      path: path.resolve('docs/screenshots/graph-overlays-silero.png'),
    });
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

/** Population std of one generated weight: scale · std([1, -1, 0, 0.5]). */
function generatedStd(scale: number): number {
  const values = [scale, -scale, 0, scale / 2];
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
}

async function focusedFill(page: Page): Promise<{ value: number; colour: string; text: string }> {
  const s = status(page);
  return {
    value: Number(await s.getAttribute('data-fill-value')),
    colour: (await s.getAttribute('data-fill-colour')) ?? '',
    text: (await s.textContent()) ?? '',
  };
}

test('overlays: a group shows the max std of its tensors, coloured on the legend; arrows move between groups', async () => {
  // Stage s holds weights of scale (s + 1)(k + 1) for k = 0 and 4: its max std is 5(s + 1) · std0.
  const file = await writeScopedModel(folder, 'stages.onnx', { stages: 3, nodesPerStage: 8 });
  const session = await harness.open({ server, modelPath: file });
  const { page } = session;
  try {
    await openGraph(page);
    await page.getByTestId('graph-overlay-fill').selectOption('std');
    await page.getByTestId('graph-overlay-border').selectOption('params');
    const legend = page.getByTestId('legend-fill');
    const expected = [0, 1, 2].map((s) => generatedStd(5 * (s + 1)));
    assert.ok(Math.abs(Number(await legend.getAttribute('data-min')) - expected[0]!) < 1e-4);
    assert.ok(Math.abs(Number(await legend.getAttribute('data-max')) - expected[2]!) < 1e-4);
    assert.equal(await page.getByTestId('legend-border').getAttribute('data-metric'), 'params');
    await page.getByTestId('graph-canvas').focus();
    // The first item is stage.0; the graph runs top to bottom: input, stage.0, stage.1, stage.2, output.
    let focused = await focusedFill(page);
    assert.match(focused.text, /^stage\.0 · 8 nodes, collapsed/);
    assert.ok(Math.abs(focused.value - expected[0]!) < 1e-4, `stage.0 std ${focused.value}`);
    assert.equal(focused.colour, await legend.getAttribute('data-min-colour'));
    await page.keyboard.press('ArrowDown');
    focused = await focusedFill(page);
    assert.match(focused.text, /^stage\.1 /);
    assert.ok(Math.abs(focused.value - expected[1]!) < 1e-4);
    assert.notEqual(focused.colour, await legend.getAttribute('data-min-colour'));
    assert.notEqual(focused.colour, await legend.getAttribute('data-max-colour'));
    await page.keyboard.press('ArrowDown');
    focused = await focusedFill(page);
    assert.match(focused.text, /^stage\.2 /);
    assert.equal(focused.colour, await legend.getAttribute('data-max-colour'));
    // Enter opens the group, Escape from inside closes it again.
    await page.keyboard.press('Enter');
    await statusMatches(page, /stage\.2 · 8 nodes, expanded/);
    await page.keyboard.press('ArrowDown');
    assert.match((await status(page).textContent()) ?? '', /^\/stage\.2\/op_/);
    await page.keyboard.press('Escape');
    await statusMatches(page, /stage\.2 · 8 nodes, collapsed/);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test("the plan's method overlay: a swatch per chosen method; a node has its tensors' method, or mixed", async () => {
  const uri = pathToFileURL(SILERO_LEGACY).toString();
  // A real plan of the model (the data-free proxy), as layerlens.plan makes it.
  const plan = await server.request(LspMethods.plan, {
    uri,
    request: { target: { kind: 'ratio', value: 3 }, measured: false },
  });
  const methodOf = new Map(plan.steps.map((step) => [step.tensor, step.label]));
  const labels = [...new Set(methodOf.values())];
  assert.ok(labels.length >= 2, `the plan chose ${labels.join(', ')}`);
  const page0 = await server.request(LspMethods.tensors, { uri, offset: 0, limit: 1000 });
  const nameOf = new Map(page0.tensors.map((t) => [t.index, t.name]));
  const session = await harness.open({ server, modelPath: SILERO_LEGACY });
  const { page } = session;
  try {
    await session.postToWebview({ type: 'plan', view: { plan } });
    await openGraph(page);
    await page.getByTestId('graph-overlay-fill').selectOption('planMethod');
    const legend = page.getByTestId('legend-fill');
    assert.equal(await legend.getAttribute('data-metric'), 'planMethod');
    const swatches = legend.locator('[data-category]');
    const categories = await swatches.evaluateAll((list) =>
      list.map((el): [string, string] => [
        el.getAttribute('data-category') ?? '',
        el.getAttribute('data-colour') ?? '',
      ]),
    );
    // Keep first, then the methods by name, then "mixed"; each its own colour.
    const expected = labels.sort(
      (a, b) => Number(b === 'keep') - Number(a === 'keep') || a.localeCompare(b),
    );
    assert.deepEqual(
      categories.map(([name]) => name),
      [...expected, 'mixed'],
    );
    assert.equal(new Set(categories.map(([, colour]) => colour)).size, categories.length);
    const colourOf = new Map(categories);
    // Nodes reading planned tensors: their fill is their tensors' method on the legend.
    const planned = plan.steps.filter((step) => step.label !== 'keep').slice(0, 2);
    for (const step of planned) {
      await find(page, step.tensor);
      const box = (await page.getByTestId('graph-canvas').boundingBox())!;
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2, { button: 'right' });
      const context = JSON.parse(
        (await page.getByTestId('graph-canvas').getAttribute('data-vscode-context')) ?? '{}',
      ) as { tensorIndices?: number[] };
      const methods = new Set(
        (context.tensorIndices ?? []).flatMap((i) => methodOf.get(nameOf.get(i)!) ?? []),
      );
      assert.ok(methods.has(step.label), `the node reads ${step.tensor}`);
      const method = methods.size === 1 ? step.label : 'mixed';
      const fill = await focusedFill(page);
      assert.equal(fill.colour, colourOf.get(method), `${step.tensor}: ${fill.text}`);
      assert.ok(fill.text.includes(`Plan: method ${method}`), fill.text);
    }
    await page.getByTestId('graph-view').screenshot({
      path: path.resolve('docs/screenshots/graph-plan-method.png'),
    });
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('search opens the groups around a match; clicking the node selects its weight in the table', async () => {
  const file = await writeScopedModel(folder, 'click.onnx', { stages: 3, nodesPerStage: 8 });
  const session = await harness.open({ server, modelPath: file });
  const { page } = session;
  try {
    await openGraph(page);
    await find(page, 'stage.1/op_4/MatMul');
    assert.equal(await page.getByTestId('graph-search-count').textContent(), '1 of 1');
    assert.match(
      (await status(page).textContent()) ?? '',
      /^\/stage\.1\/op_4\/MatMul · MatMul · 1 stored tensor/,
    );
    // The match is centred: click the middle of the canvas.
    const box = (await page.getByTestId('graph-canvas').boundingBox())!;
    // A right-click gives VS Code's menu the node's tensors, as a table row does.
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2, { button: 'right' });
    const menuContext = JSON.parse(
      (await page.getByTestId('graph-canvas').getAttribute('data-vscode-context')) ?? '{}',
    ) as { webviewSection?: string; tensorIndices?: number[] };
    assert.equal(menuContext.webviewSection, 'tensorRow');
    assert.equal(menuContext.tensorIndices?.length, 1);
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page
      .locator('.ll-detail-header', { hasText: 'stage.1.op_4.weight' })
      .waitFor({ timeout: 10_000 });
    await page.getByTestId('view-table').click();
    const selected = page.locator('[role="row"][aria-selected="true"]');
    assert.equal(await selected.count(), 1);
    // The table shows names without their shared prefix; the cell's tooltip holds the full one.
    assert.equal(await selected.locator('[title="stage.1.op_4.weight"]').count(), 1);
    assert.equal(Number(await selected.getAttribute('data-index')), menuContext.tensorIndices![0]);
    // A tensor name finds the node that reads it.
    await page.getByTestId('view-graph').click();
    await find(page, 'stage.2.op_0.weight');
    assert.match((await status(page).textContent()) ?? '', /^\/stage\.2\/op_0\/MatMul/);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

/**
 * Two name scopes of MatMul → Relu → MatMul whose weights are named as torch's exporter names
 * them: `onnx::MatMul_12` is part of `onnx::MatMul_120`, read by the first node of the graph.
 */
function exportedNamesModel() {
  const scope = (prefix: string, input: string, weights: readonly [string, string]) => [
    node('MatMul', [input, weights[0]], [`${prefix}.0`], { name: `/${prefix}/MatMul_0` }),
    node('Relu', [`${prefix}.0`], [`${prefix}.1`], { name: `/${prefix}/Relu` }),
    node('MatMul', [`${prefix}.1`, weights[1]], [`${prefix}.2`], { name: `/${prefix}/MatMul_1` }),
  ];
  const weights = ['onnx::MatMul_120', 'onnx::MatMul_121', 'onnx::MatMul_12', 'onnx::MatMul_13'];
  return model(
    graph({
      nodes: [
        ...scope('encoder', 'input', ['onnx::MatMul_120', 'onnx::MatMul_121']),
        ...scope('decoder', 'encoder.2', ['onnx::MatMul_12', 'onnx::MatMul_13']),
      ],
      initializers: weights.map((name, i) => tensor(name, 'float32', [2, 2], [i, -i, 1, 2])),
      inputs: [valueInfo('input', 'float32', ['batch', 2])],
      outputs: [valueInfo('decoder.2', 'float32', ['batch', 2])],
    }),
  );
}

test('a reveal in the graph, sent as the page opens, shows the Graph tab and focuses the node that reads that tensor', async () => {
  const file = await writeModel(folder, 'exported.onnx', exportedNamesModel());
  const session = await harness.open({ server, modelPath: file });
  const { page } = session;
  try {
    // As the editor does for layerlens.revealInGraph: the message comes before the model is read.
    await session.postToWebview({ type: 'reveal', tensorName: 'onnx::MatMul_12', inGraph: true });
    await statusMatches(page, /^\/decoder\/MatMul_0 · MatMul · 1 stored tensor/);
    assert.equal(await page.getByTestId('view-graph').getAttribute('aria-selected'), 'true');
    assert.equal(await page.getByTestId('graph-view').isVisible(), true);
    // The decoder group was opened around it (its three nodes drawn); Escape closes it again.
    const items = Number(await page.getByTestId('graph-view').getAttribute('data-items'));
    assert.ok(items >= 6, `the decoder group is open (${items} items)`);
    await page.getByTestId('graph-canvas').focus();
    await page.keyboard.press('Escape');
    await statusMatches(page, /^decoder · 3 nodes, collapsed/);
    // A second reveal, once everything is loaded, goes to the other group's node.
    await session.postToWebview({ type: 'reveal', tensorName: 'onnx::MatMul_121', inGraph: true });
    await statusMatches(page, /^\/encoder\/MatMul_1 · MatMul/);
    // The revealed tensor is selected in the table as well.
    await page.getByTestId('view-table').click();
    await page
      .locator('[role="row"][aria-selected="true"] [title="onnx::MatMul_121"]')
      .waitFor({ timeout: 30_000 });
    // Its context menu offers Reveal in Graph (package.json: modelHasGraph) for the row's tensor.
    const rowContext = JSON.parse(
      (await page
        .locator('[role="row"][aria-selected="true"]')
        .getAttribute('data-vscode-context')) ?? '{}',
    ) as { webviewSection?: string; tensorName?: string };
    assert.equal(rowContext.webviewSection, 'tensorRow');
    assert.equal(rowContext.tensorName, 'onnx::MatMul_121');
    const gridContext = JSON.parse(
      (await page.locator('[role="grid"]').getAttribute('data-vscode-context')) ?? '{}',
    ) as { modelHasGraph?: boolean };
    assert.equal(gridContext.modelHasGraph, true);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('the chosen model view comes back with the saved state', async () => {
  const file = await writeScopedModel(folder, 'state.onnx', { stages: 3, nodesPerStage: 8 });
  const session = await harness.open(
    { server, modelPath: file },
    { savedState: { modelView: 'graph' } },
  );
  const { page } = session;
  try {
    await page
      .locator('[data-testid="graph-view"][data-state="ready"]')
      .waitFor({ timeout: 90_000 });
    assert.equal(await page.getByTestId('view-graph').getAttribute('aria-selected'), 'true');
    await page.getByTestId('view-table').click();
    assert.equal((session.savedState as { modelView?: string }).modelView, 'table');
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('a 20,000-node model: the graph tab and an opened 1,000-node group stay under the DOM budget', async () => {
  const file = await writeScopedModel(folder, 'large.onnx', { stages: 20, nodesPerStage: 1000 });
  const session = await harness.open({ server, modelPath: file });
  const { page } = session;
  try {
    await page.getByTestId('view-graph').waitFor({ state: 'visible', timeout: 90_000 });
    await page.getByTestId('view-graph').click();
    await page
      .locator('[data-testid="graph-view"][data-state="ready"]')
      .waitFor({ timeout: 90_000 });
    const count = async () =>
      Number(await page.evaluate(`document.getElementsByTagName('*').length`));
    const closed = await count();
    assert.ok(closed < DOM_NODE_BUDGET, `${closed} elements with the groups closed`);
    await find(page, 'stage.7/op_500/');
    await statusMatches(page, /^\/stage\.7\/op_500\//);
    assert.ok(Number(await page.getByTestId('graph-view').getAttribute('data-items')) > 1000);
    const opened = await count();
    assert.ok(opened < DOM_NODE_BUDGET, `${opened} elements with a 1,000-node group open`);
    assert.match((await status(page).textContent()) ?? '', /^\/stage\.7\/op_500\//);
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

test('Modules: a safetensors file as a tree and a treemap of its bytes; a leaf selects its tensor', async () => {
  const file = path.join(folder, 'mlp.safetensors');
  const tensors = [];
  for (let layer = 0; layer < 4; layer++) {
    for (const [part, rows] of [
      ['attn.qkv', 48],
      ['mlp.up', 64],
      ['mlp.down', 16],
    ] as const) {
      const data = new Float32Array(rows * 16).map(
        (_, i) => Math.sin(i * (layer + 1)) * (layer + 1),
      );
      tensors.push({
        name: `model.layers.${layer}.${part}.weight`,
        dtype: 'F32' as const,
        shape: [rows, 16],
        data,
      });
    }
  }
  tensors.push({
    name: 'lm_head.weight',
    dtype: 'F32' as const,
    shape: [100, 16],
    data: new Float32Array(1600).fill(0.5),
  });
  await writeSafetensors(file, tensors);
  const session = await harness.open({ server, modelPath: file });
  const { page } = session;
  try {
    await page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout: 90_000 });
    assert.equal(
      await page.getByTestId('view-graph').isHidden(),
      true,
      'no Graph tab for safetensors',
    );
    const gridContext = JSON.parse(
      (await page.locator('[role="grid"]').getAttribute('data-vscode-context')) ?? '{}',
    ) as { modelHasGraph?: boolean };
    assert.equal(gridContext.modelHasGraph, undefined, 'no Reveal in Graph in the row menu');
    await page.getByTestId('view-modules').click();
    const view = page.locator('[data-testid="hierarchy-view"][data-state="ready"]');
    await view.waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="hierarchy-view"][data-cells="13"]').waitFor();
    const top = page.locator('[data-testid="module-tree"] > li');
    assert.deepEqual(
      await top.evaluateAll((items) => items.map((item) => item.getAttribute('data-path'))),
      ['model', 'lm_head'],
    );
    assert.match((await top.first().textContent()) ?? '', /32\.0 KB · 8\.19K · 12 tensors/);
    await page.getByTestId('treemap-overlay').selectOption('std');
    await page.getByTestId('legend-fill').waitFor();
    await top.first().locator('button').first().click();
    await page.locator('[data-path="model.layers"] > button').click();
    await page.locator('[data-path="model.layers.2"] > button').click();
    await page.locator('[data-path="model.layers.2.mlp"] > button').click();
    await page.locator('[data-path="model.layers.2.mlp.up"] > button').click();
    await page.locator('[data-path="model.layers.2.mlp.up.weight"] > button').click();
    await page
      .locator('.ll-detail-header', { hasText: 'model.layers.2.mlp.up.weight' })
      .waitFor({ timeout: 10_000 });
    await page
      .getByTestId('hierarchy-view')
      .screenshot({ path: path.resolve('docs/screenshots/treemap-safetensors.png') });
    assert.deepEqual(session.problems, []);
  } finally {
    await session.close();
  }
});

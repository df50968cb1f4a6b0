/**
 * The layout of a large group as the graph view gets it from its workers: the contents the
 * server sends for an opened group of 1,000 nodes (a chain with skip connections) and of a
 * group three branches wide, cut into bands and laid out by the real dagre. Every node is
 * placed, no two boxes overlap, and every edge runs downward from its source to a target in
 * a lower layer, whichever band finishes first. When one child grows (a group opened in
 * it), the client's cache lays out that child's band only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openModelFile } from '../../../../src/server/formats/registry';
import { graphIndexOf } from '../../../../src/server/graph/graphIndex';
import type { GraphGroupContents } from '../../../../src/shared/graph';
import {
  bandedLayout,
  LayoutCache,
  MAX_DAGRE_BOXES,
  topologicalOrder,
  type LayoutOne,
} from '../../../../webview-ui/src/graph/bandedLayout';
import { dagreLayout } from '../../../../webview-ui/src/graph/dagreLayout';
import type {
  LayoutInput,
  LayoutRequest,
  LayoutResult,
} from '../../../../webview-ui/src/graph/layoutProtocol';
import { writeScopedModel } from '../../../support/graphModels';
import {
  graph,
  makeTempFolder,
  model,
  node,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';

/** Box sizes as the view gives them: wider for longer names. */
function input(contents: GraphGroupContents): LayoutInput {
  return {
    boxes: contents.items.map((item) => ({
      id: item.key,
      width: Math.min(240, Math.max(72, item.label.split('/').at(-1)!.length * 7 + 24)),
      height: 40,
    })),
    edges: contents.edges.map((edge) => ({ from: edge.from, to: edge.to })),
  };
}

/** The contents of the model's largest top-level group, as the server sends them. */
async function largestGroup(file: string): Promise<GraphGroupContents> {
  const index = await graphIndexOf(await openModelFile(file));
  const top = index.overview();
  const group = top.items.reduce((a, b) => (b.childCount > a.childCount ? b : a));
  return index.contents(Number(group.key.slice(1)));
}

/**
 * Workers in plain Node: dagre on each request, the later ones answering first (as a second
 * worker may); `requests` lists what they were sent.
 */
async function nodeWorkers(): Promise<{
  layoutOne: LayoutOne;
  requests: Omit<LayoutRequest, 'id'>[];
}> {
  const dagre = await import('@dagrejs/dagre');
  const requests: Omit<LayoutRequest, 'id'>[] = [];
  const layoutOne: LayoutOne = (request) => {
    requests.push(request);
    const id = requests.length;
    return new Promise((resolve) =>
      setTimeout(() => resolve(dagreLayout(dagre, { ...request, id })), 5 * (10 - (id % 10))),
    );
  };
  return { layoutOne, requests };
}

async function layOut(
  laid: LayoutInput,
): Promise<{ result: LayoutResult; requests: Omit<LayoutRequest, 'id'>[] }> {
  const { layoutOne, requests } = await nodeWorkers();
  return { result: await bandedLayout(laid, layoutOne), requests };
}

const EPSILON = 1e-6;

type Placed = { x: number; y: number; width: number; height: number };

/** Whether a point lies on the box's outline (within half a pixel). */
function onOutline(box: Placed, [x, y]: readonly [number, number]): boolean {
  const inside =
    x >= box.x - 0.5 &&
    x <= box.x + box.width + 0.5 &&
    y >= box.y - 0.5 &&
    y <= box.y + box.height + 0.5;
  const edgeDistance = Math.min(
    Math.abs(x - box.x),
    Math.abs(x - box.x - box.width),
    Math.abs(y - box.y),
    Math.abs(y - box.y - box.height),
  );
  return inside && edgeDistance <= 0.5;
}

function assertWellLaidOut(laid: LayoutInput, result: LayoutResult): void {
  const placed = laid.boxes.map((box) => {
    const at = result.positions[box.id];
    assert.ok(at, `${box.id} is placed`);
    assert.ok(Number.isFinite(at[0]) && Number.isFinite(at[1]), `${box.id} at ${at.join(',')}`);
    return { ...box, x: at[0], y: at[1] };
  });
  // Inside the group's size.
  for (const box of placed) {
    assert.ok(box.x >= -EPSILON && box.x + box.width <= result.width + EPSILON, `${box.id} x`);
    assert.ok(box.y >= -EPSILON && box.y + box.height <= result.height + EPSILON, `${box.id} y`);
  }
  // No two boxes overlap (sorted by top: only boxes starting above one's bottom can).
  const byTop = [...placed].sort((a, b) => a.y - b.y);
  for (let i = 0; i < byTop.length; i++) {
    const a = byTop[i]!;
    for (let j = i + 1; j < byTop.length && byTop[j]!.y < a.y + a.height - EPSILON; j++) {
      const b = byTop[j]!;
      const apart = a.x + a.width <= b.x + EPSILON || b.x + b.width <= a.x + EPSILON;
      assert.ok(apart, `${a.id} and ${b.id} overlap`);
    }
  }
  // Every edge points down: its target lies in a lower layer, and its route runs from the
  // source's bottom to the target's top without climbing.
  const at = new Map(placed.map((box) => [box.id, box]));
  assert.equal(result.routes.length, laid.edges.length);
  laid.edges.forEach((edge, i) => {
    const from = at.get(edge.from)!;
    const to = at.get(edge.to)!;
    assert.ok(to.y >= from.y + from.height, `${edge.from} → ${edge.to} points down`);
    const route = result.routes[i]!;
    assert.ok(route.length >= 2, `${edge.from} → ${edge.to} has a route`);
    // dagre ends a route where it meets the box's outline: the bottom, or a side.
    assert.ok(onOutline(from, route[0]!), `${edge.from} → ${edge.to} starts at its source`);
    assert.ok(onOutline(to, route.at(-1)!), `${edge.from} → ${edge.to} ends at its target`);
    for (let p = 1; p < route.length; p++)
      assert.ok(route[p]![1] >= route[p - 1]![1] - EPSILON, `${edge.from} → ${edge.to} climbs`);
  });
}

test('an opened 1,000-node group: banded, every node placed, no overlaps, edges downward', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-banded-layout-');
  try {
    const file = await writeScopedModel(folder, 'chain.onnx', { stages: 2, nodesPerStage: 1000 });
    const contents = await largestGroup(file);
    assert.equal(contents.items.length, 1000);
    const laid = input(contents);
    const { result, requests } = await layOut(laid);
    assert.equal(requests.length, Math.ceil(1000 / MAX_DAGRE_BOXES));
    assert.ok(requests.every((request) => request.band && request.boxes.length <= 200));
    assertWellLaidOut(laid, result);
    // The skip connections reach across bands: some edges are drawn between two bands.
    const bandOf = new Map(
      requests.flatMap((request, b) => request.boxes.map((box) => [box.id, b] as const)),
    );
    assert.ok(laid.edges.some((edge) => bandOf.get(edge.from) !== bandOf.get(edge.to)));
  } finally {
    await remove();
  }
});

test('an opened group three branches wide: banded, no two boxes of a layer overlap', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-banded-layout-');
  try {
    // In the scope /wide/, blocks of a Relu feeding three parallel branches summed, each sum
    // also reading the sum two blocks back (an edge over several layers).
    const nodes = [];
    let previous = 'input';
    for (let k = 0; k < 150; k++) {
      nodes.push(node('Relu', [previous], [`b${k}.in`], { name: `/wide/relu_${k}` }));
      const reads = ['left', 'middle', 'right'].map((branch) => {
        nodes.push(
          node('Sigmoid', [`b${k}.in`], [`b${k}.${branch}`], { name: `/wide/${branch}_${k}` }),
        );
        return `b${k}.${branch}`;
      });
      if (k >= 2) reads.push(`b${k - 2}.out`);
      nodes.push(node('Sum', reads, [`b${k}.out`], { name: `/wide/sum_${k}` }));
      previous = `b${k}.out`;
    }
    const file = await writeModel(
      folder,
      'wide.onnx',
      model(
        graph({
          nodes,
          inputs: [valueInfo('input', 'float32', ['batch', 2])],
          outputs: [valueInfo(previous, 'float32', ['batch', 2])],
        }),
      ),
    );
    const contents = await largestGroup(file);
    assert.equal(contents.items.length, 750);
    const laid = input(contents);
    const { result, requests } = await layOut(laid);
    assert.equal(requests.length, Math.ceil(750 / MAX_DAGRE_BOXES));
    assertWellLaidOut(laid, result);
    // Each block's three branches sit side by side in one layer: 3 layers a block.
    const tops = new Set(Object.values(result.positions).map(([, y]) => y));
    assert.ok(tops.size <= 3 * 150, `${tops.size} layers for 150 blocks`);

    // Through the client's cache: one of the boxes grows (a child group opened), and only its
    // band is laid out again; the group stays well laid out around the bigger box.
    const workers = await nodeWorkers();
    const cache = new LayoutCache(workers.layoutOne);
    await bandedLayout(laid, cache.layout);
    assert.equal(workers.requests.length, requests.length);
    const grown = laid.boxes[400]!.id;
    const opened: LayoutInput = {
      ...laid,
      boxes: laid.boxes.map((box) =>
        box.id === grown ? { ...box, width: 700, height: 500 } : box,
      ),
    };
    const again = await bandedLayout(opened, cache.layout);
    assert.equal(workers.requests.length, requests.length + 1, 'one band laid out again');
    assert.ok(workers.requests.at(-1)!.boxes.some((box) => box.id === grown));
    assertWellLaidOut(opened, again);
    assert.ok(again.height >= result.height + 500 - 40, 'the group grew by the box');
    // Closing it again: every band comes from the cache, as first laid out.
    const closed = await bandedLayout(laid, cache.layout);
    assert.equal(workers.requests.length, requests.length + 1);
    assert.deepEqual(closed.positions, result.positions);
  } finally {
    await remove();
  }
});

test('topological order: producers before readers; a cycle keeps its request order', () => {
  const boxes = ['a', 'b', 'c', 'd'].map((id) => ({ id, width: 10, height: 10 }));
  const order = (edges: [string, string][]) =>
    topologicalOrder(
      boxes,
      edges.map(([from, to]) => ({ from, to })),
    ).map((box) => box.id);
  assert.deepEqual(
    order([
      ['d', 'a'],
      ['c', 'b'],
    ]),
    ['c', 'd', 'b', 'a'],
  );
  assert.deepEqual(
    order([
      ['a', 'b'],
      ['b', 'a'],
      ['c', 'd'],
    ]),
    ['c', 'd', 'a', 'b'],
  );
});

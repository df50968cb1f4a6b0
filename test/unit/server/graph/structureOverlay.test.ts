/**
 * The "Compare: structure" overlay's groups: a group shows the one kind of change inside
 * it, "mixed" when its nodes changed in different ways, unchanged when none did; a node
 * with subgraphs counts in the group it is drawn as.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { GRAPH_DIFF_KINDS, GRAPH_DIFF_MIXED } from '../../../../src/shared/diff';
import type { GraphGroup, GraphNode, ModelGraph } from '../../../../src/shared/graph';
import { openModelFile } from '../../../../src/server/formats/registry';
import { graphStructureDiff, groupKinds } from '../../../../src/server/graph/structureOverlay';
import { writeScopedModel } from '../../../support/graphModels';
import { makeTempFolder } from '../../../support/onnxBuilder';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

const [UNCHANGED, ADDED, CHANGED, SPLIT] = [0, 1, 2, 3];

test('the kinds are numbered in the legend order', () => {
  assert.deepEqual(GRAPH_DIFF_KINDS, ['unchanged', 'added', 'changed', 'split']);
});

function group(id: number, parent: number, kind: GraphGroup['kind'] = 'scope'): GraphGroup {
  return { id, parent, label: `g${id}`, path: `/g${id}`, kind };
}

function node(id: number, groupId: number, expands?: number): GraphNode {
  return {
    id,
    name: `n${id}`,
    op: 'MatMul',
    group: groupId,
    ...(expands === undefined ? {} : { expands }),
    inputs: [],
    outputs: [`o${id}`],
    tensors: [],
  };
}

/**
 * root 0 ─┬─ scope 1 ─┬─ scope 2: n0, n1
 *         │           └─ scope 3: n2, n3
 *         ├─ scope 4: n4
 *         └─ node 5 (n5, an If) ── subgraph 6: n6
 */
const graph: ModelGraph = {
  groups: [
    group(0, -1, 'root'),
    group(1, 0),
    group(2, 1),
    group(3, 1),
    group(4, 0),
    group(5, 0, 'node'),
    group(6, 5, 'subgraph'),
  ],
  nodes: [node(0, 2), node(1, 2), node(2, 3), node(3, 3), node(4, 4), node(5, 0, 5), node(6, 6)],
  edges: [],
};

test('nothing changed: every group is unchanged', () => {
  assert.deepEqual(groupKinds(graph, [0, 0, 0, 0, 0, 0, 0]), [0, 0, 0, 0, 0, 0, 0]);
});

test('a group shows the one kind of its changes; different kinds make it and those above mixed', () => {
  const kinds = groupKinds(graph, [ADDED, ADDED, UNCHANGED, SPLIT, UNCHANGED, UNCHANGED, 0]);
  assert.equal(kinds[2], ADDED, 'two added nodes');
  assert.equal(kinds[3], SPLIT, 'one split node beside an unchanged one');
  assert.equal(kinds[1], GRAPH_DIFF_MIXED, 'added and split below');
  assert.equal(kinds[0], GRAPH_DIFF_MIXED);
  assert.equal(kinds[4], UNCHANGED);
  assert.equal(kinds[5], UNCHANGED);
  assert.equal(kinds[6], UNCHANGED);
});

test('one kind throughout reaches the root unmixed', () => {
  const kinds = groupKinds(graph, [CHANGED, 0, 0, CHANGED, CHANGED, 0, 0]);
  assert.deepEqual(kinds, [CHANGED, CHANGED, CHANGED, CHANGED, CHANGED, UNCHANGED, UNCHANGED]);
});

test('a node with subgraphs colours the group it is drawn as, and its branch colours it too', () => {
  assert.deepEqual(groupKinds(graph, [0, 0, 0, 0, 0, CHANGED, 0]), [
    CHANGED,
    0,
    0,
    0,
    0,
    CHANGED,
    0,
  ]);
  const both = groupKinds(graph, [0, 0, 0, 0, 0, CHANGED, ADDED]);
  assert.equal(both[6], ADDED);
  assert.equal(both[5], GRAPH_DIFF_MIXED);
  assert.equal(both[0], GRAPH_DIFF_MIXED);
});

test('a model compared with itself: every node unchanged; with a file without a graph: an error naming it', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-structure-overlay-');
  try {
    const file = await writeScopedModel(folder, 'b.onnx', { stages: 2, nodesPerStage: 3 });
    const b = await openModelFile(file);
    const same = await graphStructureDiff(b, await openModelFile(file), 'a');
    assert.equal(same.removed, 0);
    assert.ok(same.nodes.length > 0 && same.nodes.every((kind) => kind === 0));
    assert.ok(same.groups.every((kind) => kind === 0));
    assert.equal(same.counts.unchanged, same.nodes.length);

    const weights = join(folder, 'a.safetensors');
    await writeSafetensors(weights, [
      { name: 'w', dtype: 'F32', shape: [2, 2], data: new Float32Array(4) },
    ]);
    await assert.rejects(
      graphStructureDiff(b, await openModelFile(weights), pathToFileURL(weights).toString()),
      (error: Error) =>
        error.name === 'ModelFileError' &&
        error.message.includes(weights) &&
        /no operator graph/.test(error.message),
    );
  } finally {
    await remove();
  }
});

/**
 * The comparison the "Compare: structure" overlay reads: an item's kind (a node's, or a
 * group's aggregate), the legend's counts and note, and the kinds' own colours; nothing
 * before a comparison (the overlay's fills against the server's diff: test/webview).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRAPH_DIFF_MIXED, type GraphStructureDiff } from '../../../../src/shared/diff';
import {
  hasStructureDiff,
  setStructureDiff,
  structureCategories,
  structureColours,
  structureCounts,
  structureKindOf,
  structureNote,
} from '../../../../webview-ui/src/graph/structureDiff';

const diff: GraphStructureDiff = {
  other: 'file:///models/before%20it.onnx',
  nodes: [0, 1, 2, 3],
  groups: [GRAPH_DIFF_MIXED, 1, 0],
  counts: { unchanged: 1, added: 1, changed: 1, split: 1 },
  removed: 2,
};

test('before a comparison the overlay has nothing and is not offered', () => {
  setStructureDiff(null);
  assert.equal(hasStructureDiff(), false);
  assert.equal(structureKindOf('n1'), null);
  assert.deepEqual(structureCategories(), []);
  assert.equal(structureNote(), '');
});

test("a node's kind, a group's aggregate, the counts and the removed nodes' note", () => {
  setStructureDiff(diff);
  assert.equal(hasStructureDiff(), true);
  assert.deepEqual(structureCategories(), ['unchanged', 'added', 'changed', 'split']);
  assert.equal(structureKindOf('n2'), 2);
  assert.equal(structureKindOf('g1'), 1);
  assert.equal(structureKindOf('g0'), GRAPH_DIFF_MIXED);
  assert.equal(structureKindOf('n9'), null, 'a node the comparison does not know');
  assert.deepEqual(structureCounts(), [1, 1, 1, 1]);
  assert.equal(
    structureNote(),
    'against before it.onnx; 2 of its nodes removed (not in this graph)',
  );
  // Unchanged grey, then a colour of its own per kind.
  const colours = structureColours();
  assert.equal(colours.length, 4);
  assert.equal(colours[0], '#c9c9c9');
  assert.equal(new Set(colours).size, 4);
  setStructureDiff(null);
});

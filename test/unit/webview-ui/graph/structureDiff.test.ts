/**
 * The comparison the "Compare: structure" overlay reads: an item's kind (a node's, or a
 * group's aggregate), the legend's counts and note, and the overlay's own colours, offered
 * only once a comparison exists (the fills against the server's diff: test/webview).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRAPH_DIFF_MIXED, type GraphStructureDiff } from '../../../../src/shared/diff';
import { ColourScale, MIXED, overlayNamed } from '../../../../webview-ui/src/graph/overlays';
import {
  setStructureDiff,
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
  const metric = overlayNamed('structureDiff');
  assert.equal(metric.available?.(), false);
  assert.equal(structureKindOf('n1'), null);
  assert.deepEqual(metric.categories?.(), []);
});

test("a node's kind, a group's aggregate, the counts and the removed nodes' note", () => {
  setStructureDiff(diff);
  const metric = overlayNamed('structureDiff');
  assert.equal(metric.available?.(), true);
  assert.equal(metric.item?.('n2'), 2);
  assert.equal(metric.item?.('g1'), 1);
  assert.equal(metric.item?.('g0'), MIXED);
  assert.equal(metric.item?.('n9'), null, 'a node the comparison does not know');
  assert.equal(metric.format(MIXED), 'mixed');
  assert.equal(metric.format(3), 'split');
  assert.deepEqual(structureCounts(), [1, 1, 1, 1]);
  assert.equal(
    structureNote(),
    'against before it.onnx; 2 of its nodes removed (not in this graph)',
  );
  // Its own colours: unchanged grey, each kind distinct, mixed apart from all of them.
  const scale = new ColourScale(metric, [], 'fill');
  const colours = [0, 1, 2, 3, MIXED].map((v) => scale.colour(v));
  assert.equal(new Set(colours).size, 5);
  assert.equal(colours[0], '#c9c9c9');
  setStructureDiff(null);
});

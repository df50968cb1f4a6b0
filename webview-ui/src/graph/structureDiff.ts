/**
 * The structure diff of this page's model (B) against the model it was last compared with
 * (A), as the server laid it onto B's graph: the overlays' "Compare: structure", a
 * categorical overlay whose values index GRAPH_DIFF_KINDS. Empty before any comparison.
 */
import {
  GRAPH_DIFF_KINDS,
  GRAPH_DIFF_MIXED,
  type GraphStructureDiff,
} from '../../../src/shared/diff';
import type { GraphItemKey } from '../../../src/shared/graph';

/** Unchanged grey, added green, changed orange, split purple (GRAPH_DIFF_KINDS' order). */
const KIND_COLOURS: readonly string[] = ['#c9c9c9', '#59a14f', '#f28e2b', '#b07aa1'];

let current: GraphStructureDiff | null = null;

/** A comparison's diff arrived (null: there is none). */
export function setStructureDiff(diff: GraphStructureDiff | null): void {
  current = diff;
}

export function hasStructureDiff(): boolean {
  return current !== null;
}

/** The kind of a graph item (`n12` a node, `g5` a group), or GRAPH_DIFF_MIXED for a group. */
export function structureKindOf(key: GraphItemKey): number | null {
  if (!current) return null;
  const list = key.startsWith('g') ? current.groups : current.nodes;
  const kind = list[Number(key.slice(1))];
  return kind === undefined || (kind < 0 && kind !== GRAPH_DIFF_MIXED) ? null : kind;
}

export function structureCategories(): readonly string[] {
  return current ? GRAPH_DIFF_KINDS : [];
}

export function structureColours(): readonly string[] {
  return KIND_COLOURS;
}

/** How many of B's nodes are of each kind. */
export function structureCounts(): readonly number[] {
  return GRAPH_DIFF_KINDS.map((kind) => current?.counts[kind] ?? 0);
}

/** The legend's line on what B's graph cannot show: A's removed nodes. */
export function structureNote(): string {
  if (!current) return '';
  const removed = current.removed;
  const other = decodeURIComponent(current.other.split('/').pop() ?? current.other);
  return `against ${other}; ${removed} of its node${removed === 1 ? '' : 's'} removed (not in this graph)`;
}

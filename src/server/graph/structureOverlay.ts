/**
 * The structure diff of two ONNX models laid onto the graph of the second (B): the kind
 * of change of each of B's nodes, and of each group (what the graph view's "Compare:
 * structure" overlay colours). The changes come from the diff's own engine (structure.ts);
 * a node is found in B's graph by its label and its first output, as both walks name it.
 */
import {
  GRAPH_DIFF_KINDS,
  GRAPH_DIFF_MIXED,
  type GraphDiffKind,
  type GraphStructureDiff,
} from '../../shared/diff';
import type { ModelGraph } from '../../shared/graph';
import { structureChanges } from '../diff/structure';
import { ModelFileError } from '../formats/modelFileError';
import type { OpenedModel } from '../formats/types';
import { onnxStructureOf } from '../onnx';
import { graphIndexOf } from './graphIndex';

const UNCHANGED = 0;
const kindIndex = (kind: GraphDiffKind): number => GRAPH_DIFF_KINDS.indexOf(kind);

const nodeKey = (name: string, outputs: readonly string[]): string =>
  `${name}\u0000${outputs.find((output) => output !== '') ?? ''}`;

/**
 * Each group's kind from its nodes' kinds: unchanged when nothing inside changed, the one
 * kind of change when all its changed nodes changed the same way, else GRAPH_DIFF_MIXED. A
 * node with subgraphs counts in its own group (the one it is drawn as) and those around it.
 */
export function groupKinds(graph: ModelGraph, nodeKinds: readonly number[]): number[] {
  const kinds = graph.groups.map(() => UNCHANGED);
  for (const node of graph.nodes) {
    const kind = nodeKinds[node.id] ?? UNCHANGED;
    if (kind === UNCHANGED) continue;
    for (let group = node.expands ?? node.group; group >= 0; group = graph.groups[group]!.parent) {
      const before = kinds[group]!;
      const after = before === UNCHANGED || before === kind ? kind : GRAPH_DIFF_MIXED;
      // The groups above hold everything this one holds: they already show it.
      if (after === before) break;
      kinds[group] = after;
    }
  }
  return kinds;
}

/** Compare B (`model`) with A (`other`, whose URI the answer carries) on B's graph. */
export async function graphStructureDiff(
  model: OpenedModel,
  other: OpenedModel,
  otherUri: string,
): Promise<GraphStructureDiff> {
  if (!other.onnx && !other.onnxStructure)
    throw new ModelFileError(other.path, 'has no operator graph to compare the structure with');
  const index = await graphIndexOf(model);
  const [a, b] = await Promise.all([
    onnxStructureOf(other, 'compared'),
    onnxStructureOf(model, 'compared'),
  ]);
  const changed = new Map<string, number>();
  let removed = 0;
  for (const change of structureChanges(a, b)) {
    const { kind } = change;
    if (kind === 'removed') {
      removed++;
      continue;
    }
    for (const node of change.after ?? [])
      changed.set(nodeKey(node.name, node.outputs), kindIndex(kind));
  }
  const { graph } = index;
  const nodes = graph.nodes.map((node) => changed.get(nodeKey(node.name, node.outputs)) ?? 0);
  const counts = Object.fromEntries(GRAPH_DIFF_KINDS.map((kind) => [kind, 0])) as Record<
    GraphDiffKind,
    number
  >;
  for (const kind of nodes) counts[GRAPH_DIFF_KINDS[kind]!]++;
  return { other: otherUri, nodes, groups: groupKinds(graph, nodes), counts, removed };
}

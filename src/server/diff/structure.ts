/**
 * The structure diff of two ONNX graphs. Nodes are matched by the first name they
 * output (in the same graph), which compression keeps when it rewrites a node; a node
 * without outputs by its label. A node of A whose output B computes with another op,
 * other inputs, attributes or name is `changed`; when B's node reads the output of a node
 * B added, which reads A's node's data input, A's node was `split` into the two (low
 * rank: one MatMul became two).
 */
import type { onnx } from 'onnx-proto';
import type {
  DiffNode,
  StructureChange,
  StructureChangeKind,
  StructureDiff,
} from '../../shared/diff';
import { MAX_LISTED_STRUCTURE_CHANGES } from '../../shared/limits';
import type { ModelSummary } from '../../shared/model';
import { nodeLabel, walkScopes, type OnnxModel } from '../onnx';

const SEP = '\u0000';

interface Walked {
  readonly node: DiffNode;
  readonly attributes: string;
  /** The file names the node (else its label is made up from its position and differs freely). */
  readonly named: boolean;
}

function walk(model: OnnxModel): Map<string, Walked> {
  const nodes = new Map<string, Walked>();
  walkScopes(model.main, model.path, {
    node(scope, node, index) {
      const label = nodeLabel(node, index);
      const op =
        node.domain && node.domain !== 'ai.onnx'
          ? `${node.domain}.${node.opType}`
          : (node.opType ?? '');
      const outputs = node.output ?? [];
      const key = `${scope.path}${SEP}${outputs[0] || `#${label}`}`;
      nodes.set(key, {
        node: { name: label, op, inputs: node.input ?? [], outputs, graph: scope.path },
        attributes: attributeText(node),
        named: Boolean(node.name),
      });
    },
  });
  return nodes;
}

/** The node's attributes as comparable text (subgraphs and tensors by their presence only). */
function attributeText(node: onnx.INodeProto): string {
  return JSON.stringify(
    (node.attribute ?? []).map((a) => [
      a.name,
      a.i,
      a.f,
      a.s ? Buffer.from(a.s).toString('base64') : null,
      a.ints,
      a.floats,
      a.t ? 'tensor' : null,
      a.g ? 'graph' : null,
    ]),
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Every change from A's graph to B's (the list the structure diff shows, unabridged). */
export function structureChanges(a: OnnxModel, b: OnnxModel): StructureChange[] {
  return changesBetween(walk(a), walk(b));
}

function changesBetween(nodesA: Map<string, Walked>, nodesB: Map<string, Walked>) {
  const changes: StructureChange[] = [];
  const added = new Map<string, Walked>();
  for (const [key, walked] of nodesB) if (!nodesA.has(key)) added.set(key, walked);
  for (const [key, before] of nodesA) {
    const after = nodesB.get(key);
    if (!after) {
      changes.push({ kind: 'removed', before: before.node });
      continue;
    }
    const differences: string[] = [];
    if (before.node.op !== after.node.op) differences.push('op');
    if (!sameList(before.node.inputs, after.node.inputs)) differences.push('inputs');
    if (before.attributes !== after.attributes) differences.push('attributes');
    if ((before.named || after.named) && before.node.name !== after.node.name) {
      differences.push('name');
    }
    if (differences.length === 0) continue;
    // Split: B's node reads an added node's output, and that node reads A's data input.
    const dataInput = after.node.inputs[0];
    const splitKey = dataInput ? `${after.node.graph}${SEP}${dataInput}` : undefined;
    const first = splitKey ? added.get(splitKey) : undefined;
    if (
      first &&
      before.node.inputs[0] !== undefined &&
      first.node.inputs[0] === before.node.inputs[0]
    ) {
      added.delete(splitKey!);
      changes.push({ kind: 'split', before: before.node, after: [first.node, after.node] });
      continue;
    }
    changes.push({ kind: 'changed', before: before.node, after: [after.node], differences });
  }
  for (const walked of added.values()) changes.push({ kind: 'added', after: [walked.node] });
  return changes;
}

export function structureDiff(
  a: OnnxModel,
  b: OnnxModel,
  summaryA: ModelSummary,
  summaryB: ModelSummary,
): StructureDiff {
  const nodesA = walk(a);
  const nodesB = walk(b);
  const changes = changesBetween(nodesA, nodesB);

  const counts: Record<StructureChangeKind, number> = {
    added: 0,
    removed: 0,
    changed: 0,
    split: 0,
  };
  for (const change of changes) counts[change.kind]++;
  const opCountChanges: Record<string, number> = {};
  for (const op of new Set([
    ...Object.keys(summaryA.opCounts),
    ...Object.keys(summaryB.opCounts),
  ])) {
    const delta = (summaryB.opCounts[op] ?? 0) - (summaryA.opCounts[op] ?? 0);
    if (delta !== 0) opCountChanges[op] = delta;
  }
  return {
    nodesA: nodesA.size,
    nodesB: nodesB.size,
    opCountChanges,
    counts,
    changes: changes.slice(0, MAX_LISTED_STRUCTURE_CHANGES),
    unlisted: Math.max(0, changes.length - MAX_LISTED_STRUCTURE_CHANGES),
  };
}

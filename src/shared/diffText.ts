/** Words for a model diff, shared by the CLI and the diff editor. */
import type { DiffNode, StructureChange, TensorPairDiff } from './diff';
import { formatShape } from './format';

/** How a pair was found, in words. */
export function pairingText(pair: TensorPairDiff): string {
  switch (pair.pairing) {
    case 'name':
      return 'same name';
    case 'node':
      return `same node as ${pair.namesB[0]}`;
    case 'factors':
      return `factors ${pair.namesB.join(' · ')}`;
  }
}

/** The shape on each side: `[64, 48]`, `[64, 48] → [64, 8] · [8, 48]`. */
export function shapeChangeText(pair: TensorPairDiff): string {
  const before = formatShape(pair.shapeA);
  const after = pair.shapeB.map(formatShape).join(' · ');
  return before === after ? before : `${before} → ${after}`;
}

/** The dtype (and encoding) on each side: `float32 → int8 (int8 per-channel)`, each side as stored. */
export function dtypeChangeText(pair: TensorPairDiff): string {
  const side = (dtypes: readonly string[], encoding: string | undefined) =>
    `${[...new Set(dtypes)].join('/')}${encoding ? ` (${encoding})` : ''}`;
  const before = side([pair.dtypeA], pair.encodingA);
  const after = side(pair.dtypeB, pair.encodingB);
  return before === after ? before : `${before} → ${after}`;
}

function nodeText(node: DiffNode): string {
  return `${node.name} (${node.op})`;
}

/** One structure change as a line: `+ added x (DequantizeLinear)`, `~ split fc1 (MatMul) → …`. */
export function structureChangeText(change: StructureChange): string {
  const after = (change.after ?? []).map(nodeText);
  const where = (change.before ?? change.after?.[0])?.graph;
  const graph = where ? ` in ${where}` : '';
  switch (change.kind) {
    case 'added':
      return `+ added ${after.join(', ')}${graph}`;
    case 'removed':
      return `- removed ${nodeText(change.before!)}${graph}`;
    case 'split':
      return `~ split ${nodeText(change.before!)} into ${after.join(' then ')}${graph}`;
    case 'changed':
      return `~ changed ${nodeText(change.before!)} → ${after.join(', ')}: ${(change.differences ?? []).join(', ')} differ${graph}`;
  }
}

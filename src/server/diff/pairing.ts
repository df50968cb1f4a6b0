/**
 * Which tensor of model B each tensor of model A became. In this order:
 *
 * 1. The same name (in the same graph).
 * 2. The same layer under another name, with as many values: the layer is the node the
 *    format names for a tensor (ONNX: its consuming node, looking through Cast and other
 *    pass-through ops), keyed by that node's first output, which compression keeps (a
 *    rewritten node gets a new name but still computes the same output). So
 *    `fc1.weight` → `fc1.weight_quantized` (int8), `_fp16`, `_nbits` pair up.
 * 3. Factors (ONNX): W's node computed output O; in B, the node computing O reads a
 *    tensor F2 and its data input comes from a node that reads a tensor F1, the two
 *    factors' product has W's matrix shape (F1·F2, or F2·F1 for a Gemm with transB or a
 *    Conv split into a kernel and a 1×1). Low rank's `_lowrank_a`/`_lowrank_b` pair so.
 *
 * Tensors of B left over that a paired B tensor's layer also reads, or whose name extends
 * a paired name on either side (`.scale`, `_scale`, `_zero_point`, the `_shape` of a
 * Reshape back to W's shape), are that pair's companions.
 */
import { matrixShape } from '../../shared/heatmap';
import type { PairingKind } from '../../shared/diff';
import type { OnnxModel } from '../onnx';
import type { OpenedModel, TensorEntry } from '../formats/types';

/** Where a tensor sits: its layer's key, and for ONNX the node and its graph. */
interface Placed {
  readonly entry: TensorEntry;
  readonly key: string;
  readonly graph: string;
  /** The node that reads it as its layer (ONNX). */
  readonly layerInputs?: readonly string[];
}

export interface TensorPair {
  readonly a: TensorEntry;
  readonly b: readonly TensorEntry[];
  readonly kind: PairingKind;
  readonly companions: TensorEntry[];
  /** For factors: B's first factor times the second (true), or the second times the first. */
  readonly firstTimesSecond?: boolean;
}

export interface Pairing {
  readonly pairs: TensorPair[];
  readonly onlyA: TensorEntry[];
  readonly onlyB: TensorEntry[];
}

const SEP = '\u0000';

function place(model: OpenedModel, onnx: OnnxModel | undefined): Placed[] {
  return model.tensors.map((entry, i) => {
    const slot = onnx?.slots[i];
    if (!onnx || !slot) {
      return { entry, key: `${entry.info.graph}${SEP}${entry.info.node}`, graph: entry.info.graph };
    }
    const use = onnx.layerOf(slot.name, slot.scope);
    if (!use)
      return { entry, key: `${slot.scope.path}${SEP}=${slot.name}`, graph: slot.scope.path };
    const out = use.node.output?.[0] || `#${use.node.name ?? ''}`;
    return {
      entry,
      key: `${use.scope.path}${SEP}${out}`,
      graph: use.scope.path,
      layerInputs: use.node.input ?? [],
    };
  });
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** The orientation in which two factors multiply to a rows × cols matrix, or undefined. */
export function factorOrder(
  shape: readonly number[],
  first: readonly number[],
  second: readonly number[],
): boolean | undefined {
  const w = matrixShape(shape);
  const f1 = matrixShape(first);
  const f2 = matrixShape(second);
  if (!w || !f1 || !f2) return undefined;
  if (f1.rows === w.rows && f2.cols === w.cols && f1.cols === f2.rows) return true;
  if (f2.rows === w.rows && f1.cols === w.cols && f2.cols === f1.rows) return false;
  return undefined;
}

export function pairTensors(
  a: OpenedModel,
  b: OpenedModel,
  onnxA: OnnxModel | undefined,
  onnxB: OnnxModel | undefined,
): Pairing {
  const placedA = place(a, onnxA);
  const placedB = place(b, onnxB);
  const usedB = new Set<number>();
  const pairs: TensorPair[] = [];
  const pairedA = new Set<number>();
  const pair = (p: Placed, kind: PairingKind, bs: Placed[], order?: boolean) => {
    pairedA.add(p.entry.info.index);
    for (const q of bs) usedB.add(q.entry.info.index);
    pairs.push({
      a: p.entry,
      b: bs.map((q) => q.entry),
      kind,
      companions: [],
      ...(order === undefined ? {} : { firstTimesSecond: order }),
    });
  };

  // 1. Names.
  const byNameB = new Map(
    placedB.map((p) => [`${p.entry.info.graph}${SEP}${p.entry.info.name}`, p]),
  );
  for (const p of placedA) {
    const q = byNameB.get(`${p.entry.info.graph}${SEP}${p.entry.info.name}`);
    if (q && !usedB.has(q.entry.info.index)) pair(p, 'name', [q]);
  }

  // 2. The same layer, as many values.
  const byKeyB = groupBy(placedB, (p) => p.key);
  const free = (key: string) =>
    (byKeyB.get(key) ?? []).filter((q) => !usedB.has(q.entry.info.index));
  for (const p of placedA) {
    if (pairedA.has(p.entry.info.index)) continue;
    const { info } = p.entry;
    const candidates = free(p.key).filter(
      (q) => q.entry.info.parameterCount === info.parameterCount,
    );
    const score = (q: Placed) =>
      (q.entry.info.shape.join() === info.shape.join() ? 2 : 0) +
      (q.entry.info.name.startsWith(info.name) ? 1 : 0);
    const best = candidates.sort((x, y) => score(y) - score(x))[0];
    if (best) pair(p, 'node', [best]);
  }

  // 3. Factors: the node computing W's output now reads F2 and the output of a node reading F1.
  if (onnxA && onnxB) {
    for (const p of placedA) {
      if (pairedA.has(p.entry.info.index)) continue;
      for (const second of free(p.key)) {
        const mid = second.layerInputs?.[0];
        if (!mid) continue;
        const first = free(`${second.graph}${SEP}${mid}`).find(
          (f) =>
            factorOrder(p.entry.info.shape, f.entry.info.shape, second.entry.info.shape) !==
            undefined,
        );
        if (!first) continue;
        pair(
          p,
          'factors',
          [first, second],
          factorOrder(p.entry.info.shape, first.entry.info.shape, second.entry.info.shape),
        );
        break;
      }
    }
  }

  // Companions: leftovers of B read by a paired B tensor's layer, or extending its name.
  const pairOfB = new Map<number, TensorPair>();
  for (const t of pairs) for (const e of t.b) pairOfB.set(e.info.index, t);
  const pairOfKey = new Map<string, TensorPair>();
  const pairOfName = new Map<string, TensorPair>();
  for (const q of placedB) {
    const t = pairOfB.get(q.entry.info.index);
    if (!t) continue;
    if (!pairOfKey.has(q.key)) pairOfKey.set(q.key, t);
    pairOfName.set(q.entry.info.name, t);
  }
  // A's name too: compression names the helpers of a rewritten weight after it (`W_shape`).
  for (const t of pairs) if (!pairOfName.has(t.a.info.name)) pairOfName.set(t.a.info.name, t);
  const extended = (name: string): TensorPair | undefined => {
    for (let cut = name.length - 1; cut > 0; cut--) {
      if (name[cut] === '.' || name[cut] === '_') {
        const t = pairOfName.get(name.slice(0, cut));
        if (t) return t;
      }
    }
    return undefined;
  };
  for (const q of placedB) {
    if (usedB.has(q.entry.info.index)) continue;
    const byLayer = pairOfKey.get(q.key);
    const t = extended(q.entry.info.name) ?? (byLayer?.kind === 'name' ? undefined : byLayer);
    if (!t) continue;
    t.companions.push(q.entry);
    usedB.add(q.entry.info.index);
  }

  return {
    pairs: pairs.sort((x, y) => x.a.info.index - y.a.info.index),
    onlyA: placedA.filter((p) => !pairedA.has(p.entry.info.index)).map((p) => p.entry),
    onlyB: placedB.filter((p) => !usedB.has(p.entry.info.index)).map((p) => p.entry),
  };
}

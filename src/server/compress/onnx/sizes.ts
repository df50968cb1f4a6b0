/**
 * What a compressed ONNX model's protobuf takes, counted before anything is written: the
 * bytes of new tensors, nodes and attributes, and what the predictor knows of each weight
 * (its layout and consumers). The method modules' `predictBytes` add these up.
 */
import { computeSpectrumInThread } from '../../analysis/spectrum';
import { rankForEnergy } from '../../../shared/spectrum';
import type { OpenedModel } from '../../formats/types';
import { opsetSkipReason } from './methods';
import {
  intAttribute,
  isGraphOutput,
  onlyDirectMatMul,
  opsetRaiseBlocker,
  weightLayout,
  type OnnxModel,
  type TensorSlot,
  type WeightLayout,
} from '../../onnx';

/** Bytes of a protobuf varint. */
export function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

/** A length-delimited protobuf field (tag, length, payload). */
export function field(payload: number): number {
  return 1 + varintBytes(payload) + payload;
}

export function text(value: string): number {
  return field(Buffer.byteLength(value));
}

/** An int attribute `name = value` (as a field of a node). */
export function intAttr(name: string, value: number): number {
  return field(text(name) + 2 + 1 + varintBytes(value));
}

/** A new TensorProto with raw data, as an initializer (or a Constant node's value). */
export function tensorProto(
  name: string,
  dims: readonly number[],
  dataBytes: number,
  constant: boolean,
): number {
  const body =
    text(name) + dims.reduce((sum, d) => sum + 1 + varintBytes(d), 0) + 2 + field(dataBytes);
  if (!constant) return field(body);
  const valueAttr = field(text('value') + 2 + field(body));
  return field(text(`${name}_Constant`) + text('Constant') + text(name) + valueAttr);
}

/** A node with its strings and attribute bytes. */
export function node(
  op: string,
  name: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs = 0,
  domain = '',
): number {
  return field(
    text(op) +
      text(name) +
      inputs.reduce((sum, s) => sum + text(s), 0) +
      outputs.reduce((sum, s) => sum + text(s), 0) +
      attrs +
      (domain ? text(domain) : 0),
  );
}

/** What the ONNX predictor knows of one weight: its layout and how it is used. */
export interface OnnxWeight {
  readonly slot: TensorSlot;
  readonly layout?: WeightLayout;
  /** Why no method needing an input axis applies. */
  readonly layoutProblem?: string;
  /** Why no method applies at all. */
  readonly problem?: string;
  readonly directMatMul: boolean;
  /** Why low rank does not apply (beyond the layout). */
  readonly lowRankProblem?: string;
  /** Number of consumer nodes. */
  readonly consumers: number;
  readonly consumerLabels: readonly string[];
  /**
   * Why a node needing opset `target` (for `why`) cannot be written into this model, or
   * null: what `needOpset` would skip the weight with (methods' `feasible` ask it).
   */
  opsetProblem(target: number, why: string): string | null;
}

export function onnxWeights(model: OpenedModel, decoded: OnnxModel): Map<number, OnnxWeight> {
  const slots = decoded.slots;
  // The blocker depends on the model and the opset only: found once per opset.
  const blockers = new Map<number, string | null>();
  const opsetProblem = (target: number, why: string): string | null => {
    let blocker = blockers.get(target);
    if (blocker === undefined) {
      blocker = opsetRaiseBlocker(decoded.proto, decoded.path, target) ?? null;
      blockers.set(target, blocker);
    }
    return blocker === null ? null : opsetSkipReason(why, target, blocker);
  };
  const weights = new Map<number, OnnxWeight>();
  for (const slot of slots) {
    const info = model.tensors[slot.index]?.info;
    if (!info) continue;
    let problem: string | undefined;
    if (slot.kind === 'sparse-initializer') problem = 'sparse initializer';
    else if (!slot.proto) problem = 'Constant given by value_* attributes';
    else if (info.dtype !== 'float32') problem = `${info.dtype} tensor`;
    else if (info.shape.length < 2) problem = 'a bias or vector';
    const { uses, problem: useProblem } = decoded.weightUses(slot.name, slot.scope);
    problem ??= useProblem;
    if (problem) {
      weights.set(slot.index, {
        slot,
        problem,
        directMatMul: false,
        consumers: 0,
        consumerLabels: [],
        opsetProblem,
      });
      continue;
    }
    const layout = weightLayout(uses, info.shape);
    let lowRankProblem: string | undefined;
    if (typeof layout !== 'string') {
      if (layout.kind === 'recurrent' || layout.kind === 'embedding')
        lowRankProblem = 'low rank applies to MatMul, Gemm and Conv weights';
      else if (uses.some((use) => use.chain.length > 0))
        lowRankProblem = 'low rank needs the weight read directly';
      else if (
        uses.some((use) => use.node.opType === 'Conv' && intAttribute(use.node, 'group', 1) !== 1)
      )
        lowRankProblem = 'grouped convolution';
      else if (isGraphOutput(slot.name, slot.scope)) lowRankProblem = 'also a graph output';
    }
    weights.set(slot.index, {
      slot,
      ...(typeof layout === 'string' ? { layoutProblem: layout } : { layout }),
      ...(lowRankProblem ? { lowRankProblem } : {}),
      directMatMul: onlyDirectMatMul(uses) && !isGraphOutput(slot.name, slot.scope),
      consumers: uses.length,
      consumerLabels: uses.map((use) => use.node.name || use.node.opType || 'node'),
      opsetProblem,
    });
  }
  return weights;
}

/** The nodes (and shape tensor) that turn a 2-D form back into W's shape. */
export function reshapeBytes(name: string, rank: number, constant: boolean): number {
  if (rank === 2) return 0;
  return (
    tensorProto(`${name}_shape`, [rank], 8 * rank, constant) +
    node('Reshape', `${name}_Reshape`, [`${name}_2d`, `${name}_shape`], [name])
  );
}

/** The smallest rank keeping `energy` of Σσ² of the row-major `rows` × `cols` matrix. */
export async function rankForEnergyOf(
  values: Float32Array,
  rows: number,
  cols: number,
  energy: number,
): Promise<number> {
  const spectrum = await computeSpectrumInThread(values, [rows, cols], { method: 'full' });
  const sigma = Array.from(spectrum.singularValues);
  const total = sigma.reduce((sum, s) => sum + s * s, 0);
  return rankForEnergy(sigma, total, energy);
}

/**
 * Weights a model stores quantized: integer codes an op turns into the values the model
 * computes with, (q − zero point) · scale. Found from the graph: the codes feed
 * DequantizeLinear (QDQ, per tensor, per axis, or blocked from opset 21), QLinearConv /
 * QLinearMatMul (w_scale, w_zero_point inputs), ConvInteger / MatMulInteger (zero point
 * input; the weight's scale is the initializer onnxruntime's dynamic quantizer multiplies
 * with the input's after the op: op → Cast → Mul(·, Mul(input scale, weight scale))), or
 * com.microsoft MatMulNBits (packed codes, block scales and zero points). The reader
 * (formats/onnxQuantized.ts) reads the values of the tensors named here and decodes them.
 */
import type { onnx } from 'onnx-proto';
import { intAttribute } from './nodes';
import type { OnnxModel } from './model';
import { MAX_PASS_THROUGH_STEPS } from './passThrough';
import { isDefaultDomain, type Scope } from './scopes';
import type { TensorSlot } from './slots';

/** How the scale (and zero point) entries map onto the codes. */
export type QuantizedGrid =
  /**
   * DequantizeLinear's rules: one scale (`axis` null), one per index along `axis`, or with
   * `blockSize` > 0 one per block of that many along `axis` (the scale tensor has the
   * codes' rank). `axis` may be negative (counted from the end).
   */
  | { readonly kind: 'axis'; readonly axis: number | null; readonly blockSize: number }
  /**
   * MatMulNBits' B: [N, blocks, blockSize·bits/8] bytes of `bits`-bit codes along K, low
   * bits first; scales [N·blocks]; zero points packed the same way per row of N (uint8),
   * or unpacked in the scales' type; absent: 2^(bits−1). The weight is [K, N].
   */
  | {
      readonly kind: 'nbits';
      readonly k: number;
      readonly n: number;
      readonly bits: number;
      readonly blockSize: number;
    };

/** A stored tensor holding quantized codes, and the tensors that decode it. */
export interface QuantizedWeight {
  /** The op that reads the codes (`DequantizeLinear`, `MatMulNBits`, …). */
  readonly op: string;
  readonly codes: TensorSlot;
  /** Absent when it could not be found (then `problem` says why). */
  readonly scale?: TensorSlot;
  readonly zeroPoint?: TensorSlot;
  readonly grid: QuantizedGrid;
  /** Why the values cannot be decoded (the scale is not a stored tensor, …). */
  readonly problem?: string;
}

/** Ops that read stored codes, where, and where their scale and zero point are. */
interface CodesInput {
  /** Domains the op is read in (onnxruntime also has com.microsoft DequantizeLinear, for 16-bit codes). */
  readonly domains: readonly ('ai.onnx' | 'com.microsoft')[];
  readonly codes: number;
  /** Input of the scale; undefined: found after the op (ConvInteger, MatMulInteger). */
  readonly scale?: number;
  readonly zeroPoint: number;
  /** The axis of per-channel scales; DequantizeLinear reads its `axis` attribute. */
  readonly axis?: number;
}

const CODES_INPUTS: ReadonlyMap<string, CodesInput> = new Map<string, CodesInput>([
  ['DequantizeLinear', { domains: ['ai.onnx', 'com.microsoft'], codes: 0, scale: 1, zeroPoint: 2 }],
  ['QLinearConv', { domains: ['ai.onnx'], codes: 3, scale: 4, zeroPoint: 5, axis: 0 }],
  ['QLinearMatMul', { domains: ['ai.onnx'], codes: 3, scale: 4, zeroPoint: 5, axis: -1 }],
  ['ConvInteger', { domains: ['ai.onnx'], codes: 1, zeroPoint: 3, axis: 0 }],
  ['MatMulInteger', { domains: ['ai.onnx'], codes: 1, zeroPoint: 3, axis: -1 }],
  ['MatMulNBits', { domains: ['com.microsoft'], codes: 1, scale: 2, zeroPoint: 3 }],
]);

function inDomain(node: onnx.INodeProto, domains: CodesInput['domains']): boolean {
  return domains.some((domain) =>
    domain === 'ai.onnx' ? isDefaultDomain(node.domain) : node.domain === domain,
  );
}

/** The stored tensors and node outputs of every graph, by name. */
class GraphIndex {
  private readonly slots = new Map<onnx.IGraphProto, Map<string, TensorSlot>>();
  private readonly producers = new Map<onnx.IGraphProto, Map<string, onnx.INodeProto>>();

  constructor(private readonly model: OnnxModel) {
    for (const slot of model.slots) {
      let names = this.slots.get(slot.scope.graph);
      if (!names) this.slots.set(slot.scope.graph, (names = new Map()));
      if (!names.has(slot.name)) names.set(slot.name, slot);
    }
  }

  /** The stored tensor `name` read in `scope` (its own graph's, else the main graph's). */
  slot(name: string | undefined, scope: Scope): TensorSlot | undefined {
    if (!name) return undefined;
    return (
      this.slots.get(scope.graph)?.get(name) ?? this.slots.get(this.model.main.graph)?.get(name)
    );
  }

  /** The node of `scope`'s graph that outputs `name`. */
  producer(name: string, scope: Scope): onnx.INodeProto | undefined {
    let outputs = this.producers.get(scope.graph);
    if (!outputs) {
      outputs = new Map();
      for (const node of scope.graph.node ?? []) {
        for (const output of node.output ?? []) if (output) outputs.set(output, node);
      }
      this.producers.set(scope.graph, outputs);
    }
    return outputs.get(name);
  }
}

/**
 * The weight's scale of a ConvInteger/MatMulInteger: through Casts to the Mul that scales
 * the integer result; its other factor is a product Mul(input scale, weight scale) whose
 * one stored factor is the weight's (the input's comes from DynamicQuantizeLinear).
 */
function scaleAfter(
  model: OnnxModel,
  index: GraphIndex,
  node: onnx.INodeProto,
  scope: Scope,
): { scale?: TensorSlot; problem?: string } {
  const op = node.opType ?? '';
  let value = node.output?.[0] ?? '';
  for (let step = 0; step < MAX_PASS_THROUGH_STEPS; step++) {
    const uses = model.usesOf(value, scope);
    if (uses.length !== 1) {
      return {
        problem: `the result of ${op} is not scaled by one Mul (it has ${uses.length} readers)`,
      };
    }
    const use = uses[0]!;
    const next = use.node.opType ?? '';
    if (next === 'Cast' && isDefaultDomain(use.node.domain)) {
      value = use.node.output?.[0] ?? '';
      continue;
    }
    if (next !== 'Mul' || !isDefaultDomain(use.node.domain)) {
      return {
        problem: `the result of ${op} goes to ${next || 'a node'}, not to a Mul by the scales`,
      };
    }
    const other = use.node.input?.[1 - use.inputIndex] ?? '';
    if (index.slot(other, scope)) {
      return {
        problem: `${op}'s result is multiplied by one stored scale: the weight's scale cannot be told apart from the input's`,
      };
    }
    const product = index.producer(other, scope);
    if (product?.opType !== 'Mul' || !isDefaultDomain(product.domain)) {
      return { problem: `the scale ${op}'s result is multiplied by is not a product of scales` };
    }
    const stored = (product.input ?? []).map((name) => index.slot(name, scope));
    const found = stored.filter((slot): slot is TensorSlot => slot !== undefined);
    if (found.length !== 1) {
      return {
        problem: `the scales multiplied after ${op} are ${found.length === 0 ? 'both computed' : 'both stored'}: the weight's cannot be told apart`,
      };
    }
    return { scale: found[0]! };
  }
  return { problem: `no Mul by the scales within ${MAX_PASS_THROUGH_STEPS} steps after ${op}` };
}

function quantizedUse(
  model: OnnxModel,
  index: GraphIndex,
  codes: TensorSlot,
): QuantizedWeight | undefined {
  for (const use of model.usesOf(codes.name, codes.scope)) {
    const op = use.node.opType ?? '';
    const input = CODES_INPUTS.get(op);
    if (!input || !inDomain(use.node, input.domains) || use.inputIndex !== input.codes) continue;
    const inputs = use.node.input ?? [];
    const zeroPointName = inputs[input.zeroPoint];
    const zeroPoint = index.slot(zeroPointName, use.scope);
    let grid: QuantizedGrid;
    if (op === 'MatMulNBits') {
      grid = {
        kind: 'nbits',
        k: intAttribute(use.node, 'K', 0),
        n: intAttribute(use.node, 'N', 0),
        bits: intAttribute(use.node, 'bits', 4),
        blockSize: intAttribute(use.node, 'block_size', 0),
      };
    } else if (op === 'DequantizeLinear') {
      grid = {
        kind: 'axis',
        axis: intAttribute(use.node, 'axis', 1),
        blockSize: intAttribute(use.node, 'block_size', 0),
      };
    } else {
      grid = { kind: 'axis', axis: input.axis ?? null, blockSize: 0 };
    }
    const found =
      input.scale === undefined
        ? scaleAfter(model, index, use.node, use.scope)
        : { scale: index.slot(inputs[input.scale], use.scope) };
    const problems: string[] = [];
    if (found.problem) problems.push(found.problem);
    else if (!found.scale) problems.push(`the scale of ${op} is computed, not stored`);
    if (zeroPointName && !zeroPoint)
      problems.push(`the zero point of ${op} is computed, not stored`);
    return {
      op,
      codes,
      ...(found.scale ? { scale: found.scale } : {}),
      ...(zeroPoint ? { zeroPoint } : {}),
      grid,
      ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
    };
  }
  return undefined;
}

/**
 * The stored tensors that hold quantized weights, by tensor index: the first op (in walk
 * order) that reads each one as its codes decides.
 */
export function quantizedWeights(model: OnnxModel): Map<number, QuantizedWeight> {
  const weights = new Map<number, QuantizedWeight>();
  // Most models read no codes: skip indexing their (up to MAX_TENSORS) tensors.
  const readsCodes = model.scopes.some((scope) =>
    (scope.graph.node ?? []).some((node) => CODES_INPUTS.has(node.opType ?? '')),
  );
  if (!readsCodes) return weights;
  const index = new GraphIndex(model);
  for (const slot of model.slots) {
    if (!slot.proto) continue;
    const found = quantizedUse(model, index, slot);
    if (found) weights.set(slot.index, found);
  }
  return weights;
}

/**
 * The stored tensors of a model, in the order of the model's tensor list: per graph (in
 * the walk order of scopes.ts) its initializers, its sparse initializers, then its
 * Constant nodes in node order, each node's subgraphs right after the node.
 */
import type { onnx } from 'onnx-proto';
import { MAX_TENSORS } from '../../shared/limits';
import { ModelFileError } from '../formats/modelFileError';
import type { TimeSlicer } from '../jobs/eventLoop';
import { isDefaultDomain, mainScope, nodeLabel, scopeSteps, type Scope } from './scopes';

/** A stored tensor of the model. `index` is its position in the model's tensor list. */
export interface TensorSlot {
  readonly index: number;
  readonly name: string;
  readonly scope: Scope;
  readonly kind: 'initializer' | 'sparse-initializer' | 'constant';
  /** The TensorProto (the initializer, or the Constant node's `value`); absent for other forms. */
  readonly proto?: onnx.ITensorProto;
  /** The sparse initializer, or the Constant node's `sparse_value`. */
  readonly sparse?: onnx.ISparseTensorProto;
  /** For Constant nodes: the node, its label and the attribute holding the value. */
  readonly node?: onnx.INodeProto;
  readonly nodeName?: string;
  readonly value?: onnx.IAttributeProto;
}

/** Attributes a Constant node may hold its value in. */
const CONSTANT_VALUE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'value',
  'sparse_value',
  'value_float',
  'value_floats',
  'value_int',
  'value_ints',
  'value_string',
  'value_strings',
]);

/** The attribute holding a Constant node's value, or undefined when it has none we know. */
export function constantValueAttribute(node: onnx.INodeProto): onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((attribute) => {
    const name = attribute.name ?? '';
    if (!CONSTANT_VALUE_ATTRIBUTES.has(name)) return false;
    if (name === 'value') return Boolean(attribute.t);
    if (name === 'sparse_value') return Boolean(attribute.sparseTensor);
    return true;
  });
}

/**
 * Every stored tensor, one at a time, in walk order; warnings about what was found on the
 * way (names defined twice in one graph, Constant nodes without a readable value) are
 * pushed to `warnings`.
 */
function* slotSteps(
  model: onnx.IModelProto,
  modelPath: string,
  warnings: string[],
): Generator<TensorSlot> {
  let count = 0;
  const seenIn = new Map<onnx.IGraphProto, Set<string>>();
  const slot = (fields: Omit<TensorSlot, 'index'>): TensorSlot => {
    if (count >= MAX_TENSORS) {
      throw new ModelFileError(modelPath, `the model holds more than ${MAX_TENSORS} tensors`);
    }
    const seen = seenIn.get(fields.scope.graph)!;
    if (seen.has(fields.name)) {
      warnings.push(
        `tensor name '${fields.name}' is defined more than once in graph '${fields.scope.path || 'main'}'`,
      );
    }
    seen.add(fields.name);
    return { index: count++, ...fields };
  };
  for (const step of scopeSteps(mainScope(model), modelPath)) {
    const scope = step.scope;
    if (step.kind === 'graph') {
      seenIn.set(scope.graph, new Set());
      for (const proto of scope.graph.initializer ?? []) {
        yield slot({ name: proto.name ?? '', scope, kind: 'initializer', proto });
      }
      for (const sparse of scope.graph.sparseInitializer ?? []) {
        yield slot({ name: sparse.values?.name ?? '', scope, kind: 'sparse-initializer', sparse });
      }
      continue;
    }
    const { node, nodeIndex } = step;
    if (node.opType !== 'Constant' || !isDefaultDomain(node.domain)) continue;
    const nodeName = nodeLabel(node, nodeIndex);
    const value = constantValueAttribute(node);
    if (!value) {
      warnings.push(`Constant node '${nodeName}' has no value LayerLens can read`);
      continue;
    }
    yield slot({
      name: node.output?.[0] || nodeName,
      scope,
      kind: 'constant',
      node,
      nodeName,
      value,
      ...(value.name === 'value' ? { proto: value.t! } : {}),
      ...(value.name === 'sparse_value' ? { sparse: value.sparseTensor! } : {}),
    });
  }
}

/**
 * Every stored tensor, and warnings about what was found on the way (names defined twice
 * in one graph, Constant nodes without a readable value), in walk order.
 */
export function tensorSlotsWithWarnings(
  model: onnx.IModelProto,
  modelPath: string,
): { slots: TensorSlot[]; warnings: string[] } {
  const warnings: string[] = [];
  return { slots: [...slotSteps(model, modelPath, warnings)], warnings };
}

/** Like tensorSlotsWithWarnings, yielding to the event loop as `slicer` says. */
export async function tensorSlotsSliced(
  model: onnx.IModelProto,
  modelPath: string,
  slicer: TimeSlicer,
): Promise<{ slots: TensorSlot[]; warnings: string[] }> {
  const warnings: string[] = [];
  const slots: TensorSlot[] = [];
  for (const slot of slotSteps(model, modelPath, warnings)) {
    slots.push(slot);
    if (slicer.due()) await slicer.pause();
  }
  return { slots, warnings };
}

/** The stored tensors in the order of the model's tensor list. */
export function tensorSlots(model: onnx.IModelProto, modelPath: string): TensorSlot[] {
  return tensorSlotsWithWarnings(model, modelPath).slots;
}

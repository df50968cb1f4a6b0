/**
 * The decoded ONNX model as the compressor edits it: every stored tensor in the reader's
 * order (so that tensor indices match the model's tensor list), the nodes that use each
 * name (within its graph and in subgraphs that read it from the outer scope), fresh
 * names, and small builders for nodes and attributes.
 */
import { onnx } from 'onnx-proto';
import { MAX_SUBGRAPH_DEPTH } from '../../../shared/limits';
import { int64ToSafeInteger, type ProtoInt64 } from '../../formats/onnxTensors';
import { ModelFileError } from '../../formats/types';

/** One graph (main or subgraph) and where it sits. */
export interface Scope {
  readonly graph: onnx.IGraphProto;
  /** `""` for the main graph, `If_0/then_branch` for subgraphs (as the reader names them). */
  readonly path: string;
  readonly depth: number;
}

/** A stored tensor of the model, in the reader's order. */
export interface TensorSlot {
  readonly index: number;
  readonly name: string;
  readonly scope: Scope;
  readonly kind: 'initializer' | 'sparse-initializer' | 'constant';
  /** The TensorProto (the initializer, or the Constant node's `value`); absent for other Constant forms. */
  readonly proto?: onnx.ITensorProto;
  /** For Constant nodes: the node. */
  readonly node?: onnx.INodeProto;
}

/** A node reading a name, with the position of that name among its inputs. */
export interface Use {
  readonly scope: Scope;
  readonly node: onnx.INodeProto;
  readonly inputIndex: number;
}

export function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

function nodeLabel(node: onnx.INodeProto, index: number): string {
  return node.name || `${node.opType ?? 'Node'}_${index}`;
}

/** Subgraph attributes of a node with the reader's path for each. */
export function subgraphsOf(
  node: onnx.INodeProto,
  nodeIndex: number,
  scope: Scope,
): { graph: onnx.IGraphProto; path: string }[] {
  const prefix = scope.path ? `${scope.path}/` : '';
  const result: { graph: onnx.IGraphProto; path: string }[] = [];
  for (const attribute of node.attribute ?? []) {
    const at = `${prefix}${nodeLabel(node, nodeIndex)}/${attribute.name ?? ''}`;
    if (attribute.g) result.push({ graph: attribute.g, path: at });
    (attribute.graphs ?? []).forEach((graph, i) => result.push({ graph, path: `${at}[${i}]` }));
  }
  return result;
}

/** Every graph of the model, outer before inner. */
export function allScopes(model: onnx.IModelProto, modelPath: string): Scope[] {
  const scopes: Scope[] = [];
  const visit = (scope: Scope): void => {
    if (scope.depth > MAX_SUBGRAPH_DEPTH) {
      throw new ModelFileError(
        modelPath,
        `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} deep`,
      );
    }
    scopes.push(scope);
    (scope.graph.node ?? []).forEach((node, i) => {
      for (const sub of subgraphsOf(node, i, scope)) {
        visit({ graph: sub.graph, path: sub.path, depth: scope.depth + 1 });
      }
    });
  };
  visit({ graph: model.graph!, path: '', depth: 0 });
  return scopes;
}

/** The stored tensors in the order of the model's tensor list (see formats/onnx.ts). */
export function tensorSlots(model: onnx.IModelProto, modelPath: string): TensorSlot[] {
  const slots: TensorSlot[] = [];
  const visit = (scope: Scope): void => {
    if (scope.depth > MAX_SUBGRAPH_DEPTH) {
      throw new ModelFileError(
        modelPath,
        `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} deep`,
      );
    }
    const graph = scope.graph;
    for (const proto of graph.initializer ?? []) {
      slots.push({
        index: slots.length,
        name: proto.name ?? '',
        scope,
        kind: 'initializer',
        proto,
      });
    }
    for (const sparse of graph.sparseInitializer ?? []) {
      slots.push({
        index: slots.length,
        name: sparse.values?.name ?? '',
        scope,
        kind: 'sparse-initializer',
      });
    }
    (graph.node ?? []).forEach((node, nodeIndex) => {
      if (node.opType === 'Constant' && isDefaultDomain(node.domain)) {
        const attributes = node.attribute ?? [];
        const known = attributes.some((a) =>
          [
            'value',
            'sparse_value',
            'value_float',
            'value_floats',
            'value_int',
            'value_ints',
            'value_string',
            'value_strings',
          ].includes(a.name ?? ''),
        );
        if (known) {
          const value = attributes.find((a) => a.name === 'value')?.t ?? undefined;
          slots.push({
            index: slots.length,
            name: node.output?.[0] || nodeLabel(node, nodeIndex),
            scope,
            kind: 'constant',
            node,
            ...(value ? { proto: value } : {}),
          });
        }
      }
      for (const sub of subgraphsOf(node, nodeIndex, scope)) {
        visit({ graph: sub.graph, path: sub.path, depth: scope.depth + 1 });
      }
    });
  };
  visit({ graph: model.graph!, path: '', depth: 0 });
  return slots;
}

/** Names a graph defines itself (so that they shadow outer names in its subgraphs' view). */
function definedIn(graph: onnx.IGraphProto): Set<string> {
  const names = new Set<string>();
  for (const t of graph.initializer ?? []) names.add(t.name ?? '');
  for (const s of graph.sparseInitializer ?? []) names.add(s.values?.name ?? '');
  for (const i of graph.input ?? []) names.add(i.name ?? '');
  for (const n of graph.node ?? []) for (const o of n.output ?? []) names.add(o);
  return names;
}

/** Every node reading `name` in `scope`, and in subgraphs that do not redefine it. */
export function usesOf(name: string, scope: Scope): Use[] {
  const uses: Use[] = [];
  const visit = (current: Scope): void => {
    (current.graph.node ?? []).forEach((node, nodeIndex) => {
      (node.input ?? []).forEach((input, inputIndex) => {
        if (input === name) uses.push({ scope: current, node, inputIndex });
      });
      for (const sub of subgraphsOf(node, nodeIndex, current)) {
        if (!definedIn(sub.graph).has(name)) {
          visit({ graph: sub.graph, path: sub.path, depth: current.depth + 1 });
        }
      }
    });
  };
  visit(scope);
  return uses;
}

/** Whether a graph output (of `scope`'s graph) is `name`. */
export function isGraphOutput(name: string, scope: Scope): boolean {
  return (scope.graph.output ?? []).some((output) => output.name === name);
}

/** Every value name of the model (tensors, node outputs, inputs, outputs) and node name. */
export function usedNames(model: onnx.IModelProto, modelPath: string): Set<string> {
  const names = new Set<string>();
  for (const scope of allScopes(model, modelPath)) {
    const graph = scope.graph;
    for (const t of graph.initializer ?? []) names.add(t.name ?? '');
    for (const s of graph.sparseInitializer ?? []) names.add(s.values?.name ?? '');
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])])
      names.add(v.name ?? '');
    for (const node of graph.node ?? []) {
      for (const n of [...(node.input ?? []), ...(node.output ?? [])]) names.add(n);
      if (node.name) names.add(node.name);
    }
  }
  return names;
}

/** Hands out names that collide with nothing in the model. */
export class NameAllocator {
  constructor(private readonly taken: Set<string>) {}

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }
}

export const attr = {
  int: (name: string, i: number): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i,
  }),
  float: (name: string, f: number): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.FLOAT,
    f,
  }),
  ints: (name: string, ints: readonly number[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints: [...ints],
  }),
  tensor: (name: string, t: onnx.ITensorProto): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.TENSOR,
    t,
  }),
};

export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  attributes: readonly onnx.IAttributeProto[] = [],
  domain = '',
): onnx.INodeProto {
  return {
    opType,
    input: [...inputs],
    output: [...outputs],
    name,
    domain,
    attribute: [...attributes],
  };
}

/** An integer attribute of a node (with its default when absent). */
export function intAttribute(node: onnx.INodeProto, name: string, fallback: number): number {
  const attribute = (node.attribute ?? []).find((a) => a.name === name);
  if (!attribute || attribute.i === null || attribute.i === undefined) return fallback;
  return int64ToSafeInteger(attribute.i as ProtoInt64) ?? fallback;
}

export function floatAttribute(node: onnx.INodeProto, name: string, fallback: number): number {
  const attribute = (node.attribute ?? []).find((a) => a.name === name);
  return attribute?.f ?? fallback;
}

export function intsAttribute(node: onnx.INodeProto, name: string): number[] | undefined {
  const attribute = (node.attribute ?? []).find((a) => a.name === name);
  if (!attribute) return undefined;
  return (attribute.ints ?? []).map((v) => int64ToSafeInteger(v as ProtoInt64) ?? 0);
}

export function stringAttribute(node: onnx.INodeProto, name: string): string | undefined {
  const attribute = (node.attribute ?? []).find((a) => a.name === name);
  return attribute?.s ? new TextDecoder().decode(attribute.s) : undefined;
}

/** The default-domain opset the model imports (0 when it imports none). */
export function defaultOpset(model: onnx.IModelProto): number {
  for (const entry of model.opsetImport ?? []) {
    if (isDefaultDomain(entry.domain)) {
      return int64ToSafeInteger(entry.version as ProtoInt64) ?? 0;
    }
  }
  return 0;
}

export function irVersionOf(model: onnx.IModelProto): number {
  return int64ToSafeInteger(model.irVersion as ProtoInt64) ?? 0;
}

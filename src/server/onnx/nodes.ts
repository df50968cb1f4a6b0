/**
 * Building and editing nodes: fresh names, attribute builders and readers.
 */
import { onnx } from 'onnx-proto';
import { int64ToSafeInteger, type ProtoInt64 } from './int64';
import { allScopes } from './scopes';

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

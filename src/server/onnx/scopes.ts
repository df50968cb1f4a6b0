/**
 * The graphs of a model (the main graph and the subgraphs of If/Loop/Scan and other
 * graph attributes), walked in one order everywhere: a graph, then its nodes in order,
 * each node's subgraphs right after the node. Nesting is refused past MAX_SUBGRAPH_DEPTH.
 */
import type { onnx } from 'onnx-proto';
import { MAX_SUBGRAPH_DEPTH } from '../../shared/limits';
import { ModelFileError } from '../formats/modelFileError';

/** One graph (main or subgraph) and where it sits. */
export interface Scope {
  readonly graph: onnx.IGraphProto;
  /** `""` for the main graph, `If_0/then_branch` for subgraphs (`…/body[1]` for graph lists). */
  readonly path: string;
  readonly depth: number;
}

export function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

/** A node's name, or `${opType}_${index}` for an unnamed node. */
export function nodeLabel(node: onnx.INodeProto, index: number): string {
  return node.name || `${node.opType ?? 'Node'}_${index}`;
}

/** Subgraph attributes of a node with the path of each. */
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

export function mainScope(model: onnx.IModelProto): Scope {
  return { graph: model.graph!, path: '', depth: 0 };
}

export interface ScopeVisitor {
  /** A graph, before its nodes. */
  graph?(scope: Scope): void;
  /** A node, before its subgraphs. */
  node?(scope: Scope, node: onnx.INodeProto, nodeIndex: number): void;
  /** Whether to walk into a subgraph (default: yes). */
  enter?(subgraph: Scope, parent: Scope): boolean;
}

/** One step of a walk: a graph (before its nodes), or a node (before its subgraphs). */
export type ScopeStep =
  | { readonly kind: 'graph'; readonly scope: Scope }
  | {
      readonly kind: 'node';
      readonly scope: Scope;
      readonly node: onnx.INodeProto;
      readonly nodeIndex: number;
    };

/**
 * The steps of a walk of `start` and the subgraphs below it in the module's order (see the
 * top comment), one at a time, so that a caller can pause between them.
 */
export function* scopeSteps(
  start: Scope,
  modelPath: string,
  enter?: ScopeVisitor['enter'],
): Generator<ScopeStep> {
  if (start.depth > MAX_SUBGRAPH_DEPTH) {
    throw new ModelFileError(
      modelPath,
      `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} levels deep (at ${start.path})`,
    );
  }
  yield { kind: 'graph', scope: start };
  const nodes = start.graph.node ?? [];
  for (let nodeIndex = 0; nodeIndex < nodes.length; nodeIndex++) {
    const node = nodes[nodeIndex]!;
    yield { kind: 'node', scope: start, node, nodeIndex };
    for (const sub of subgraphsOf(node, nodeIndex, start)) {
      const inner: Scope = { graph: sub.graph, path: sub.path, depth: start.depth + 1 };
      if (enter?.(inner, start) ?? true) yield* scopeSteps(inner, modelPath, enter);
    }
  }
}

/** Walks `start` and the subgraphs below it in the module's order (see the top comment). */
export function walkScopes(start: Scope, modelPath: string, visitor: ScopeVisitor): void {
  for (const step of scopeSteps(start, modelPath, visitor.enter)) {
    if (step.kind === 'graph') visitor.graph?.(step.scope);
    else visitor.node?.(step.scope, step.node, step.nodeIndex);
  }
}

/** Every graph of the model, outer before inner. */
export function allScopes(model: onnx.IModelProto, modelPath: string): Scope[] {
  const scopes: Scope[] = [];
  walkScopes(mainScope(model), modelPath, { graph: (scope) => scopes.push(scope) });
  return scopes;
}

/** Names a graph defines itself (so that they shadow outer names in its subgraphs' view). */
export function definedNames(graph: onnx.IGraphProto): Set<string> {
  const names = new Set<string>();
  for (const tensor of graph.initializer ?? []) names.add(tensor.name ?? '');
  for (const sparse of graph.sparseInitializer ?? []) names.add(sparse.values?.name ?? '');
  for (const input of graph.input ?? []) names.add(input.name ?? '');
  for (const node of graph.node ?? []) for (const output of node.output ?? []) names.add(output);
  return names;
}

/** Whether a graph output (of `scope`'s graph) is `name`. */
export function isGraphOutput(name: string, scope: Scope): boolean {
  return (scope.graph.output ?? []).some((output) => output.name === name);
}

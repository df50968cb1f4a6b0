/**
 * Topological order of a graph's nodes. ONNX asks that a node come after the nodes whose
 * outputs it reads; onnxruntime sorts a graph itself, but the ONNX checker refuses one out
 * of order, and some fp16 converters write such graphs. LayerLens reads them as they are
 * (nothing here depends on node order) and writes every graph sorted.
 *
 * The sort is stable: nodes already in order keep their places. A node depends on the
 * producers of its inputs in the same graph and of the outer names its subgraphs read.
 */
import type { onnx } from 'onnx-proto';
import { MAX_SUBGRAPH_DEPTH } from '../../shared/limits';
import { ModelFileError } from '../formats/modelFileError';
import { allScopes, definedNames } from './scopes';

/** Names read by a node: its inputs and what its subgraphs (at any depth) read from outside. */
function namesRead(node: onnx.INodeProto): Set<string> {
  const read = new Set<string>(node.input ?? []);
  const visitGraph = (graph: onnx.IGraphProto, depth: number): void => {
    // allScopes (sortGraphs' walk) has refused deeper nesting already.
    if (depth > MAX_SUBGRAPH_DEPTH) return;
    const own = definedNames(graph);
    for (const inner of graph.node ?? []) {
      for (const name of inner.input ?? []) if (!own.has(name)) read.add(name);
      for (const attribute of inner.attribute ?? []) {
        if (attribute.g) visitGraph(attribute.g, depth + 1);
        for (const g of attribute.graphs ?? []) visitGraph(g, depth + 1);
      }
    }
    for (const output of graph.output ?? [])
      if (!own.has(output.name ?? '')) read.add(output.name ?? '');
  };
  for (const attribute of node.attribute ?? []) {
    if (attribute.g) visitGraph(attribute.g, 1);
    for (const g of attribute.graphs ?? []) visitGraph(g, 1);
  }
  read.delete('');
  return read;
}

/**
 * The nodes of `graph` in a stable topological order; `undefined` when they already are.
 * Throws when the nodes form a cycle (which no valid graph has).
 */
export function topologicalOrder(
  graph: onnx.IGraphProto,
  modelPath: string,
  where: string,
): onnx.INodeProto[] | undefined {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((node, index) => {
    for (const output of node.output ?? [])
      if (output && !producer.has(output)) producer.set(output, index);
  });
  const dependents: number[][] = nodes.map(() => []);
  const waiting = new Int32Array(nodes.length);
  let sorted = true;
  nodes.forEach((node, index) => {
    const before = new Set<number>();
    for (const name of namesRead(node)) {
      const from = producer.get(name);
      if (from === undefined || from === index || before.has(from)) continue;
      before.add(from);
      if (from > index) sorted = false;
      dependents[from]!.push(index);
      waiting[index]!++;
    }
  });
  if (sorted) return undefined;
  // Kahn's algorithm, always taking the ready node that came first in the file.
  const ready: number[] = [];
  const push = (index: number): void => {
    let at = ready.length;
    ready.push(index);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (ready[parent]! <= index) break;
      ready[at] = ready[parent]!;
      ready[parent] = index;
      at = parent;
    }
  };
  const pop = (): number => {
    const top = ready[0]!;
    const last = ready.pop()!;
    if (ready.length > 0) {
      ready[0] = last;
      let at = 0;
      for (;;) {
        const left = 2 * at + 1;
        const right = left + 1;
        let smallest = at;
        if (left < ready.length && ready[left]! < ready[smallest]!) smallest = left;
        if (right < ready.length && ready[right]! < ready[smallest]!) smallest = right;
        if (smallest === at) break;
        [ready[at], ready[smallest]] = [ready[smallest]!, ready[at]!];
        at = smallest;
      }
    }
    return top;
  };
  waiting.forEach((count, index) => {
    if (count === 0) push(index);
  });
  const order: onnx.INodeProto[] = [];
  while (ready.length > 0) {
    const index = pop();
    order.push(nodes[index]!);
    for (const next of dependents[index]!) if (--waiting[next]! === 0) push(next);
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.find((_, index) => waiting[index]! > 0);
    throw new ModelFileError(
      modelPath,
      `graph '${where || 'main'}' has a cycle (node '${stuck?.name || stuck?.opType || '?'}' depends on its own output)`,
    );
  }
  return order;
}

/** Sort every graph of the model in place; returns how many graphs were out of order. */
export function sortGraphs(model: onnx.IModelProto, modelPath: string): number {
  let reordered = 0;
  for (const scope of allScopes(model, modelPath)) {
    const order = topologicalOrder(scope.graph, modelPath, scope.path);
    if (order) {
      scope.graph.node = order;
      reordered++;
    }
  }
  return reordered;
}

/**
 * The graph view of a decoded ONNX model: one node per operator (Constant nodes become
 * badges on their readers, as initializers do), edges between producers and readers with
 * the shapes the model declares, name scopes (`/encoder/layer.3/attention/MatMul`) as
 * nested groups, and every If/Loop/Scan node as a group holding one group per subgraph.
 */
import type { onnx } from 'onnx-proto';
import {
  ROOT_GROUP,
  type GraphEdge,
  type GraphGroup,
  type GraphNode,
  type ModelGraph,
} from '../../shared/graph';
import {
  MAX_GRAPH_EDGES,
  MAX_GRAPH_NODES,
  MAX_GROUP_DEPTH,
  MAX_SUBGRAPH_DEPTH,
} from '../../shared/limits';
import { readValueInfo } from '../formats/onnx';
import { ModelFileError } from '../formats/modelFileError';
import type { OnnxModel } from '../onnx/model';
import { nodeLabel, subgraphsOf, type Scope } from '../onnx/scopes';

/** What one graph (main or subgraph) sees: its own names, then its enclosing graph's. */
interface GraphFrame {
  readonly outer: GraphFrame | undefined;
  /** Value name → the node that produces it. */
  readonly producers: Map<string, number>;
  /** Value name → the stored tensor (initializer or Constant value). */
  readonly stored: Map<string, number>;
  /** Value name → its declared shape. */
  readonly shapes: Map<string, string>;
}

function lookup<T>(
  frame: GraphFrame | undefined,
  pick: (f: GraphFrame) => Map<string, T>,
  name: string,
): T | undefined {
  for (let f = frame; f; f = f.outer) {
    const found = pick(f).get(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

function shapeText(info: onnx.IValueInfoProto): string | null {
  const { shape } = readValueInfo(info);
  if (!shape) return null;
  return shape.length === 0 ? 'scalar' : shape.map((d) => (d === null ? '?' : String(d))).join('×');
}

/**
 * The scope parts of a node name: `/encoder/layer.3/attention/MatMul` → encoder, layer.3,
 * attention (the last part is the node's own name). Names without `/` have no scope.
 */
export function scopeParts(name: string): string[] {
  const parts = name.split('/').filter((part) => part !== '');
  parts.pop();
  if (parts.length > MAX_GROUP_DEPTH) {
    const kept = parts.slice(0, MAX_GROUP_DEPTH - 1);
    kept.push(parts.slice(MAX_GROUP_DEPTH - 1).join('/'));
    return kept;
  }
  return parts;
}

export function buildOnnxGraph(model: OnnxModel, modelPath: string): ModelGraph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const groups: GraphGroup[] = [{ id: ROOT_GROUP, parent: -1, label: '', path: '', kind: 'root' }];
  /** Child groups of a group by label, so that nodes with one scope share one group. */
  const childGroups = new Map<number, Map<string, number>>();

  const tooMany = (what: string, limit: number): never => {
    throw new ModelFileError(modelPath, `the graph has more than ${limit} ${what}`);
  };
  const addGroup = (group: Omit<GraphGroup, 'id'>): number => {
    const id = groups.length;
    if (id >= MAX_GRAPH_NODES) tooMany('nodes and groups', MAX_GRAPH_NODES);
    groups.push({ ...group, id });
    return id;
  };
  const scopeGroup = (base: number, parts: readonly string[]): number => {
    let group = base;
    for (const part of parts) {
      let children = childGroups.get(group);
      if (!children) childGroups.set(group, (children = new Map()));
      let child = children.get(part);
      if (child === undefined) {
        const parentPath = groups[group]!.path;
        child = addGroup({
          parent: group,
          label: part,
          path: `${parentPath}/${part}`,
          kind: 'scope',
        });
        children.set(part, child);
      }
      group = child;
    }
    return group;
  };
  const addNode = (node: Omit<GraphNode, 'id'>): number => {
    const id = nodes.length;
    if (id >= MAX_GRAPH_NODES) tooMany('nodes', MAX_GRAPH_NODES);
    nodes.push({ ...node, id });
    return id;
  };

  // Stored tensors by graph, and the Constant nodes that hold them (not drawn as nodes).
  const storedByGraph = new Map<onnx.IGraphProto, Map<string, number>>();
  const constantNodes = new Set<onnx.INodeProto>();
  for (const slot of model.slots) {
    let stored = storedByGraph.get(slot.scope.graph);
    if (!stored) storedByGraph.set(slot.scope.graph, (stored = new Map()));
    stored.set(slot.name, slot.index);
    if (slot.node) constantNodes.add(slot.node);
  }

  /** Readers waiting for their edges, resolved once every producer of their graph is known. */
  const pendingReads: { frame: GraphFrame; node: number; names: readonly string[] }[] = [];

  const visit = (scope: Scope, frameOuter: GraphFrame | undefined, base: number): void => {
    if (scope.depth > MAX_SUBGRAPH_DEPTH) {
      throw new ModelFileError(
        modelPath,
        `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} levels deep (at ${scope.path})`,
      );
    }
    const graph = scope.graph;
    const frame: GraphFrame = {
      outer: frameOuter,
      producers: new Map(),
      stored: storedByGraph.get(graph) ?? new Map(),
      shapes: new Map(),
    };
    for (const info of [
      ...(graph.input ?? []),
      ...(graph.valueInfo ?? []),
      ...(graph.output ?? []),
    ]) {
      const shape = shapeText(info);
      if (info.name && shape !== null) frame.shapes.set(info.name, shape);
    }
    // The graph's inputs that are not stored tensors: Input nodes.
    for (const input of graph.input ?? []) {
      const name = input.name ?? '';
      if (frame.stored.has(name)) continue;
      const id = addNode({
        name,
        op: 'Input',
        group: base,
        inputs: [],
        outputs: [name],
        tensors: [],
      });
      frame.producers.set(name, id);
    }
    (graph.node ?? []).forEach((node, nodeIndex) => {
      if (constantNodes.has(node)) return;
      const name = nodeLabel(node, nodeIndex);
      const group = scopeGroup(base, scopeParts(node.name ?? ''));
      const inputs = (node.input ?? []).filter((input) => input !== '');
      const outputs = (node.output ?? []).filter((output) => output !== '');
      const tensors: number[] = [];
      const flowing: string[] = [];
      for (const input of inputs) {
        const tensor = lookup(frame, (f) => f.stored, input);
        if (tensor !== undefined && lookup(frame, (f) => f.producers, input) === undefined)
          tensors.push(tensor);
        else flowing.push(input);
      }
      const subgraphs = subgraphsOf(node, nodeIndex, scope);
      const id = nodes.length;
      let expands: number | undefined;
      if (subgraphs.length > 0) {
        expands = addGroup({
          parent: group,
          label: name,
          path: `${groups[group]!.path}/${name}`,
          kind: 'node',
          node: id,
        });
      }
      addNode({ name, op: node.opType ?? '?', group, expands, inputs, outputs, tensors });
      for (const output of outputs) frame.producers.set(output, id);
      pendingReads.push({ frame, node: id, names: flowing });
      for (const sub of subgraphs) {
        const attribute = sub.path.slice(sub.path.lastIndexOf('/') + 1);
        const subGroup = addGroup({
          parent: expands!,
          label: attribute,
          path: `${groups[expands!]!.path}/${attribute}`,
          kind: 'subgraph',
        });
        visit({ graph: sub.graph, path: sub.path, depth: scope.depth + 1 }, frame, subGroup);
      }
    });
    // The graph's outputs: Output nodes reading them.
    for (const output of graph.output ?? []) {
      const name = output.name ?? '';
      const id = addNode({
        name,
        op: 'Output',
        group: base,
        inputs: [name],
        outputs: [],
        tensors: [],
      });
      pendingReads.push({ frame, node: id, names: [name] });
    }
  };
  visit(model.main, undefined, ROOT_GROUP);

  for (const { frame, node, names } of pendingReads) {
    for (const name of names) {
      const from = lookup(frame, (f) => f.producers, name);
      if (from === undefined || from === node) continue;
      if (edges.length >= MAX_GRAPH_EDGES) tooMany('edges', MAX_GRAPH_EDGES);
      edges.push({
        from,
        to: node,
        tensor: name,
        shape: lookup(frame, (f) => f.shapes, name) ?? null,
      });
    }
  }
  return { nodes, edges, groups };
}

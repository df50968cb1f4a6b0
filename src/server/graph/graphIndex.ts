/**
 * The graph view's side of a ModelGraph, kept by the server so that the view fetches only
 * what it opens: each group's items (nodes, and groups that stand for several nodes) with
 * their node counts and stored tensors, the edges between them, and searches over every node.
 *
 * A scope group with a single child is left out (its child takes its place), so a name like
 * `/conv/Conv` does not wrap one node in one box. An edge between nodes in different groups
 * is drawn once, between the two children of their innermost common group.
 */
import {
  ROOT_GROUP,
  type GraphGroupContents,
  type GraphItem,
  type GraphItemEdge,
  type GraphItemKey,
  type GraphMatches,
  type GraphNode,
  type GraphOverview,
  type GraphQuery,
  type ModelGraph,
} from '../../shared/graph';
import { MAX_GRAPH_MATCHES } from '../../shared/limits';
import { graphOf } from '../formats/registry';
import type { OpenedModel } from '../formats/types';

const nodeKey = (id: number): GraphItemKey => `n${id}`;
const groupKey = (id: number): GraphItemKey => `g${id}`;
const isGroup = (key: GraphItemKey): boolean => key.startsWith('g');
const idOf = (key: GraphItemKey): number => Number(key.slice(1));

export class GraphIndex {
  private readonly childrenOf = new Map<number, GraphItemKey[]>();
  private readonly parentOf = new Map<GraphItemKey, number>();
  private readonly edgesOf = new Map<number, GraphItemEdge[]>();
  private readonly contentsCache = new Map<number, GraphGroupContents>();

  constructor(readonly graph: ModelGraph) {
    const { nodes, groups } = graph;
    const raw = new Map<number, GraphItemKey[]>();
    const push = (group: number, key: GraphItemKey) => {
      const list = raw.get(group);
      if (list) list.push(key);
      else raw.set(group, [key]);
    };
    for (const group of groups) if (group.parent >= 0) push(group.parent, groupKey(group.id));
    for (const node of nodes) if (node.expands === undefined) push(node.group, nodeKey(node.id));
    // Parents have smaller ids than their children: resolve the innermost groups first.
    const replaced = new Map<number, GraphItemKey>();
    for (let id = groups.length - 1; id >= 0; id--) {
      const children = (raw.get(id) ?? []).map((key) =>
        isGroup(key) ? (replaced.get(idOf(key)) ?? key) : key,
      );
      if (groups[id]!.kind === 'scope' && children.length === 1) replaced.set(id, children[0]!);
      else this.childrenOf.set(id, children);
    }
    for (const [group, children] of this.childrenOf)
      for (const child of children) this.parentOf.set(child, group);

    const byPair = new Map<string, { edge: GraphItemEdge; group: number }>();
    for (const edge of graph.edges) {
      const a = this.chain(this.itemOfNode(nodes[edge.from]!));
      const b = this.chain(this.itemOfNode(nodes[edge.to]!));
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      if (i === 0 || i >= a.length || i >= b.length) continue;
      const pair = `${a[i]}>${b[i]}`;
      const known = byPair.get(pair);
      if (known) {
        byPair.set(pair, { ...known, edge: { ...known.edge, count: known.edge.count + 1 } });
      } else {
        byPair.set(pair, {
          group: idOf(a[i - 1]!),
          edge: { from: a[i]!, to: b[i]!, tensor: edge.tensor, shape: edge.shape, count: 1 },
        });
      }
    }
    for (const { edge, group } of byPair.values()) {
      const list = this.edgesOf.get(group);
      if (list) list.push(edge);
      else this.edgesOf.set(group, [edge]);
    }
  }

  /** The top level, with the graph's totals: the view's first request. */
  overview(): GraphOverview {
    return {
      ...this.contents(ROOT_GROUP),
      nodeCount: this.graph.nodes.length,
      edgeCount: this.graph.edges.length,
    };
  }

  /** What opening a group shows: its items and the edges between them. */
  contents(group: number): GraphGroupContents {
    const cached = this.contentsCache.get(group);
    if (cached) return cached;
    const children = this.childrenOf.get(group);
    if (!Number.isInteger(group) || !children) {
      throw new Error(
        `the graph has no group ${group} that opens (groups: 0 to ${this.graph.groups.length - 1})`,
      );
    }
    const contents: GraphGroupContents = {
      group,
      items: children.map((key) => this.item(key)),
      edges: this.edgesOf.get(group) ?? [],
    };
    this.contentsCache.set(group, contents);
    return contents;
  }

  /** The nodes a query finds, each with the groups to open around it. */
  find(query: GraphQuery): GraphMatches {
    const ids = 'tensor' in query ? this.readersOf(query.tensor) : this.search(query.text);
    return {
      total: ids.length,
      chains: ids
        .slice(0, MAX_GRAPH_MATCHES)
        .map((id) => this.chain(this.itemOfNode(this.graph.nodes[id]!))),
    };
  }

  /** A node's item: itself, or the group it stands for (a node with subgraphs). */
  private itemOfNode(node: GraphNode): GraphItemKey {
    return node.expands === undefined ? nodeKey(node.id) : groupKey(node.expands);
  }

  /** The item's enclosing groups' keys from the root down, then the item. */
  private chain(key: GraphItemKey): GraphItemKey[] {
    const chain = [key];
    for (
      let group = this.parentOf.get(key);
      group !== undefined;
      group = this.parentOf.get(groupKey(group))
    )
      chain.unshift(groupKey(group));
    return chain;
  }

  private item(key: GraphItemKey): GraphItem {
    const { nodes, groups } = this.graph;
    if (!isGroup(key)) {
      const node = nodes[idOf(key)]!;
      return {
        key,
        label: node.name,
        op: node.op,
        nodeCount: 1,
        childCount: 0,
        tensors: [...new Set(node.tensors)],
      };
    }
    const group = groups[idOf(key)]!;
    const below = this.nodesBelow(group.id);
    const tensors = new Set<number>();
    for (const id of below) for (const tensor of nodes[id]!.tensors) tensors.add(tensor);
    return {
      key,
      label: group.label || 'graph',
      op: group.node === undefined ? null : nodes[group.node]!.op,
      nodeCount: below.length,
      childCount: this.childrenOf.get(group.id)?.length ?? 0,
      tensors: [...tensors],
    };
  }

  /** Every node a group stands for (the node it stands for included), without recursion. */
  private nodesBelow(group: number): number[] {
    const result: number[] = [];
    const stack = [group];
    while (stack.length > 0) {
      const id = stack.pop()!;
      const node = this.graph.groups[id]!.node;
      if (node !== undefined) result.push(node);
      for (const child of this.childrenOf.get(id) ?? []) {
        if (isGroup(child)) stack.push(idOf(child));
        else result.push(idOf(child));
      }
    }
    return result;
  }

  /** Nodes that hold the stored tensor `index` as a badge (read it), in graph order. */
  private readersOf(index: number): number[] {
    return this.graph.nodes.filter((node) => node.tensors.includes(index)).map((node) => node.id);
  }

  /** Nodes whose name, operator, or an input or output name contains `text` (any case). */
  private search(text: string): number[] {
    const needle = text.trim().toLowerCase();
    if (!needle) return [];
    return this.graph.nodes
      .filter(
        (node) =>
          node.name.toLowerCase().includes(needle) ||
          node.op.toLowerCase() === needle ||
          node.inputs.some((name) => name.toLowerCase().includes(needle)) ||
          node.outputs.some((name) => name.toLowerCase().includes(needle)),
      )
      .map((node) => node.id);
  }
}

/** Each opened model's graph index, built on its first graph request. */
const indices = new WeakMap<OpenedModel, Promise<GraphIndex>>();

/** The graph index of an opened model (a ModelFileError for formats without a graph). */
export function graphIndexOf(model: OpenedModel): Promise<GraphIndex> {
  let index = indices.get(model);
  if (!index) {
    index = graphOf(model).then((graph) => new GraphIndex(graph));
    // A failure is not kept: the next request tries again.
    index.catch(() => indices.delete(model));
    indices.set(model, index);
  }
  return index;
}

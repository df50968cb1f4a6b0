/**
 * What the graph view shows of a ModelGraph: items (nodes, and groups that stand for
 * several nodes), each group's children, and each group's edges between its children.
 * A scope group with a single child is left out (its child takes its place), so a name
 * like `/conv/Conv` does not wrap one node in one box. An edge between nodes in different
 * groups is drawn once, between the two children of their innermost common group.
 */
import type { GraphNode, ModelGraph } from '../../../src/shared/graph';

/** `n12` for node 12, `g5` for group 5. */
export type ItemKey = string;

export const nodeKey = (id: number): ItemKey => `n${id}`;
export const groupKey = (id: number): ItemKey => `g${id}`;

export interface LiftedEdge {
  readonly from: ItemKey;
  readonly to: ItemKey;
  /** The first value that flows (its name and shape), and how many edges this one stands for. */
  readonly tensor: string;
  readonly shape: string | null;
  readonly count: number;
}

export class GraphViewModel {
  private readonly childrenOf = new Map<number, ItemKey[]>();
  private readonly parentOf = new Map<ItemKey, number>();
  private readonly edgesOf = new Map<number, LiftedEdge[]>();
  private readonly nodesBelowCache = new Map<ItemKey, readonly number[]>();

  constructor(readonly graph: ModelGraph) {
    const { nodes, groups } = graph;
    const raw = new Map<number, ItemKey[]>();
    const push = (group: number, key: ItemKey) => {
      const list = raw.get(group);
      if (list) list.push(key);
      else raw.set(group, [key]);
    };
    for (const group of groups) if (group.parent >= 0) push(group.parent, groupKey(group.id));
    for (const node of nodes) if (node.expands === undefined) push(node.group, nodeKey(node.id));
    // Parents have smaller ids than their children: resolve the innermost groups first.
    const replaced = new Map<number, ItemKey>();
    for (let id = groups.length - 1; id >= 0; id--) {
      const children = (raw.get(id) ?? []).map((key) =>
        key.startsWith('g') ? (replaced.get(Number(key.slice(1))) ?? key) : key,
      );
      if (groups[id]!.kind === 'scope' && children.length === 1) replaced.set(id, children[0]!);
      else this.childrenOf.set(id, children);
    }
    for (const [group, children] of this.childrenOf)
      for (const child of children) this.parentOf.set(child, group);

    const byPair = new Map<string, { edge: LiftedEdge; group: number }>();
    for (const edge of graph.edges) {
      const a = this.chain(this.itemOfNode(nodes[edge.from]!));
      const b = this.chain(this.itemOfNode(nodes[edge.to]!));
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      if (i === 0 || i >= a.length || i >= b.length) continue;
      const group = Number(a[i - 1]!.slice(1));
      const pair = `${a[i]}>${b[i]}`;
      const known = byPair.get(pair);
      if (known) {
        byPair.set(pair, { ...known, edge: { ...known.edge, count: known.edge.count + 1 } });
      } else {
        byPair.set(pair, {
          group,
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

  /** A node's item: itself, or the group it stands for (a node with subgraphs). */
  itemOfNode(node: GraphNode): ItemKey {
    return node.expands === undefined ? nodeKey(node.id) : groupKey(node.expands);
  }

  children(group: number): readonly ItemKey[] {
    return this.childrenOf.get(group) ?? [];
  }

  edges(group: number): readonly LiftedEdge[] {
    return this.edgesOf.get(group) ?? [];
  }

  /** The group an item is drawn in (undefined for the root). */
  parent(key: ItemKey): number | undefined {
    return this.parentOf.get(key);
  }

  /** The item's ancestors' keys from the root down, then the item. */
  chain(key: ItemKey): ItemKey[] {
    const chain = [key];
    for (
      let group = this.parentOf.get(key);
      group !== undefined;
      group = this.parentOf.get(groupKey(group))
    )
      chain.unshift(groupKey(group));
    return chain;
  }

  isGroup(key: ItemKey): boolean {
    return key.startsWith('g');
  }

  id(key: ItemKey): number {
    return Number(key.slice(1));
  }

  /** The node ids an item stands for (a group: every node below it, the one it stands for included). */
  nodesBelow(key: ItemKey): readonly number[] {
    const cached = this.nodesBelowCache.get(key);
    if (cached) return cached;
    let result: number[];
    if (!this.isGroup(key)) result = [this.id(key)];
    else {
      const group = this.graph.groups[this.id(key)]!;
      result = group.node !== undefined ? [group.node] : [];
      for (const child of this.children(group.id)) result.push(...this.nodesBelow(child));
    }
    this.nodesBelowCache.set(key, result);
    return result;
  }

  /** The stored tensors (indices) an item's nodes read. */
  tensorsOf(key: ItemKey): number[] {
    return this.nodesBelow(key).flatMap((id) => this.graph.nodes[id]!.tensors);
  }

  label(key: ItemKey): string {
    if (!this.isGroup(key)) return this.graph.nodes[this.id(key)]!.name;
    const group = this.graph.groups[this.id(key)]!;
    return group.label || 'graph';
  }

  /** The operator of a node, or of the node a group stands for; null for scope groups. */
  op(key: ItemKey): string | null {
    if (!this.isGroup(key)) return this.graph.nodes[this.id(key)]!.op;
    const node = this.graph.groups[this.id(key)]!.node;
    return node === undefined ? null : this.graph.nodes[node]!.op;
  }

  /** Nodes that hold the stored tensor `index` as a badge (read it), in graph order. */
  readersOf(index: number): number[] {
    return this.graph.nodes.filter((node) => node.tensors.includes(index)).map((node) => node.id);
  }

  /** Nodes whose name, operator, or an input or output name contains `query` (any case). */
  search(query: string): number[] {
    const needle = query.trim().toLowerCase();
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

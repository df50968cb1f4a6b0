/**
 * What the graph view knows of a model's graph: the groups it has opened so far, each with
 * its items (nodes, and groups that stand for several nodes) and the edges between them, as
 * the server sent them (src/server/graph/graphIndex.ts decides the items and edges). A group
 * that was never opened is one item: its label, node count and stored tensors.
 */
import {
  ROOT_GROUP,
  type GraphGroupContents,
  type GraphItem,
  type GraphItemEdge,
  type GraphItemKey,
} from '../../../src/shared/graph';

export type ItemKey = GraphItemKey;
export type LiftedEdge = GraphItemEdge;

export const groupKey = (id: number): ItemKey => `g${id}`;

export class GraphViewModel {
  private readonly items = new Map<ItemKey, GraphItem>();
  private readonly childrenOf = new Map<number, readonly ItemKey[]>();
  private readonly edgesOf = new Map<number, readonly LiftedEdge[]>();
  private readonly parentOf = new Map<ItemKey, number>();

  constructor(top: GraphGroupContents) {
    this.add(top);
  }

  /** The contents of a group arrived. */
  add(contents: GraphGroupContents): void {
    const keys = contents.items.map((item) => item.key);
    for (const item of contents.items) {
      this.items.set(item.key, item);
      this.parentOf.set(item.key, contents.group);
    }
    this.childrenOf.set(contents.group, keys);
    this.edgesOf.set(contents.group, contents.edges);
  }

  /** Whether a group's contents are here. */
  loaded(group: number): boolean {
    return this.childrenOf.has(group);
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

  /** The item's ancestors' keys from the root down, then the item (as far as they are known). */
  chain(key: ItemKey): ItemKey[] {
    const chain = [key];
    for (
      let group = this.parentOf.get(key);
      group !== undefined;
      group = group === ROOT_GROUP ? undefined : this.parentOf.get(groupKey(group))
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

  /** How many nodes an item stands for. */
  nodeCount(key: ItemKey): number {
    return this.items.get(key)?.nodeCount ?? 0;
  }

  /** The stored tensors (indices) an item's nodes read. */
  tensorsOf(key: ItemKey): readonly number[] {
    return this.items.get(key)?.tensors ?? [];
  }

  label(key: ItemKey): string {
    return this.items.get(key)?.label ?? (key === groupKey(ROOT_GROUP) ? 'graph' : key);
  }

  /** The operator of a node, or of the node a group stands for; null for scope groups. */
  op(key: ItemKey): string | null {
    return this.items.get(key)?.op ?? null;
  }
}

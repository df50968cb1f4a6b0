/**
 * The structure views of a model: the operator graph of formats that store one (nodes,
 * edges, name-scope groups, subgraphs) and the module tree every format has (groups of
 * dotted tensor names with their bytes and parameters), as flat arrays linked by index.
 * The whole graph stays on the server: the graph view receives one group's items at a
 * time (GraphGroupContents), the top level first.
 */

/** Group 0 of a graph is the graph itself; the others nest below it. */
export const ROOT_GROUP = 0;

export interface GraphGroup {
  readonly id: number;
  /** The enclosing group; -1 for the root. */
  readonly parent: number;
  /** The last part of the path: a name scope (`attention`), a subgraph (`then_branch`), a node. */
  readonly label: string;
  /** The whole path (`/encoder/layer.3/attention`, `If_0/then_branch`). */
  readonly path: string;
  /**
   * `scope`: nodes sharing a name prefix; `subgraph`: one graph attribute of a node;
   * `node`: a node with subgraphs (If/Loop/Scan), whose children are its subgraphs.
   */
  readonly kind: 'root' | 'scope' | 'subgraph' | 'node';
  /** For `node` groups: the node the group stands for. */
  readonly node?: number;
}

export interface GraphNode {
  readonly id: number;
  readonly name: string;
  /** Operator type; `Input` and `Output` for the graph's inputs and outputs. */
  readonly op: string;
  /** The group that holds it. */
  readonly group: number;
  /** Its `node` group when the node has subgraphs (it is shown as that group). */
  readonly expands?: number;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Stored tensors it reads (initializers, Constant values): its badges, as tensor indices. */
  readonly tensors: readonly number[];
}

export interface GraphEdge {
  readonly from: number;
  readonly to: number;
  /** The value that flows. */
  readonly tensor: string;
  /** Its shape (`1×64×?`), where the model declares it; null otherwise. */
  readonly shape: string | null;
}

export interface ModelGraph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly groups: readonly GraphGroup[];
}

/** An item of the graph view: `n12` for node 12, `g5` for group 5 (`g0` is the graph). */
export type GraphItemKey = string;

/**
 * What the graph view draws for a node, or for a group that stands for several nodes (a
 * name scope, a subgraph, a node with subgraphs). A scope group with a single child is left
 * out of the view: its child takes its place.
 */
export interface GraphItem {
  readonly key: GraphItemKey;
  /** A node's whole name; a group's label (the last part of its path). */
  readonly label: string;
  /** The operator of a node, or of the node a group stands for; null for other groups. */
  readonly op: string | null;
  /** The nodes it stands for (1 for a node). */
  readonly nodeCount: number;
  /** Items inside a group (0 for a node): what opening it lays out. */
  readonly childCount: number;
  /**
   * The stored tensors its nodes read, each once (a node's badges): the overlays aggregate
   * their rows, so a closed group is coloured without its contents.
   */
  readonly tensors: readonly number[];
}

/**
 * An edge between two items of one group: the graph's edges between nodes in different
 * groups are drawn once, between the two children of their innermost common group.
 */
export interface GraphItemEdge {
  readonly from: GraphItemKey;
  readonly to: GraphItemKey;
  /** The first value that flows (its name and shape), and how many edges this one stands for. */
  readonly tensor: string;
  readonly shape: string | null;
  readonly count: number;
}

/** The items of one group and the edges between them: what opening the group lays out. */
export interface GraphGroupContents {
  readonly group: number;
  readonly items: readonly GraphItem[];
  readonly edges: readonly GraphItemEdge[];
}

/** The first answer for a graph: its top level (group 0's contents) and its totals. */
export interface GraphOverview extends GraphGroupContents {
  readonly nodeCount: number;
  readonly edgeCount: number;
}

/**
 * A search of the graph: nodes whose name, operator, or an input or output name holds
 * `text` (any case), or the nodes that read the stored tensor `tensor` (its badges).
 */
export type GraphQuery = { readonly text: string } | { readonly tensor: number };

export interface GraphMatches {
  /** How many nodes match (the chains stop at MAX_GRAPH_MATCHES). */
  readonly total: number;
  /** Per match, in graph order: the keys of the groups around it from the top down, then its own. */
  readonly chains: readonly (readonly GraphItemKey[])[];
}

/** One group of the module tree: a dotted name prefix, or a tensor (a leaf). */
export interface ModuleGroup {
  readonly id: number;
  /** -1 for the root (the whole model). */
  readonly parent: number;
  readonly label: string;
  /** The dotted prefix (`model.layers.3.mlp`); the tensor's name for a leaf. */
  readonly path: string;
  /** For a leaf: the tensor's index in the model's tensor list. */
  readonly tensor?: number;
  /** Totals over every tensor below. */
  readonly bytes: number;
  readonly params: number;
  readonly tensorCount: number;
}

export interface ModuleTree {
  /** Group 0 is the root; parents come before their children. */
  readonly groups: readonly ModuleGroup[];
}

/** The graph view's layout worker bundle, built beside the webview's main.js. */
export const LAYOUT_WORKER_BUNDLE = 'graphLayout.js';

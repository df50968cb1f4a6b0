/**
 * The structure views of a model: the operator graph of formats that store one (nodes,
 * edges, name-scope groups, subgraphs) and the module tree every format has (groups of
 * dotted tensor names with their bytes and parameters). Both are flat arrays linked by
 * index, so that a 20,000-node graph crosses the LSP and webview channels as plain JSON.
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

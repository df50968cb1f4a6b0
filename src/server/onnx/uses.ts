/**
 * Which nodes read a name: within its graph and in the subgraphs that read it from the
 * outer scope without redefining it, in walk order (scopes.ts). `collectUses` is the one
 * walk; OnnxModel (model.ts) indexes it once for a model nobody edits and runs it per
 * question on a copy being edited.
 */
import type { onnx } from 'onnx-proto';
import { definedNames, walkScopes, type Scope } from './scopes';

/** A node reading a name, with the position of that name among its inputs. */
export interface Use {
  readonly scope: Scope;
  readonly node: onnx.INodeProto;
  /** The node's position in its graph when the use was found. */
  readonly nodeIndex: number;
  readonly inputIndex: number;
}

/** Finds the uses of a name read in a scope. */
export type UseLookup = (name: string, scope: Scope) => readonly Use[];

/**
 * The uses, by name, of every name `wanted` accepts that `start` reads (a subgraph's
 * reads count where the subgraph does not define the name itself).
 */
export function collectUses(
  start: Scope,
  modelPath: string,
  wanted: (name: string) => boolean = () => true,
): Map<string, Use[]> {
  const uses = new Map<string, Use[]>();
  // Per graph: the names it and the graphs between it and `start` define (they shadow outer names).
  const shadows = new Map<onnx.IGraphProto, { defined: Set<string>; parent?: onnx.IGraphProto }>();
  const shadowed = (name: string, graph: onnx.IGraphProto): boolean => {
    for (let at = shadows.get(graph); at; at = at.parent ? shadows.get(at.parent) : undefined) {
      if (at.defined.has(name)) return true;
    }
    return false;
  };
  walkScopes(start, modelPath, {
    enter(subgraph, parent) {
      shadows.set(subgraph.graph, {
        defined: definedNames(subgraph.graph),
        ...(parent === start ? {} : { parent: parent.graph }),
      });
      return true;
    },
    node(scope, node, nodeIndex) {
      (node.input ?? []).forEach((input, inputIndex) => {
        if (!wanted(input) || shadowed(input, scope.graph)) return;
        let list = uses.get(input);
        if (!list) uses.set(input, (list = []));
        list.push({ scope, node, nodeIndex, inputIndex });
      });
    },
  });
  return uses;
}

/** Every node reading `name` in `scope`, walked afresh (for a graph being edited). */
export function usesOf(name: string, scope: Scope, modelPath = ''): Use[] {
  return collectUses(scope, modelPath, (input) => input === name).get(name) ?? [];
}

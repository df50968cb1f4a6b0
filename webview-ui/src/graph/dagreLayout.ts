/**
 * One dagre run: a group's children, or one band of a large group's (bandedLayout.ts),
 * laid out top to bottom. DOM-free, so that the layout worker and plain Node tests run the
 * same code on the real dagre.
 *
 * A band is laid out the cheaper way dagre offers: ranks by a tight tree without network
 * simplex's balancing (on generated 1,000-box groups a third less time than network simplex,
 * and narrower than longest-path, which pushed wide graphs to twice the width), and, through
 * dagre's `customOrder` hook, the first ordering only (a depth-first walk per rank, as dagre
 * starts its own): that skips the crossing reduction and the per-rank layer graphs dagre
 * builds for it even when its sweeps are off.
 * Positions and edge routes stay dagre's.
 */
import type * as DagreModule from '@dagrejs/dagre' with { 'resolution-mode': 'import' };
import type { LayoutRequest, LayoutResult } from './layoutProtocol';

export type Dagre = typeof DagreModule;
/** The graph dagre hands its `customOrder` hook: ranked, long edges cut by dummy nodes. */
type RankedGraph = Parameters<NonNullable<DagreModule.LayoutOptions['customOrder']>>[0];
type Point = [number, number];

export const RANK_SEP = 36;

/**
 * Orders each rank by a depth-first walk from the nodes of the lowest ranks down their
 * successors (iterative: a band's chains are long, a worker's stack small).
 */
function firstOrder(graph: RankedGraph): void {
  const filled: number[] = [];
  const seen = new Set<string>();
  const starts = graph
    .nodes()
    .sort((a: string, b: string) => graph.node(a).rank! - graph.node(b).rank!);
  for (const start of starts) {
    const stack = [start];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const node = graph.node(v);
      node.order = filled[node.rank!] ?? 0;
      filled[node.rank!] = node.order + 1;
      const next = graph.successors(v) ?? [];
      for (let i = next.length - 1; i >= 0; i--) if (!seen.has(next[i]!)) stack.push(next[i]!);
    }
  }
}

export function dagreLayout(dagre: Dagre, request: LayoutRequest): LayoutResult {
  const started = performance.now();
  const { boxes, edges } = request;
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({
    rankdir: 'TB',
    nodesep: 24,
    ranksep: RANK_SEP,
    edgesep: 10,
    marginx: 0,
    marginy: 0,
    ...(request.band ? { ranker: 'tight-tree' } : {}),
  });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const box of boxes) graph.setNode(box.id, { width: box.width, height: box.height });
  edges.forEach((edge, i) => graph.setEdge(edge.from, edge.to, {}, String(i)));
  dagre.layout(graph, request.band ? { customOrder: firstOrder } : {});
  const positions: Record<string, Point> = {};
  for (const box of boxes) {
    const node = graph.node(box.id);
    positions[box.id] = [node.x - box.width / 2, node.y - box.height / 2];
  }
  const routes = edges.map((edge, i) =>
    (graph.edge({ v: edge.from, w: edge.to, name: String(i) })?.points ?? []).map(
      (point: { x: number; y: number }): Point => [point.x, point.y],
    ),
  );
  const { width = 0, height = 0 } = graph.graph();
  return { id: request.id, positions, routes, width, height, ms: performance.now() - started };
}

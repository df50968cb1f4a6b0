/**
 * The graph view's layout worker (its own bundle, dist/webview/graphLayout.js): lays out
 * one group's children top to bottom with dagre, off the webview's main thread.
 */
import type { LayoutRequest, LayoutResult } from './layoutProtocol';

const workerScope = self as unknown as {
  onmessage: ((event: MessageEvent<LayoutRequest>) => void) | null;
  postMessage(message: LayoutResult): void;
};

// dagre ships as an ES module only; 'eager' keeps it in this bundle (a worker started from a
// blob: URL could not load a separate chunk).
const dagreModule = import(/* webpackMode: "eager" */ '@dagrejs/dagre');
type Dagre = Awaited<typeof dagreModule>;

export function layout(dagre: Dagre, request: LayoutRequest): LayoutResult {
  const started = performance.now();
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 36, edgesep: 10, marginx: 0, marginy: 0 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const box of request.boxes) graph.setNode(box.id, { width: box.width, height: box.height });
  request.edges.forEach((edge, i) => graph.setEdge(edge.from, edge.to, {}, String(i)));
  dagre.layout(graph);
  const positions: Record<string, [number, number]> = {};
  for (const box of request.boxes) {
    const node = graph.node(box.id);
    positions[box.id] = [node.x - box.width / 2, node.y - box.height / 2];
  }
  const routes = request.edges.map((edge, i) =>
    (graph.edge({ v: edge.from, w: edge.to, name: String(i) })?.points ?? []).map(
      (point: { x: number; y: number }): [number, number] => [point.x, point.y],
    ),
  );
  const { width = 0, height = 0 } = graph.graph();
  return { id: request.id, positions, routes, width, height, ms: performance.now() - started };
}

workerScope.onmessage = async (event) => {
  try {
    workerScope.postMessage(layout(await dagreModule, event.data));
  } catch (error) {
    workerScope.postMessage({
      id: event.data.id,
      positions: {},
      routes: [],
      width: 0,
      height: 0,
      ms: 0,
      error: error instanceof Error ? error.message : String(error),
    });
  }
};

/**
 * The graph view's layout worker (its own bundle, dist/webview/graphLayout.js): lays out
 * one group's children top to bottom with dagre, off the webview's main thread.
 *
 * dagre walks long chains recursively, and a worker's stack is small: a group of more than
 * MAX_DAGRE_BOXES children is cut, in topological order, into bands of that many, each laid
 * out by dagre and stacked below the previous one; an edge between bands is drawn straight.
 * Those bands get dagre's first ordering only, without its crossing-reduction sweeps: most of
 * the time of a 1,000-box group went to the sweeps, and a band of a long chain has few
 * crossings to remove.
 */
import type { LayoutBox, LayoutRequest, LayoutResult } from './layoutProtocol';

const workerScope = self as unknown as {
  onmessage: ((event: MessageEvent<LayoutRequest>) => void) | null;
  postMessage(message: LayoutResult): void;
};

// dagre ships as an ES module only; 'eager' keeps it in this bundle (a worker started from a
// blob: URL could not load a separate chunk).
const dagreModule = import(/* webpackMode: "eager" */ '@dagrejs/dagre');
type Dagre = Awaited<typeof dagreModule>;

/** Children one dagre run lays out (its recursion stays well inside a worker's stack). */
export const MAX_DAGRE_BOXES = 200;
const RANK_SEP = 36;

type Point = [number, number];
type Edge = LayoutRequest['edges'][number];

function dagreLayout(
  dagre: Dagre,
  boxes: readonly LayoutBox[],
  edges: readonly Edge[],
  sweeps: boolean,
): { positions: Map<string, Point>; routes: Point[][]; width: number; height: number } {
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({
    rankdir: 'TB',
    nodesep: 24,
    ranksep: RANK_SEP,
    edgesep: 10,
    marginx: 0,
    marginy: 0,
  });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const box of boxes) graph.setNode(box.id, { width: box.width, height: box.height });
  edges.forEach((edge, i) => graph.setEdge(edge.from, edge.to, {}, String(i)));
  dagre.layout(graph, { disableOptimalOrderHeuristic: !sweeps });
  const positions = new Map<string, Point>();
  for (const box of boxes) {
    const node = graph.node(box.id);
    positions.set(box.id, [node.x - box.width / 2, node.y - box.height / 2]);
  }
  const routes = edges.map((edge, i) =>
    (graph.edge({ v: edge.from, w: edge.to, name: String(i) })?.points ?? []).map(
      (point: { x: number; y: number }): Point => [point.x, point.y],
    ),
  );
  const { width = 0, height = 0 } = graph.graph();
  return { positions, routes, width, height };
}

/** The boxes in topological order (Kahn's algorithm; a cycle's rest in request order). */
function topologicalOrder(boxes: readonly LayoutBox[], edges: readonly Edge[]): LayoutBox[] {
  const indegree = new Map(boxes.map((box) => [box.id, 0]));
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    if (!indegree.has(edge.from) || !indegree.has(edge.to) || edge.from === edge.to) continue;
    indegree.set(edge.to, indegree.get(edge.to)! + 1);
    const list = next.get(edge.from);
    if (list) list.push(edge.to);
    else next.set(edge.from, [edge.to]);
  }
  const byId = new Map(boxes.map((box) => [box.id, box]));
  const queue = boxes.filter((box) => indegree.get(box.id) === 0).map((box) => box.id);
  const order: LayoutBox[] = [];
  const done = new Set<string>();
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head]!;
    done.add(id);
    order.push(byId.get(id)!);
    for (const to of next.get(id) ?? []) {
      const left = indegree.get(to)! - 1;
      indegree.set(to, left);
      if (left === 0) queue.push(to);
    }
  }
  for (const box of boxes) if (!done.has(box.id)) order.push(box);
  return order;
}

export function layout(dagre: Dagre, request: LayoutRequest): LayoutResult {
  const started = performance.now();
  const { boxes, edges } = request;
  const banded = boxes.length > MAX_DAGRE_BOXES;
  const order = banded ? topologicalOrder(boxes, edges) : [...boxes];
  const bandOf = new Map<string, number>();
  const bands: LayoutBox[][] = [];
  order.forEach((box, i) => {
    const band = Math.floor(i / MAX_DAGRE_BOXES);
    (bands[band] ??= []).push(box);
    bandOf.set(box.id, band);
  });
  const laid = bands.map((band, b) => {
    const inner = edges
      .map((edge, i) => ({ edge, i }))
      .filter(({ edge }) => bandOf.get(edge.from) === b && bandOf.get(edge.to) === b);
    return {
      inner,
      ...dagreLayout(
        dagre,
        band,
        inner.map(({ edge }) => edge),
        !banded,
      ),
    };
  });
  const width = Math.max(0, ...laid.map((band) => band.width));
  const positions: Record<string, Point> = {};
  const routes: Point[][] = edges.map(() => []);
  let top = 0;
  for (const band of laid) {
    const left = (width - band.width) / 2;
    for (const [id, [x, y]] of band.positions) positions[id] = [x + left, y + top];
    band.inner.forEach(({ i }, j) => {
      routes[i] = band.routes[j]!.map(([x, y]): Point => [x + left, y + top]);
    });
    top += band.height + RANK_SEP;
  }
  const size = new Map(boxes.map((box) => [box.id, box]));
  edges.forEach((edge, i) => {
    if (routes[i]!.length > 0) return;
    const from = positions[edge.from];
    const to = positions[edge.to];
    if (!from || !to) return;
    const a = size.get(edge.from)!;
    const b = size.get(edge.to)!;
    routes[i] = [
      [from[0] + a.width / 2, from[1] + a.height],
      [to[0] + b.width / 2, to[1]],
    ];
  });
  return {
    id: request.id,
    positions,
    routes,
    width,
    height: Math.max(0, top - RANK_SEP),
    ms: performance.now() - started,
  };
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

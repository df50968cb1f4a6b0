/**
 * Lays out one group's children, cutting a large group into bands. DOM-free: the view's
 * layout client runs it with its workers, tests with dagre in plain Node.
 *
 * dagre walks long chains recursively, and a worker's stack is small: a group of more than
 * MAX_DAGRE_BOXES children is cut, in topological order, into bands of that many. The bands
 * are laid out independently (the client spreads them over its workers), then stacked top
 * to bottom, each centred; an edge between two bands is drawn straight from the bottom of
 * its source to the top of its target (in a lower band, unless the edge closes a cycle).
 */
import { RANK_SEP } from './dagreLayout';
import type {
  LayoutBox,
  LayoutEdge,
  LayoutInput,
  LayoutRequest,
  LayoutResult,
} from './layoutProtocol';

/** Children one dagre run lays out (its recursion stays well inside a worker's stack). */
export const MAX_DAGRE_BOXES = 200;

type Point = [number, number];
/** Lays out one band or one small group (a worker, or dagreLayout directly). */
export type LayoutOne = (request: Omit<LayoutRequest, 'id'>) => Promise<LayoutResult>;

/** The boxes in topological order (Kahn's algorithm; a cycle's rest in request order). */
export function topologicalOrder(
  boxes: readonly LayoutBox[],
  edges: readonly LayoutEdge[],
): LayoutBox[] {
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

/** Band layouts a LayoutCache keeps (about 5 groups of 1,000 children). */
export const MAX_CACHED_LAYOUTS = 25;

/**
 * Remembers the latest layouts by their request: when a child of a large group opens or
 * closes, the group is laid out again, but its bands other than the child's are unchanged
 * (bands are cut by topological order, not by size) and come from here.
 */
export class LayoutCache {
  private readonly layouts = new Map<string, Promise<LayoutResult>>();

  constructor(private readonly layoutOne: LayoutOne) {}

  readonly layout: LayoutOne = (request) => {
    const key = JSON.stringify([
      request.band,
      request.boxes.map((box) => [box.id, box.width, box.height]),
      request.edges.map((edge) => [edge.from, edge.to]),
    ]);
    const kept = this.layouts.get(key);
    // The latest used comes last: the first is the one to drop.
    this.layouts.delete(key);
    const result = kept ?? this.layoutOne(request);
    this.layouts.set(key, result);
    if (this.layouts.size > MAX_CACHED_LAYOUTS)
      this.layouts.delete(this.layouts.keys().next().value!);
    if (!kept) {
      // A failed layout is not kept.
      result.catch(() => this.layouts.delete(key));
      return result;
    }
    // No worker time spent on this one.
    return result.then((layout) => ({ ...layout, ms: 0 }));
  };

  clear(): void {
    this.layouts.clear();
  }
}

export async function bandedLayout(
  input: LayoutInput,
  layoutOne: LayoutOne,
): Promise<LayoutResult> {
  const { boxes, edges } = input;
  if (boxes.length <= MAX_DAGRE_BOXES) return layoutOne({ boxes, edges, band: false });

  const order = topologicalOrder(boxes, edges);
  const bandOf = new Map<string, number>();
  const bands: { boxes: LayoutBox[]; edges: LayoutEdge[]; indices: number[] }[] = [];
  order.forEach((box, i) => {
    const band = Math.floor(i / MAX_DAGRE_BOXES);
    (bands[band] ??= { boxes: [], edges: [], indices: [] }).boxes.push(box);
    bandOf.set(box.id, band);
  });
  edges.forEach((edge, i) => {
    const band = bandOf.get(edge.from);
    if (band === undefined || band !== bandOf.get(edge.to)) return;
    bands[band]!.edges.push(edge);
    bands[band]!.indices.push(i);
  });
  const laid = await Promise.all(
    bands.map((band) => layoutOne({ boxes: band.boxes, edges: band.edges, band: true })),
  );

  const width = Math.max(0, ...laid.map((band) => band.width));
  const positions: Record<string, Point> = {};
  const routes: Point[][] = edges.map(() => []);
  let top = 0;
  laid.forEach((result, b) => {
    const left = (width - result.width) / 2;
    for (const [id, [x, y]] of Object.entries(result.positions))
      positions[id] = [x + left, y + top];
    bands[b]!.indices.forEach((i, j) => {
      routes[i] = (result.routes[j] ?? []).map(([x, y]): Point => [x + left, y + top]);
    });
    top += result.height + RANK_SEP;
  });
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
    id: 0,
    positions,
    routes,
    width,
    height: Math.max(0, top - RANK_SEP),
    ms: laid.reduce((sum, band) => sum + band.ms, 0),
  };
}

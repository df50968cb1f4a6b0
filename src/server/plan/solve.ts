/**
 * The planner's choice of one option per tensor: a multiple-choice knapsack. Each tensor
 * has options (keep first) with a size in bytes and a deviation; the plan minimises the
 * summed deviation under a byte budget, or the bytes under a deviation budget.
 *
 * Two solvers, the better result kept:
 * - convex-hull greedy (the Lagrangian relaxation's path): per tensor, the options on the
 *   lower convex hull of (bytes, deviation); steps taken in order of deviation added per
 *   byte saved until the budget is met;
 * - exact dynamic programme over bytes in units (each option's bytes rounded up, so its
 *   answers always fit), for every capacity at once.
 * Both results then get a local fill: single-tensor switches that improve the objective
 * while the budget still holds.
 */

/** One option of one tensor. */
export interface SolveOption {
  readonly bytes: number;
  /** Predicted deviation; Infinity or NaN = never chosen. */
  readonly deviation: number;
}

/** A tensor's options; the first is keeping it as it is. */
export interface SolveItem {
  readonly options: readonly SolveOption[];
}

export type SolveBudget =
  | { readonly kind: 'bytes'; readonly maxBytes: number }
  | { readonly kind: 'deviation'; readonly maxDeviation: number };

export interface Solution {
  /** Chosen option per item (0 = keep). */
  readonly picks: readonly number[];
  readonly bytes: number;
  readonly deviation: number;
  /** Whether the budget holds. */
  readonly feasible: boolean;
  /** Which solver gave it: "greedy", "exact" or "none" (nothing fits). */
  readonly solver: string;
}

/** Largest dynamic-programme table (items × capacity units), in cells. */
const MAX_TABLE_CELLS = 40_000_000;
/** Most capacity units of the dynamic programme. */
const MAX_UNITS = 16_384;

function cost(option: SolveOption): number {
  return Number.isFinite(option.deviation) ? option.deviation : Infinity;
}

function totals(items: readonly SolveItem[], picks: readonly number[]): [number, number] {
  let bytes = 0;
  let deviation = 0;
  items.forEach((item, i) => {
    const option = item.options[picks[i]!]!;
    bytes += option.bytes;
    deviation += cost(option);
  });
  return [bytes, deviation];
}

function fits(budget: SolveBudget, bytes: number, deviation: number): boolean {
  return budget.kind === 'bytes' ? bytes <= budget.maxBytes : deviation <= budget.maxDeviation;
}

/** a better than b: feasible first, then the objective, then the other total. */
function better(budget: SolveBudget, a: Solution, b: Solution | undefined): boolean {
  if (!b) return true;
  if (a.feasible !== b.feasible) return a.feasible;
  if (!a.feasible) return budget.kind === 'bytes' ? a.bytes < b.bytes : a.deviation < b.deviation;
  const [primaryA, primaryB, secondaryA, secondaryB] =
    budget.kind === 'bytes'
      ? [a.deviation, b.deviation, a.bytes, b.bytes]
      : [a.bytes, b.bytes, a.deviation, b.deviation];
  return primaryA < primaryB || (primaryA === primaryB && secondaryA < secondaryB);
}

function solution(
  items: readonly SolveItem[],
  picks: number[],
  budget: SolveBudget,
  solver: string,
): Solution {
  const [bytes, deviation] = totals(items, picks);
  return { picks, bytes, deviation, feasible: fits(budget, bytes, deviation), solver };
}

/** Indices of an item's options on the lower convex hull, from the largest to the smallest. */
function hull(item: SolveItem): number[] {
  const order = item.options
    .map((option, index) => ({ option, index }))
    .filter(({ option }) => Number.isFinite(cost(option)))
    .sort((a, b) => b.option.bytes - a.option.bytes || cost(a.option) - cost(b.option));
  // Undominated: going down in bytes, the deviation strictly rises.
  const frontier: { option: SolveOption; index: number }[] = [];
  for (const entry of order) {
    const last = frontier[frontier.length - 1];
    if (last && entry.option.bytes === last.option.bytes) continue;
    if (last && cost(entry.option) <= cost(last.option)) {
      // Smaller and no worse: it dominates the previous ones it is not worse than.
      while (
        frontier.length > 0 &&
        cost(frontier[frontier.length - 1]!.option) >= cost(entry.option)
      )
        frontier.pop();
    }
    frontier.push(entry);
  }
  // Convex: the slope (deviation added per byte saved) must increase along the chain.
  const chain: { option: SolveOption; index: number }[] = [];
  const slope = (a: SolveOption, b: SolveOption): number =>
    (cost(b) - cost(a)) / Math.max(a.bytes - b.bytes, 1e-9);
  for (const entry of frontier) {
    while (
      chain.length >= 2 &&
      slope(chain[chain.length - 2]!.option, chain[chain.length - 1]!.option) >=
        slope(chain[chain.length - 1]!.option, entry.option)
    ) {
      chain.pop();
    }
    chain.push(entry);
  }
  return chain.map((entry) => entry.index);
}

function greedy(items: readonly SolveItem[], budget: SolveBudget): Solution {
  const hulls = items.map(hull);
  const position = items.map(() => 0);
  // Start from each item's largest option on its hull (keep, unless keep is unusable).
  const picks = hulls.map((h) => h[0] ?? 0);
  let [bytes, deviation] = totals(items, picks);
  const stepSlope = (i: number): number => {
    const h = hulls[i]!;
    const at = position[i]!;
    if (at + 1 >= h.length) return Infinity;
    const a = items[i]!.options[h[at]!]!;
    const b = items[i]!.options[h[at + 1]!]!;
    return (cost(b) - cost(a)) / Math.max(a.bytes - b.bytes, 1e-9);
  };
  for (;;) {
    if (budget.kind === 'bytes' && bytes <= budget.maxBytes) break;
    let best = -1;
    let bestSlope = Infinity;
    for (let i = 0; i < items.length; i++) {
      const s = stepSlope(i);
      if (s < bestSlope) {
        bestSlope = s;
        best = i;
      }
    }
    if (best < 0) break;
    const h = hulls[best]!;
    const from = items[best]!.options[h[position[best]!]!]!;
    const to = items[best]!.options[h[position[best]! + 1]!]!;
    if (budget.kind === 'deviation' && deviation - cost(from) + cost(to) > budget.maxDeviation)
      break;
    position[best]!++;
    picks[best] = h[position[best]!]!;
    bytes += to.bytes - from.bytes;
    deviation += cost(to) - cost(from);
  }
  return solution(items, picks, budget, 'greedy');
}

function exact(items: readonly SolveItem[], budget: SolveBudget): Solution | undefined {
  if (items.length === 0) return undefined;
  const minBytes = items.map((item) => Math.min(...item.options.map((o) => o.bytes)));
  const spans = items.map(
    (item, i) => Math.max(...item.options.map((o) => o.bytes)) - minBytes[i]!,
  );
  const base = minBytes.reduce((a, b) => a + b, 0);
  const span = spans.reduce((a, b) => a + b, 0);
  const room = budget.kind === 'bytes' ? Math.min(budget.maxBytes - base, span) : span;
  if (room < 0) return undefined;
  const units = Math.max(1, Math.min(MAX_UNITS, Math.floor(MAX_TABLE_CELLS / items.length)));
  const unit = Math.max(1, Math.ceil(span / units));
  const capacity = Math.floor(room / unit);
  const width = capacity + 1;
  let best = new Float64Array(width).fill(0);
  const choice = new Uint16Array(items.length * width);
  items.forEach((item, i) => {
    const next = new Float64Array(width).fill(Infinity);
    item.options.forEach((option, j) => {
      const d = cost(option);
      if (!Number.isFinite(d)) return;
      const w = Math.ceil((option.bytes - minBytes[i]!) / unit);
      for (let c = w; c < width; c++) {
        const value = best[c - w]! + d;
        if (value < next[c]!) {
          next[c] = value;
          choice[i * width + c] = j;
        }
      }
    });
    best = next;
  });
  let c: number;
  if (budget.kind === 'bytes') {
    c = capacity;
    if (!Number.isFinite(best[c]!)) return undefined;
  } else {
    c = best.findIndex((value) => value <= budget.maxDeviation);
    if (c < 0) return undefined;
  }
  const picks = new Array<number>(items.length).fill(0);
  for (let i = items.length - 1; i >= 0; i--) {
    const j = choice[i * width + c]!;
    picks[i] = j;
    c -= Math.ceil((items[i]!.options[j]!.bytes - minBytes[i]!) / unit);
  }
  return solution(items, picks, budget, 'exact');
}

/** Single-item switches that improve the objective while the budget holds, best first. */
function fill(items: readonly SolveItem[], start: Solution, budget: SolveBudget): Solution {
  const picks = [...start.picks];
  let [bytes, deviation] = totals(items, picks);
  for (let round = 0; round < 4 * items.length + 8; round++) {
    let move: { i: number; j: number; gain: number } | undefined;
    items.forEach((item, i) => {
      const current = item.options[picks[i]!]!;
      item.options.forEach((option, j) => {
        if (j === picks[i]) return;
        const newBytes = bytes - current.bytes + option.bytes;
        const newDeviation = deviation - cost(current) + cost(option);
        if (!Number.isFinite(newDeviation) || !fits(budget, newBytes, newDeviation)) return;
        const gain = budget.kind === 'bytes' ? deviation - newDeviation : bytes - newBytes;
        if (gain > 1e-15 && (!move || gain > move.gain)) move = { i, j, gain };
      });
    });
    if (!move) break;
    const { i, j } = move;
    const current = items[i]!.options[picks[i]!]!;
    const option = items[i]!.options[j]!;
    bytes += option.bytes - current.bytes;
    deviation += cost(option) - cost(current);
    picks[i] = j;
  }
  return solution(items, picks, budget, start.solver);
}

/** The best choice of one option per item under `budget` (see the module comment). */
export function solveKnapsack(items: readonly SolveItem[], budget: SolveBudget): Solution {
  let best: Solution | undefined;
  for (const candidate of [greedy(items, budget), exact(items, budget)]) {
    if (!candidate) continue;
    const filled = fill(items, candidate, budget);
    if (better(budget, filled, best)) best = filled;
  }
  return best!;
}

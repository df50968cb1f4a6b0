/**
 * The planner's knapsack solver on hand-built problems: the optimum of small random
 * instances (checked by trying every combination) under byte and deviation budgets, and
 * the edge cases (nothing fits, unusable options, keep everything).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { solveKnapsack, type SolveBudget, type SolveItem } from '../../../../src/server/plan/solve';
import { seededUniform } from '../../../../src/server/runtime/sampleInputs';

function randomItems(seed: number, count: number, options: number): SolveItem[] {
  const random = seededUniform(seed);
  return Array.from({ length: count }, () => {
    const full = 1000 + Math.floor(random() * 9000);
    const list = [{ bytes: full, deviation: 0 }];
    for (let j = 1; j < options; j++) {
      list.push({
        bytes: Math.floor(full * (0.1 + 0.8 * random())),
        deviation: random() * random(),
      });
    }
    return { options: list };
  });
}

/** Every combination: the best objective that meets the budget (undefined when none does). */
function bruteForce(items: readonly SolveItem[], budget: SolveBudget): number | undefined {
  let best: number | undefined;
  const picks = items.map(() => 0);
  for (;;) {
    let bytes = 0;
    let deviation = 0;
    items.forEach((item, i) => {
      bytes += item.options[picks[i]!]!.bytes;
      deviation += item.options[picks[i]!]!.deviation;
    });
    if (budget.kind === 'bytes' ? bytes <= budget.maxBytes : deviation <= budget.maxDeviation) {
      const objective = budget.kind === 'bytes' ? deviation : bytes;
      if (best === undefined || objective < best) best = objective;
    }
    let i = 0;
    while (i < items.length && ++picks[i]! === items[i]!.options.length) picks[i++] = 0;
    if (i === items.length) return best;
  }
}

test('solver: byte budget, the optimum of random instances within 2% of the deviation', () => {
  for (let seed = 1; seed <= 25; seed++) {
    const items = randomItems(seed, 6, 4);
    const full = items.reduce((sum, item) => sum + item.options[0]!.bytes, 0);
    const budget: SolveBudget = { kind: 'bytes', maxBytes: Math.floor(full * 0.45) };
    const best = bruteForce(items, budget);
    const solution = solveKnapsack(items, budget);
    if (best === undefined) {
      assert.equal(solution.feasible, false);
      continue;
    }
    assert.ok(solution.feasible, `seed ${seed}`);
    assert.ok(solution.bytes <= budget.maxBytes, `seed ${seed}: ${solution.bytes} bytes`);
    assert.ok(
      solution.deviation <= best * 1.02 + 1e-12,
      `seed ${seed}: ${solution.deviation} vs optimum ${best}`,
    );
  }
});

test('solver: deviation budget, the fewest bytes within 2% of the optimum', () => {
  for (let seed = 100; seed < 125; seed++) {
    const items = randomItems(seed, 6, 4);
    const budget: SolveBudget = { kind: 'deviation', maxDeviation: 0.4 };
    const best = bruteForce(items, budget)!;
    const solution = solveKnapsack(items, budget);
    assert.ok(solution.feasible);
    assert.ok(solution.deviation <= 0.4);
    assert.ok(solution.bytes <= best * 1.02, `seed ${seed}: ${solution.bytes} vs ${best}`);
  }
});

test('solver: a sensitive tensor is kept, an insensitive one compressed hard', () => {
  const items: SolveItem[] = [
    {
      options: [
        { bytes: 4000, deviation: 0 },
        { bytes: 1000, deviation: 0.5 },
        { bytes: 500, deviation: 0.9 },
      ],
    },
    {
      options: [
        { bytes: 4000, deviation: 0 },
        { bytes: 1000, deviation: 0.001 },
        { bytes: 500, deviation: 0.002 },
      ],
    },
  ];
  const solution = solveKnapsack(items, { kind: 'bytes', maxBytes: 4600 });
  assert.deepEqual(solution.picks, [0, 2]);
  assert.equal(solution.bytes, 4500);
});

test('solver: unusable options are never chosen; an impossible budget is reported', () => {
  const items: SolveItem[] = [
    {
      options: [
        { bytes: 100, deviation: 0 },
        { bytes: 10, deviation: NaN },
        { bytes: 20, deviation: Infinity },
        { bytes: 50, deviation: 0.3 },
      ],
    },
  ];
  const fits = solveKnapsack(items, { kind: 'bytes', maxBytes: 60 });
  assert.deepEqual(fits.picks, [3]);
  const impossible = solveKnapsack(items, { kind: 'bytes', maxBytes: 30 });
  assert.equal(impossible.feasible, false);
  assert.equal(impossible.bytes, 50, 'the smallest usable choice when nothing fits');
  const generous = solveKnapsack(items, { kind: 'bytes', maxBytes: 1000 });
  assert.deepEqual(generous.picks, [0], 'keep everything when the budget allows');
  const loose = solveKnapsack(items, { kind: 'deviation', maxDeviation: 1 });
  assert.deepEqual(loose.picks, [3]);
});

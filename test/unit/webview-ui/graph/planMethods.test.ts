/** The plan's chosen methods that the "Plan: method" overlay reads (its colours: test/webview/graph). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../../../../src/shared/plan';
import {
  planCategories,
  planMethodOf,
  setPlanMethods,
} from '../../../../webview-ui/src/graph/planMethods';

const step = (tensor: string, label: string) => ({
  tensor,
  label,
  bytesBefore: 16,
  predictedBytes: 4,
  predictedDeviation: 0.01,
});

test("a plan's method per tensor, numbered keep first, then by name; a dismissed plan has none", () => {
  assert.deepEqual(planCategories(), []);
  setPlanMethods({
    steps: [step('a', 'int8'), step('b', 'keep'), step('c', 'int4:32'), step('d', 'int8')],
  } as unknown as Plan);
  assert.deepEqual(planCategories(), ['keep', 'int4:32', 'int8']);
  assert.equal(planMethodOf('a'), 2);
  assert.equal(planMethodOf('b'), 0);
  assert.equal(planMethodOf('z'), undefined);
  setPlanMethods(null);
  assert.deepEqual(planCategories(), []);
  assert.equal(planMethodOf('a'), undefined);
});

/** The plan's chosen methods that the "Plan: method" overlay reads, and its categorical scale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../../../../src/shared/plan';
import type { TensorRow } from '../../../../webview-ui/src/table/tensorRows';
import {
  planCategories,
  planMethodOf,
  setPlanMethods,
} from '../../../../webview-ui/src/graph/planMethods';
import { aggregateValue, MIXED, overlayNamed } from '../../../../webview-ui/src/graph/overlays';

const step = (tensor: string, label: string) => ({
  tensor,
  label,
  bytesBefore: 16,
  predictedBytes: 4,
  predictedDeviation: 0.01,
});
const row = (name: string) => ({ info: { name, parameterCount: 4 } }) as unknown as TensorRow;

test("a plan's method per tensor, keep first; a group of one method has it, of several is mixed", () => {
  assert.deepEqual(planCategories(), []);
  setPlanMethods({
    steps: [step('a', 'int8'), step('b', 'keep'), step('c', 'int4:32'), step('d', 'int8')],
  } as unknown as Plan);
  assert.deepEqual(planCategories(), ['keep', 'int4:32', 'int8']);
  assert.equal(planMethodOf('a'), 2);
  assert.equal(planMethodOf('b'), 0);
  assert.equal(planMethodOf('z'), undefined);
  const metric = overlayNamed('planMethod');
  assert.equal(metric.id, 'planMethod');
  assert.equal(aggregateValue(metric, [row('a'), row('d'), row('z')]), 2);
  assert.equal(aggregateValue(metric, [row('a'), row('c')]), MIXED);
  assert.equal(aggregateValue(metric, [row('z')]), null);
  assert.equal(metric.format(1), 'int4:32');
  assert.equal(metric.format(MIXED), 'mixed');
  setPlanMethods(null);
  assert.deepEqual(planCategories(), []);
  assert.equal(planMethodOf('a'), undefined);
});

/** Group by module in plain Node: groups, their order, totals and folding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorInfo } from '../../../../src/shared/model';
import { groupByModule, type GroupHeader } from '../../../../webview-ui/src/table/moduleGroups';
import { createRow, visibleOrder } from '../../../../webview-ui/src/table/tensorRows';

function info(index: number, name: string, parameterCount: number): TensorInfo {
  return {
    index,
    name,
    dtype: 'float32',
    shape: [parameterCount],
    parameterCount,
    byteLength: parameterCount * 4,
    node: name,
    op: 'Conv',
    location: 'initializer',
    graph: '',
    file: 'model.onnx',
    byteOffset: null,
  };
}

const NAMES: [string, number][] = [
  ['backbone.stages.0.reparam_conv.weight', 100],
  ['backbone.stages.0.reparam_conv.bias', 10],
  ['backbone.stages.1.reparam_conv.weight', 200],
  ['backbone.stages.1.reparam_conv.bias', 20],
  ['head/fc/MatMul_output', 5],
  ['scale', 1],
];
const rows = NAMES.map(([name, count], index) => createRow(info(index, name, count)));

test('tensors fall under their module, groups in the order of their first tensor, with totals', () => {
  const order = visibleOrder(rows, '', { column: 'params', direction: 'descending' });
  const { items, shown } = groupByModule(order, rows, new Set());
  const headers = items.filter((item): item is GroupHeader => typeof item !== 'number');
  // Largest first: stage 1's weight leads, so its module does. The modules share no
  // prefix (head/fc), so their labels are whole.
  assert.deepEqual(
    headers.map((header) => [header.key, header.label, header.count, header.params, header.bytes]),
    [
      ['backbone.stages.1.reparam_conv', 'backbone.stages.1.reparam_conv', 2, 220, 880],
      ['backbone.stages.0.reparam_conv', 'backbone.stages.0.reparam_conv', 2, 110, 440],
      ['head/fc', 'head/fc', 1, 5, 20],
      ['', '(top level)', 1, 1, 4],
    ],
  );
  assert.deepEqual(items.slice(0, 3), [headers[0], 2, 3]);
  assert.deepEqual(shown, [2, 3, 0, 1, 4, 5]);
});

test('a collapsed group keeps its header and hides its tensors', () => {
  const order = visibleOrder(rows, '', null);
  const { items, shown } = groupByModule(order, rows, new Set(['backbone.stages.0.reparam_conv']));
  const first = items[0] as GroupHeader;
  assert.equal(first.collapsed, true);
  assert.equal(first.count, 2, 'the totals count the hidden tensors');
  assert.equal(typeof items[1], 'object', 'the next group follows at once');
  assert.deepEqual(shown, [2, 3, 4, 5]);
});

test('the Weights view leaves out the rows known not to be weights', () => {
  rows.forEach((row) => {
    row.weight = row.info.name.endsWith('.weight');
  });
  assert.deepEqual(visibleOrder(rows, '', null, true), [0, 2]);
  assert.deepEqual(visibleOrder(rows, 'stages.1', null, true), [2]);
  assert.equal(visibleOrder(rows, '', null, false).length, NAMES.length);
});

test('group labels lose the prefix all modules share', () => {
  const stages = rows.slice(0, 4);
  const { items } = groupByModule(visibleOrder(stages, '', null), stages, new Set());
  const labels = items.flatMap((item) => (typeof item === 'number' ? [] : [item.label]));
  assert.deepEqual(labels, ['0.reparam_conv', '1.reparam_conv']);
});

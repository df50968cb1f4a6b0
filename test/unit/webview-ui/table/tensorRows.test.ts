/** The layer table's rows in plain Node: filtering and sorting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorInfo, TensorStats } from '../../../../src/shared/model';
import {
  createRow,
  visibleOrder,
  type TensorRow,
} from '../../../../webview-ui/src/table/tensorRows';

function info(
  index: number,
  name: string,
  parameterCount: number,
  op: string | null = 'MatMul',
): TensorInfo {
  return {
    index,
    name,
    dtype: 'float32',
    shape: [parameterCount],
    parameterCount,
    byteLength: parameterCount * 4,
    node: name.replace(/\.(weight|bias)$/, ''),
    op,
    location: 'initializer',
    graph: '',
    file: 'model.onnx',
    byteOffset: null,
  };
}

function withStd(row: TensorRow, std: number): TensorRow {
  const stats: TensorStats = {
    index: row.info.index,
    count: row.info.parameterCount,
    min: -1,
    max: 1,
    mean: 0,
    std,
    sparsity: 0,
    l2Norm: 1,
    nanCount: 0,
    infCount: 0,
    histogram: null,
  };
  row.stats = stats;
  return row;
}

test('the filter matches name, node, op and dtype, case-insensitively', () => {
  const rows = [
    createRow(info(0, 'encoder.fc1.weight', 10)),
    createRow(info(1, 'encoder.conv.weight', 20, 'Conv')),
    createRow(info(2, 'decoder.fc1.bias', 30)),
  ];
  assert.deepEqual(visibleOrder(rows, 'FC1', null), [0, 2]);
  assert.deepEqual(visibleOrder(rows, 'conv', null), [1]);
  assert.deepEqual(visibleOrder(rows, 'matmul', null), [0, 2]);
  assert.deepEqual(visibleOrder(rows, 'FLOAT32', null), [0, 1, 2]);
  assert.deepEqual(visibleOrder(rows, '  ', null), [0, 1, 2]);
  assert.deepEqual(visibleOrder(rows, 'nothing', null), []);
});

test('sorting: both directions, ties in file order, rows without statistics last', () => {
  const rows = [
    withStd(createRow(info(0, 'b', 20)), 0.5),
    createRow(info(1, 'a10', 10)),
    withStd(createRow(info(2, 'a9', 20)), 0.1),
    withStd(createRow(info(3, 'c', 5)), 0.9),
  ];
  assert.deepEqual(
    visibleOrder(rows, '', { column: 'params', direction: 'descending' }),
    [0, 2, 1, 3],
  );
  assert.deepEqual(
    visibleOrder(rows, '', { column: 'params', direction: 'ascending' }),
    [3, 1, 0, 2],
  );
  assert.deepEqual(
    visibleOrder(rows, '', { column: 'name', direction: 'ascending' }),
    [2, 1, 0, 3],
    'a9 before a10',
  );
  assert.deepEqual(
    visibleOrder(rows, '', { column: 'std', direction: 'descending' }),
    [3, 0, 2, 1],
  );
  assert.deepEqual(visibleOrder(rows, '', { column: 'std', direction: 'ascending' }), [2, 0, 3, 1]);
  assert.deepEqual(
    visibleOrder([undefined, ...rows.slice(1)], '', null),
    [1, 2, 3],
    'rows not loaded yet are skipped',
  );
});

/** The webview's DOM-free logic in plain Node: number formatting, filtering and sorting rows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorInfo, TensorStats } from '../../../../src/shared/model';
import {
  formatCompactCount,
  formatCount,
  formatPercent,
  formatStat,
} from '../../../../src/shared/format';
import {
  createRow,
  visibleOrder,
  type TensorRow,
} from '../../../../webview-ui/src/table/tensorRows';
import { ViewStateStore, type ViewState } from '../../../../webview-ui/src/viewState';

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

test('counts: exact with grouped digits, short with three significant digits', () => {
  assert.equal(formatCount(309633), '309,633');
  assert.equal(formatCompactCount(42), '42');
  assert.equal(formatCompactCount(309633), '310K');
  assert.equal(formatCompactCount(99980), '100K');
  assert.equal(formatCompactCount(1234567), '1.23M');
  assert.equal(formatCompactCount(999_999), '1M');
  assert.equal(formatCompactCount(7e9), '7B');
});

test('statistics: significant digits, exponents for tiny and huge values, a dash for none', () => {
  assert.equal(formatStat(0.22481), '0.2248');
  assert.equal(formatStat(0.22481, 3), '0.225');
  assert.equal(formatStat(-1.2346e-5), '-1.235e-5');
  assert.equal(formatStat(2.5e7, 3), '2.50e7');
  assert.equal(formatStat(0), '0');
  assert.equal(formatStat(null), '—');
  assert.equal(formatPercent(1 / 6), '16.7%');
  assert.equal(formatPercent(0.0001), '<0.1%');
  assert.equal(formatPercent(0), '0.0%');
});

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

test('saved view state: valid fields come back, malformed ones fall back to defaults', () => {
  const written: ViewState[] = [];
  const storage = (saved: unknown) => ({
    getState: () => saved,
    setState: (state: ViewState) => written.push(state),
  });

  const restored = new ViewStateStore(
    storage({
      selectedIndex: 3,
      sort: { column: 'std', direction: 'descending' },
      filter: 'conv',
      scrollTop: 240,
      detailsOpen: true,
      detailTab: 'spectrum',
    }),
  );
  assert.deepEqual(restored.state, {
    selectedIndex: 3,
    sort: { column: 'std', direction: 'descending' },
    filter: 'conv',
    scrollTop: 240,
    detailsOpen: true,
    histogramScale: 'linear',
    detailTab: 'spectrum',
  });

  const malformed = new ViewStateStore(
    storage({
      selectedIndex: 'x',
      sort: { column: 'weights', direction: 'up' },
      filter: 7,
      histogramScale: 'cubic',
      detailsOpen: 'yes',
      detailTab: 'graph',
    }),
  );
  assert.deepEqual(malformed.state, {
    selectedIndex: null,
    sort: null,
    filter: '',
    scrollTop: 0,
    detailsOpen: false,
    histogramScale: 'linear',
    detailTab: 'histogram',
  });

  malformed.update({ filter: 'fc' });
  assert.equal(written.at(-1)?.filter, 'fc');
});

/** The graph's and treemap's overlays in plain Node: a compression report's relative error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompressionReport } from '../../../../src/shared/compress';
import type { TensorInfo } from '../../../../src/shared/model';
import {
  aggregateValue,
  overlayNamed,
  setReportErrors,
} from '../../../../webview-ui/src/graph/overlays';
import { createRow } from '../../../../webview-ui/src/table/tensorRows';

function row(index: number, name: string) {
  const info: TensorInfo = {
    index,
    name,
    dtype: 'float32',
    shape: [4],
    parameterCount: 4,
    byteLength: 16,
    node: name,
    op: 'MatMul',
    location: 'initializer',
    graph: '',
    file: 'model.onnx',
    byteOffset: null,
  };
  return createRow(info);
}

test("the report overlay: each tensor's relative error, a group's maximum, nothing without a report", () => {
  const rows = [row(0, 'a.weight'), row(1, 'b.weight'), row(2, 'c.weight')];
  const metric = overlayNamed('reportError');
  assert.equal(metric.id, 'reportError');
  assert.equal(aggregateValue(metric, rows), null);
  const result = (name: string, relativeError: number, skipped = false) => ({
    name,
    bytesBefore: 16,
    bytesAfter: 4,
    relativeError,
    detail: skipped ? 'kept' : 'int8',
    skipped,
  });
  setReportErrors({
    tensors: [result('a.weight', 0.01), result('b.weight', 0.04), result('c.weight', 0.9, true)],
  } as unknown as CompressionReport);
  assert.equal(aggregateValue(metric, [rows[0]!]), 0.01);
  assert.equal(aggregateValue(metric, rows), 0.04, 'a skipped tensor has no error');
  setReportErrors(null);
  assert.equal(aggregateValue(metric, rows), null);
});

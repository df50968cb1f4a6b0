/** The compression report's relative errors that the graph's and treemap's overlay reads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompressionReport } from '../../../../src/shared/compress';
import { reportErrorOf, setReportErrors } from '../../../../webview-ui/src/graph/reportErrors';

test("a report's relative error per tensor; skipped tensors and a dismissed report have none", () => {
  assert.equal(reportErrorOf('a.weight'), undefined);
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
  assert.equal(reportErrorOf('a.weight'), 0.01);
  assert.equal(reportErrorOf('b.weight'), 0.04);
  assert.equal(reportErrorOf('c.weight'), undefined);
  setReportErrors(null);
  assert.equal(reportErrorOf('b.weight'), undefined);
});

/** Plan targets as users type them in the Plan Compression… input box. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describePlanTarget, parsePlanTarget } from '../../../../src/shared/planTarget';

test('ratios, sizes and deviations are read; anything else is explained', () => {
  assert.deepEqual(parsePlanTarget('4x'), { kind: 'ratio', value: 4 });
  assert.deepEqual(parsePlanTarget(' 2.5 × '), { kind: 'ratio', value: 2.5 });
  assert.deepEqual(parsePlanTarget('10 MB'), { kind: 'sizeMB', value: 10 });
  assert.deepEqual(parsePlanTarget('500kb'), { kind: 'sizeMB', value: 0.5 });
  assert.deepEqual(parsePlanTarget('1.5 GB'), { kind: 'sizeMB', value: 1500 });
  assert.deepEqual(parsePlanTarget('deviation 0.05'), { kind: 'deviation', value: 0.05 });
  assert.deepEqual(parsePlanTarget('dev=1e-3'), { kind: 'deviation', value: 0.001 });
  assert.deepEqual(parsePlanTarget('4.5 bpw'), { kind: 'bpw', value: 4.5 });
  assert.deepEqual(parsePlanTarget('5BPW'), { kind: 'bpw', value: 5 });
  for (const bad of ['', 'four', '4', '0x', '1x', '0 MB', 'deviation', '-3x', '0 bpw', 'bpw']) {
    assert.equal(typeof parsePlanTarget(bad), 'string', bad);
  }
  assert.equal(describePlanTarget({ kind: 'ratio', value: 4 }), '4× smaller');
  assert.equal(describePlanTarget({ kind: 'sizeMB', value: 10 }), '≤ 10 MB');
  assert.equal(describePlanTarget({ kind: 'bpw', value: 4.5 }), '4.5 bits per weight');
});

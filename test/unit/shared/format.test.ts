/** Number formatting shared by the webview, the CLI and the extension, at known values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatCompactCount,
  formatCount,
  formatPercent,
  formatStat,
} from '../../../src/shared/format';

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

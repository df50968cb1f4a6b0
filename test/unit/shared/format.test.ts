/** Number formatting shared by the webview, the CLI and the extension, at known values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatCompactCount,
  formatCount,
  formatPercent,
  formatRatio,
  formatSizeChange,
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

test('ratios: "4.0× smaller", percentages for small changes, "unchanged", never "1× smaller"', () => {
  assert.equal(formatRatio(4000, 1000), '4.0× smaller');
  assert.equal(formatRatio(1000, 2500), '2.5× larger');
  assert.equal(formatRatio(1000, 1000), 'unchanged');
  assert.equal(formatRatio(1_000_000, 999_800), 'unchanged');
  assert.equal(formatRatio(1000, 968), '3.2% smaller');
  assert.equal(formatRatio(1000, 1050), '5.0% larger');
  assert.equal(formatRatio(1000, 900), '1.1× smaller');
  assert.equal(formatRatio(0, 10), '');
  for (const after of [990, 995, 999, 1000, 1001, 1010]) {
    assert.doesNotMatch(formatRatio(1000, after), /^1(\.0)?×/);
  }
});

test('a size change: both sizes and the ratio in words', () => {
  assert.equal(formatSizeChange(4 * 1024 * 1024, 1024 * 1024), '4.00 MB → 1.00 MB (4.0× smaller)');
  assert.equal(formatSizeChange(2048, 2048), '2.00 KB → 2.00 KB (unchanged)');
  assert.equal(formatSizeChange(0, 10), '0 B → 10 B');
});

/** Lens words: short candidate names, titles within MAX_LENS_TITLE, the reason of a ✗. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ShapeCheck } from '../../../../src/server/python/layerMapping';
import {
  candidateNames,
  candidateTitle,
  candidateTooltip,
  MAX_LENS_TITLE,
  shortenMiddle,
} from '../../../../src/server/python/lensText';

test('candidate names: the distinguishing prefix in words, the shared attribute left out', () => {
  const names = candidateNames([
    'If_0_else_branch__Inline_0__encoder.0.reparam_conv',
    'If_0_then_branch__Inline_0__encoder.0.reparam_conv',
    'If_0_then_branch__Inline_0__encoder.1.reparam_conv',
  ]);
  assert.deepEqual(
    names.map((name) => name.short),
    ['else branch encoder.0', 'then branch encoder.0', 'then branch encoder.1'],
  );
  // Twins: the same module behind different prefixes.
  assert.equal(names[0]!.twinKey, names[1]!.twinKey);
  assert.notEqual(names[1]!.twinKey, names[2]!.twinKey);
  // Without prefixes, plain paths; twins alone keep their whole path.
  assert.deepEqual(
    candidateNames(['blocks.0.attn.proj', 'blocks.1.attn.proj']).map((n) => n.short),
    ['blocks.0', 'blocks.1'],
  );
  assert.deepEqual(
    candidateNames(['a__decoder.rnn', 'b__decoder.rnn']).map((n) => n.short),
    ['a decoder.rnn', 'b decoder.rnn'],
  );
});

test('titles stay within MAX_LENS_TITLE; a ✗ with a matching twin says the branches differ', () => {
  const mismatch: ShapeCheck = {
    status: 'mismatch',
    parameter: 'weight',
    declared: [128, 129, 3],
    file: [128, 65, 3],
  };
  const match: ShapeCheck = {
    status: 'match',
    parameter: 'weight',
    declared: [128, 129, 3],
    file: [128, 129, 3],
  };
  assert.equal(
    candidateTitle('else branch encoder.0', mismatch, {
      name: 'then branch encoder.0',
      check: match,
    }),
    'else branch encoder.0 ✗ 128×65×3: branches differ, then branch encoder.0 ✓',
  );
  assert.equal(
    candidateTitle('encoder.0', mismatch),
    'encoder.0 ✗ declared 128×129×3, file 128×65×3',
  );
  const long = `model.${'very_long_module_name.'.repeat(8)}proj`;
  for (const title of [
    candidateTitle(long, mismatch),
    candidateTitle(long, match),
    candidateTitle(long, null),
    candidateTitle(long, mismatch, { name: long, check: match }),
  ]) {
    assert.ok(title.length <= MAX_LENS_TITLE, `${title.length}: ${title}`);
    assert.match(title, /…/);
  }
  // Nothing is lost: the tooltip has the full path, both shapes and the reason.
  const tooltip = candidateTooltip(long, mismatch, { modulePath: 'then.x', check: match });
  assert.ok(tooltip.startsWith(`${long}: ✗ declared 128×129×3, file 128×65×3`));
  assert.match(tooltip, /two branches with different shapes; then\.x is 128×129×3/);
  assert.equal(shortenMiddle('abcdef', 5), 'ab…ef');
  assert.equal(shortenMiddle('abc', 5), 'abc');
});

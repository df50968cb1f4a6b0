/**
 * Name shortening for the tables: the shared prefix goes, the distinguishing part stays,
 * twins stay apart, and cuts fall on segment boundaries. Names as the real models have
 * them (Silero VAD v5's inlined If branches, RepVGG's reparameterized convolutions).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonNamePrefix, moduleOf, shortNameText, shortenNames } from '../../../src/shared/names';

/** Silero VAD v5's weight names: every tensor twice, once per branch of its If node. */
const SILERO = ['else', 'then'].flatMap((branch) => [
  `If_0_${branch}_branch__Inline_0__stft.forward_basis_buffer`,
  ...[0, 1, 2, 3].flatMap((layer) => [
    `If_0_${branch}_branch__Inline_0__encoder.${layer}.reparam_conv.weight`,
    `If_0_${branch}_branch__Inline_0__encoder.${layer}.reparam_conv.bias`,
  ]),
  `If_0_${branch}_branch__Inline_0__decoder.rnn.weight_ih`,
  `If_0_${branch}_branch__Inline_0__decoder.rnn.weight_hh`,
  `If_0_${branch}_branch__Inline_0__/decoder/rnn/Constant_12_output_0`,
  `If_0_${branch}_branch__Inline_0__0`,
]);

/** RepVGG: eight blocks whose names end alike. */
const REPVGG = [0, 1, 2, 3].flatMap((stage) =>
  [0, 1].map((block) => `backbone.stages.${stage}.blocks.${block}.reparam_conv.weight`),
);

function shown(names: readonly string[]): string[] {
  return shortenNames(names).names.map(shortNameText);
}

test('Silero v5: the shared If_0_ goes, each branch keeps its name and the end stays', () => {
  const result = shortenNames(SILERO);
  assert.equal(result.prefix, 'If_0_');
  const texts = result.names.map(shortNameText);
  assert.equal(texts[1], 'else_…encoder.0.reparam_conv.weight');
  assert.equal(texts[SILERO.length / 2 + 1], 'then_…encoder.0.reparam_conv.weight');
  assert.equal(texts[SILERO.length / 2 - 1], 'else_…0');
  // Every shortened name is still unique, and the full name is the prefix plus it with
  // the elided run put back.
  assert.equal(new Set(texts).size, SILERO.length);
  result.names.forEach((name, i) => {
    const full = SILERO[i]!;
    assert.ok(full.startsWith(result.prefix + name.lead.replace('…', '')), full);
    assert.ok(full.endsWith(name.rest), full);
  });
});

test('RepVGG: eight …reparam_conv.weight rows keep their stage and block', () => {
  const result = shortenNames(REPVGG);
  assert.equal(result.prefix, 'backbone.stages.');
  // The shared run after each stage (`blocks.`) is too short to elide.
  assert.deepEqual(result.names.map(shortNameText), [
    '0.blocks.0.reparam_conv.weight',
    '0.blocks.1.reparam_conv.weight',
    '1.blocks.0.reparam_conv.weight',
    '1.blocks.1.reparam_conv.weight',
    '2.blocks.0.reparam_conv.weight',
    '2.blocks.1.reparam_conv.weight',
    '3.blocks.0.reparam_conv.weight',
    '3.blocks.1.reparam_conv.weight',
  ]);
});

test('many near-identical names: a thousand layers differ in one digit run in the middle', () => {
  const names = Array.from(
    { length: 1000 },
    (_, i) => `model.decoder.layers.${i}.self_attn.q_proj.weight`,
  );
  const result = shortenNames(names);
  assert.equal(result.prefix, 'model.decoder.layers.');
  const texts = result.names.map(shortNameText);
  assert.equal(texts[0], '0.self_attn.q_proj.weight');
  assert.equal(texts[999], '999.self_attn.q_proj.weight');
  assert.equal(new Set(texts).size, 1000);
});

test('the prefix ends on a segment boundary, never inside a word or a number', () => {
  // Shared characters `layers.1` would cut 10/11/12 apart: the cut goes back to the dot.
  assert.equal(commonNamePrefix(['layers.10.w', 'layers.11.w', 'layers.12.w']), 'layers.');
  assert.equal(commonNamePrefix(['conv_first.weight', 'conv_final.weight']), 'conv_');
  assert.equal(commonNamePrefix(['/stft/Conv_w', '/stft/Constant_1']), '/stft/');
  assert.equal(commonNamePrefix(['encoder', 'encoder.weight']), '');
  assert.equal(commonNamePrefix(['a.b', 'a.b.c']), 'a.');
  assert.equal(commonNamePrefix(['weight', 'bias']), '');
  assert.equal(commonNamePrefix(['only.one.name']), '');
  assert.equal(commonNamePrefix([]), '');
});

test('names that share nothing, or a single name, are left whole', () => {
  assert.deepEqual(shown(['fc.weight', 'head.bias']), ['fc.weight', 'head.bias']);
  assert.deepEqual(shown(['lm_head.weight']), ['lm_head.weight']);
  // A twin group of one member is not elided.
  assert.deepEqual(shown(['x.a_long_shared_scope.w', 'y.other']), [
    'x.a_long_shared_scope.w',
    'y.other',
  ]);
});

test('modules come from dotted and slashed scopes', () => {
  assert.equal(moduleOf('encoder.0.reparam_conv.weight'), 'encoder.0.reparam_conv');
  assert.equal(
    moduleOf('If_0_else_branch__Inline_0__/stft/Constant_22_output_0'),
    'If_0_else_branch__Inline_0__/stft',
  );
  assert.equal(moduleOf('lm_head'), '');
  assert.equal(moduleOf('.hidden'), '');
});

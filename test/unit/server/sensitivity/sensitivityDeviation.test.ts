/** The output deviation metrics on values worked out by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { outputDeviation, softmaxKl } from '../../../../src/server/sensitivity/deviation';

const t = (values: number[], dims = [values.length]): ort.Tensor =>
  new ort.Tensor('float32', Float32Array.from(values), dims);

test('relative L2 and cosine distance, worst over the outputs', () => {
  const reference = { a: t([3, 4]), b: t([1, 0]) };
  const candidate = { a: t([3, 4]), b: t([0, 1]) };
  assert.equal(outputDeviation('relativeL2', reference, reference), 0);
  // b: ‖(1, −1)‖ / ‖(1, 0)‖ = √2
  assert.ok(Math.abs(outputDeviation('relativeL2', reference, candidate) - Math.SQRT2) < 1e-12);
  // b: orthogonal → 1 − 0
  assert.ok(Math.abs(outputDeviation('cosine', reference, candidate) - 1) < 1e-12);
  assert.ok(Math.abs(outputDeviation('cosine', [t([1, 1])], [t([2, 2])])) < 1e-12);
  // An output missing or of another shape counts as infinite.
  assert.equal(outputDeviation('relativeL2', reference, { a: t([3, 4]) }), Infinity);
  assert.equal(outputDeviation('relativeL2', [t([1, 2])], [t([1, 2], [2, 1])]), Infinity);
});

test('KL divergence of the softmax along the last axis, averaged over rows', () => {
  // Row 1: p = softmax(0, 0) = (½, ½), q = softmax(0, ln 3) = (¼, ¾):
  // KL = ½ ln(½/¼) + ½ ln(½/¾) = ½ ln 2 + ½ ln ⅔. Row 2 identical → 0.
  const expected = (0.5 * Math.log(2) + 0.5 * Math.log(2 / 3)) / 2;
  const p = t([0, 0, 5, 1], [2, 2]);
  const q = t([0, Math.log(3), 5, 1], [2, 2]);
  assert.ok(Math.abs(outputDeviation('kl', [p], [q]) - expected) < 1e-7);
  // Shifting logits changes nothing; one-element rows always give 0.
  assert.ok(softmaxKl([1, 2, 3], [101, 102, 103], 3) < 1e-12);
  assert.equal(outputDeviation('kl', [t([0.2], [1, 1])], [t([0.9], [1, 1])]), 0);
});

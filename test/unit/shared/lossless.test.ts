/** The model's lossless total (the table toolbar's "Packs losslessly to"), at known values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  modelPackEstimate,
  totalCompressibility,
  type TensorCompressibility,
} from '../../../src/shared/lossless';

function measured(index: number, rawBytes: number, packedBytes: number): TensorCompressibility {
  return {
    index,
    rawBytes,
    packedBytes,
    ratio: packedBytes / rawBytes,
    exponentEntropyBits: null,
    boundRatio: null,
  };
}

test('the total weighs each tensor by its bytes and leaves failed tensors out', () => {
  // Ratios 0.4 and 0.9 over 100 and 300 bytes: (40 + 270) / 400, not their mean 0.65.
  assert.deepEqual(
    totalCompressibility([
      measured(0, 100, 40),
      { index: 1, error: 'string tensor' },
      measured(2, 300, 270),
    ]),
    { rawBytes: 400, packedBytes: 310, ratio: 0.775 },
  );
});

test('nothing measured packs at ratio 1', () => {
  assert.deepEqual(totalCompressibility([]), { rawBytes: 0, packedBytes: 0, ratio: 1 });
  assert.deepEqual(totalCompressibility([{ index: 0, error: 'unreadable' }]), {
    rawBytes: 0,
    packedBytes: 0,
    ratio: 1,
  });
});

test('repeated chunks count once in the total; the rest of the file counts as it is', () => {
  const tie = { ...measured(1, 100, 40), repeatedBytes: 40 };
  const total = totalCompressibility([measured(0, 100, 40), tie]);
  assert.deepEqual(total, { rawBytes: 200, packedBytes: 40, ratio: 0.2 });
  assert.deepEqual(modelPackEstimate(total, 250), {
    modelBytes: 250,
    packedBytes: 90,
    ratio: 0.36,
  });
});

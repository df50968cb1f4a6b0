import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeScalar } from '../../../../src/server/analysis/decode';
import {
  dequantizeBlocks,
  quantizeBlocks,
  quantizeBlocksScalar,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  packNibbles,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  unpackNibbles,
  type MatrixLayout,
} from '../../../../src/server/compress/kernels';
import { jacobiSvd } from '../../../../src/server/analysis/jacobiSvd';
import {
  chooseRank,
  LowRankRefusal,
  lowRankFactors,
  multiplyFactors,
} from '../../../../src/server/compress/lowrank';
import { seededNormal } from '../../../../src/server/runtime/sampleInputs';

function randomMatrix(count: number, seed: number): Float32Array {
  const next = seededNormal(seed);
  return Float32Array.from({ length: count }, () => next());
}

function zeros(values: Float32Array): number {
  return values.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
}

test('magnitude pruning zeroes exactly ⌊s·n⌋ of the smallest magnitudes, ties by index', () => {
  const values = randomMatrix(10_007, 1);
  for (const s of [0, 0.1, 0.5, 0.9, 0.999]) {
    const pruned = pruneMagnitude(values, s);
    assert.equal(zeros(pruned), Math.floor(s * values.length), `sparsity ${s}`);
    const keptMin = Math.min(...pruned.filter((v) => v !== 0).map(Math.abs));
    const droppedMax = Math.max(0, ...values.filter((_, i) => pruned[i] === 0).map(Math.abs));
    assert.ok(droppedMax <= keptMin);
    pruned.forEach((v, i) => assert.ok(v === 0 || v === values[i]));
  }
  assert.deepEqual(pruneMagnitude(new Float32Array(8), 0), new Float32Array(8));
  const ties = pruneMagnitude(Float32Array.from([1, -1, 1, 2, -1, 3]), 0.5);
  assert.deepEqual(Array.from(ties), [0, 0, 0, 2, -1, 3]);
  assert.throws(() => pruneMagnitude(values, 1), RangeError);
  const withNaN = pruneMagnitude(Float32Array.from([NaN, 1, Infinity, -2]), 0.5);
  assert.ok(Number.isNaN(withNaN[0]) && withNaN[1] === 0 && withNaN[3] === 0);
});

test('N:M pruning keeps the n largest of each group along the input axis, both layouts', () => {
  const rows = 8;
  const cols = 6;
  const values = randomMatrix(rows * cols, 2);
  // [out=rows, in=cols]: groups along each row; the transposed copy must prune identically.
  const byRow = pruneNM(values, { rows, cols, inputAxis: 1 }, 2, 4);
  const transposed = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) transposed[c * rows + r] = values[r * cols + c]!;
  const byColumn = pruneNM(transposed, { rows: cols, cols: rows, inputAxis: 0 }, 2, 4);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) assert.equal(byRow[r * cols + c], byColumn[c * rows + r]);
    // Group [0,4) keeps 2; the partial group [4,6) has 2 ≤ n values and keeps both.
    const group = Array.from(byRow.subarray(r * cols, r * cols + 4));
    assert.equal(group.filter((v) => v !== 0).length, 2);
    const kept = Math.min(...group.filter((v) => v !== 0).map(Math.abs));
    const original = Array.from(values.subarray(r * cols, r * cols + 4)).map(Math.abs);
    assert.equal(original.filter((v) => v > kept).length, 1);
    assert.equal(byRow[r * cols + 4], values[r * cols + 4]);
  }
  assert.deepEqual(
    Array.from(pruneNM(Float32Array.from([1, 1, 1, 1]), { rows: 1, cols: 4, inputAxis: 1 }, 2, 4)),
    [1, 1, 0, 0],
  );
});

test('int8 per-channel: scale = max|w|/127 per output channel, error ≤ scale/2, round-half-even', () => {
  const layout: MatrixLayout = { rows: 64, cols: 48, inputAxis: 0 };
  const values = randomMatrix(64 * 48, 3);
  const quantized = quantizeInt8PerChannel(values, layout);
  assert.equal(quantized.scales.length, 48);
  const restored = dequantizeBlocks(quantized, layout);
  for (let i = 0; i < values.length; i++) {
    const scale = quantized.scales[i % 48]!;
    assert.ok(Math.abs(values[i]! - restored[i]!) <= scale / 2 + 1e-7);
    assert.ok(Math.abs(quantized.q[i]!) <= 127);
  }
  for (let c = 0; c < 48; c++) {
    let maxAbs = 0;
    for (let r = 0; r < 64; r++) maxAbs = Math.max(maxAbs, Math.abs(values[r * 48 + c]!));
    assert.equal(quantized.scales[c], Math.fround(maxAbs / 127));
  }
  assert.ok(relativeFrobeniusError(values, restored) < 0.01);
  // 2.5 and 0.5 steps round to even.
  const half = quantizeInt8PerChannel(Float32Array.from([127, 2.5, 0.5, -2.5]), {
    rows: 1,
    cols: 4,
    inputAxis: 1,
  });
  assert.deepEqual(Array.from(half.q), [127, 2, 0, -2]);
  const zero = quantizeInt8PerChannel(new Float32Array(4), { rows: 2, cols: 2, inputAxis: 1 });
  assert.deepEqual(Array.from(zero.scales), [1, 1]);
});

test('int4 blocks: one scale per channel and block along the input, same result in both layouts', () => {
  const rows = 96; // inputs: 3 blocks of 32
  const cols = 5;
  const values = randomMatrix(rows * cols, 4);
  const layout: MatrixLayout = { rows, cols, inputAxis: 0 };
  const quantized = quantizeInt4Blocks(values, layout, 32);
  assert.equal(quantized.blocks, 3);
  const transposed = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) transposed[c * rows + r] = values[r * cols + c]!;
  const other = quantizeInt4Blocks(transposed, { rows: cols, cols: rows, inputAxis: 1 }, 32);
  assert.deepEqual(other.scales, quantized.scales);
  const restored = dequantizeBlocks(quantized, layout);
  for (let i = 0; i < values.length; i++) {
    assert.ok(quantized.q[i]! >= -7 && quantized.q[i]! <= 7);
    const scale = quantized.scales[(i % cols) * 3 + Math.floor(Math.floor(i / cols) / 32)]!;
    assert.ok(Math.abs(values[i]! - restored[i]!) <= scale / 2 + 1e-7);
  }
  const err = relativeFrobeniusError(values, restored);
  assert.ok(err > 0.03 && err < 0.2, `int4 error ${err}`);
  // Partial last block: 40 inputs in blocks of 32 → 2 blocks.
  assert.equal(
    quantizeInt4Blocks(randomMatrix(40, 5), { rows: 1, cols: 40, inputAxis: 1 }, 32).blocks,
    2,
  );
});

test('nibble packing: low nibble first, signed and offset round trips', () => {
  const values = Int8Array.from([-8, 7, 0, -1, 3]);
  const packed = packNibbles(values);
  assert.deepEqual(Array.from(packed), [0x78, 0xf0, 0x03]);
  assert.deepEqual(unpackNibbles(packed, 5, true), values);
  const unsigned = packNibbles(values, 8);
  assert.deepEqual(Array.from(unsigned), [0xf0, 0x78, 0x0b]);
  assert.deepEqual(unpackNibbles(unsigned, 5, false, 8), values);
});

test('float16 and bfloat16 rounding: nearest even, subnormals, overflow, inf and NaN', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie → even (zero)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 ulp → even
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], // tie → even
    [1 + 3 * 2 ** -11, 0x3c02],
    [-0, 0x8000],
  ];
  const bits = float32ToFloat16Bits(Float32Array.from(cases.map(([x]) => x)));
  cases.forEach(([x, expected], i) => assert.equal(bits[i], expected, `${x}`));
  assert.ok(Number.isNaN(decodeScalar('float16', float32ToFloat16Bits(Float32Array.of(NaN))[0]!)));
  // Exhaustive: every half value converts back to its own bits.
  const halves = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) halves[h] = decodeScalar('float16', h);
  const back = float32ToFloat16Bits(halves);
  for (let h = 0; h < 65536; h++) {
    if (!Number.isNaN(halves[h]!)) assert.equal(back[h], h);
  }
  const bf = float32ToBfloat16Bits(
    Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, NaN]),
  );
  assert.deepEqual(Array.from(bf.subarray(0, 4)), [0x3f80, 0x3f80, 0x3f82, 0x7f80]);
  assert.ok(Number.isNaN(decodeScalar('bfloat16', bf[4]!)));
});

test('truncated SVD: full rank reconstructs, truncation error matches the dropped energy', async () => {
  for (const [rows, cols] of [
    [30, 20],
    [20, 30],
  ] as const) {
    const values = randomMatrix(rows * cols, 6);
    const svd = jacobiSvd(values, rows, cols);
    assert.equal(svd.singularValues.length, 20);
    const full = lowRankFactors(svd, 20);
    const rebuilt = await multiplyFactors(full.a, full.b, rows, 20, cols);
    assert.ok(relativeFrobeniusError(values, rebuilt) < 1e-6);
    const r = 5;
    const part = lowRankFactors(svd, r);
    const approx = await multiplyFactors(part.a, part.b, rows, r, cols);
    let total = 0;
    let dropped = 0;
    svd.singularValues.forEach((s, i) => {
      total += s * s;
      if (i >= r) dropped += s * s;
    });
    const err = relativeFrobeniusError(values, approx);
    assert.ok(Math.abs(err - Math.sqrt(dropped / total)) < 1e-5, `${err}`);
    for (let i = 1; i < svd.singularValues.length; i++) {
      assert.ok(svd.singularValues[i - 1]! >= svd.singularValues[i]!);
    }
  }
});

test('rank choice: energy target, and refusal of ranks that save nothing', () => {
  const values = randomMatrix(40 * 40, 7);
  const svd = jacobiSvd(values, 40, 40);
  assert.equal(chooseRank(svd, { rank: 5 }), 5);
  const r = chooseRank(svd, { energy: 0.5 });
  let kept = 0;
  let total = 0;
  svd.singularValues.forEach((s, i) => {
    total += s * s;
    if (i < r) kept += s * s;
  });
  assert.ok(kept / total >= 0.5 - 1e-12);
  assert.throws(() => chooseRank(svd, { rank: 20 }), LowRankRefusal);
  assert.equal(chooseRank(svd, { rank: 19 }), 19);
  assert.throws(() => chooseRank(svd, { energy: 1 }), /largest rank that saves is 19/);
});

test('SIMD quantization matches the scalar code bit for bit (both layouts, partial blocks, tiny and zero blocks)', () => {
  const cases: [number, number, 0 | 1, number, number][] = [
    [96, 37, 0, 32, 7],
    [37, 96, 1, 32, 7],
    [64, 48, 0, 64, 127],
    [48, 200, 1, 200, 127],
    [130, 17, 1, 16, 7],
  ];
  for (const [rows, cols, inputAxis, blockSize, qmax] of cases) {
    const values = randomMatrix(rows * cols, rows + cols);
    values.fill(0, 0, 40); // an all-zero block
    values[45] = 1e-42; // a subnormal
    values[50] = 2.5 * 0.01; // ties and exact multiples appear with round scales
    const layout: MatrixLayout = { rows, cols, inputAxis };
    const simd = quantizeBlocks(values, layout, blockSize, qmax);
    const scalar = quantizeBlocksScalar(values, layout, blockSize, qmax);
    assert.deepEqual(simd.scales, scalar.scales, `${rows}×${cols} axis ${inputAxis}`);
    assert.deepEqual(simd.q, scalar.q, `${rows}×${cols} axis ${inputAxis}`);
  }
});

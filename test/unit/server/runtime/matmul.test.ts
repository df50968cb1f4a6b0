import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MatMulRuntime } from '../../../../src/server/runtime/matmul';
import { chooseProvider, describeProvider } from '../../../../src/server/runtime/providers';
import { gaussianMatrix, maxDifference } from '../../../support/matrices';

const runtime = new MatMulRuntime('cpu');
after(() => runtime.dispose());

/** alpha·op(A)·op(B) + beta·C by definition. */
function reference(
  a: Float64Array,
  aRows: number,
  aCols: number,
  b: Float64Array,
  bRows: number,
  bCols: number,
  options: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number; c?: Float64Array },
): Float64Array {
  const m = options.transA ? aCols : aRows;
  const k = options.transA ? aRows : aCols;
  const n = options.transB ? bRows : bCols;
  const at = (i: number, p: number) => (options.transA ? a[p * aCols + i]! : a[i * aCols + p]!);
  const bt = (p: number, j: number) => (options.transB ? b[j * bCols + p]! : b[p * bCols + j]!);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += at(i, p) * bt(p, j);
      out[i * n + j] =
        (options.alpha ?? 1) * sum + (options.c ? (options.beta ?? 1) * options.c[i * n + j]! : 0);
    }
  }
  return out;
}

test('Gemm on onnxruntime: transposes, scaling and accumulation, float64 and float32', async () => {
  const a = gaussianMatrix(7, 5, 1);
  const b = gaussianMatrix(7, 4, 2);
  const c = gaussianMatrix(5, 4, 3);
  const options = { transA: true, alpha: -0.5, beta: 2, c };
  const expected = reference(a, 7, 5, b, 7, 4, options);
  const double = await runtime.gemm(
    { rows: 7, cols: 5, data: a },
    { rows: 7, cols: 4, data: b },
    options,
  );
  assert.deepEqual([double.rows, double.cols], [5, 4]);
  assert.ok(double.data instanceof Float64Array);
  assert.ok(maxDifference(double.data, expected, 20) < 1e-12);
  const single = await runtime.gemm(
    { rows: 7, cols: 5, data: Float32Array.from(a) },
    { rows: 7, cols: 4, data: Float32Array.from(b) },
    { ...options, c: Float32Array.from(c) },
  );
  assert.ok(single.data instanceof Float32Array);
  assert.ok(maxDifference(single.data, expected, 20) < 1e-5);

  const bt = gaussianMatrix(3, 5, 4);
  const product = await runtime.gemm(
    { rows: 7, cols: 5, data: a },
    { rows: 3, cols: 5, data: bt },
    { transB: true },
  );
  assert.ok(
    maxDifference(product.data, reference(a, 7, 5, bt, 3, 5, { transB: true }), 21) < 1e-12,
  );
});

test('Gemm writes into a pre-allocated output and checks its size and the inner dimensions', async () => {
  const a = gaussianMatrix(6, 6, 5);
  const output = new Float64Array(36);
  const result = await runtime.gemm(
    { rows: 6, cols: 6, data: a },
    { rows: 6, cols: 6, data: a },
    { output },
  );
  assert.equal(result.data, output);
  assert.ok(maxDifference(output, reference(a, 6, 6, a, 6, 6, {}), 36) < 1e-12);
  await assert.rejects(
    runtime.gemm(
      { rows: 6, cols: 6, data: a },
      { rows: 6, cols: 6, data: a },
      { output: new Float64Array(5) },
    ),
    /output holds 5 values, not 36/,
  );
  await assert.rejects(
    runtime.gemm(
      { rows: 2, cols: 3, data: new Float64Array(6) },
      { rows: 2, cols: 3, data: new Float64Array(6) },
    ),
    /inner dimensions differ \(3 and 2\)/,
  );
});

test('Gemm accumulates in place when the output is C itself (the band reduction relies on it)', async () => {
  for (const [m, n, k] of [
    [7, 5, 3],
    [300, 260, 64],
  ] as const) {
    const a = gaussianMatrix(m, k, m);
    const b = gaussianMatrix(n, k, n);
    const c = gaussianMatrix(m, n, k);
    const expected = reference(a, m, k, b, n, k, { transB: true, alpha: -1, beta: 1, c });
    for (const Element of [Float64Array, Float32Array]) {
      const inPlace = Element.from(c);
      const result = await runtime.gemm(
        { rows: m, cols: k, data: Element.from(a) },
        { rows: n, cols: k, data: Element.from(b) },
        { transB: true, alpha: -1, beta: 1, c: inPlace, output: inPlace },
      );
      assert.equal(result.data, inPlace);
      const tolerance = Element === Float64Array ? 1e-11 : 1e-4;
      assert.ok(maxDifference(inPlace, expected, m * n) < tolerance, `${Element.name} ${m}×${n}`);
    }
  }
});

test('transpose and the block-row Gram matrix A·Aᵀ against the definition', async () => {
  const a = gaussianMatrix(5, 3, 12);
  const transposed = await runtime.transpose({ rows: 5, cols: 3, data: a });
  assert.deepEqual([transposed.rows, transposed.cols], [3, 5]);
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 3; j++) assert.equal(transposed.data[j * 5 + i], a[i * 3 + j]);
  }
  const output = new Float32Array(15);
  await runtime.transpose({ rows: 5, cols: 3, data: Float32Array.from(a) }, output);
  assert.equal(output[2 * 5 + 4], Math.fround(a[4 * 3 + 2]!));
  await assert.rejects(
    runtime.transpose({ rows: 5, cols: 3, data: a }, new Float64Array(4)),
    /output holds 4 values, not 15/,
  );
  // Sides that the blocks do not divide, one block, more blocks than rows.
  for (const [n, k, blocks] of [
    [37, 20, 4],
    [64, 9, 8],
    [5, 7, 1],
    [3, 4, 8],
  ] as const) {
    const w = gaussianMatrix(n, k, n + k);
    const expected = reference(w, n, k, w, n, k, { transB: true });
    const double = await runtime.gramOfRows({ rows: n, cols: k, data: w }, blocks);
    assert.deepEqual([double.rows, double.cols], [n, n]);
    assert.ok(maxDifference(double.data, expected, n * n) < 1e-12, `${n} × ${k}, ${blocks}`);
    const single = await runtime.gramOfRows(
      { rows: n, cols: k, data: Float32Array.from(w) },
      blocks,
    );
    assert.ok(single.data instanceof Float32Array);
    assert.ok(maxDifference(single.data, expected, n * n) < 1e-4);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) assert.equal(single.data[i * n + j], single.data[j * n + i]);
    }
  }
});

test('symmetricProduct: C − [V W]·[W V]ᵀ in place, from the lower triangle’s products', async () => {
  for (const [n, k, blocks] of [
    [41, 6, 4],
    [30, 3, 7],
  ] as const) {
    const v = gaussianMatrix(n, k, 3);
    const w = gaussianMatrix(n, k, 4);
    const left = new Float64Array(n * 2 * k);
    const right = new Float64Array(n * 2 * k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) {
        left[i * 2 * k + j] = right[i * 2 * k + k + j] = v[i * k + j]!;
        left[i * 2 * k + k + j] = right[i * 2 * k + j] = w[i * k + j]!;
      }
    }
    const g = gaussianMatrix(n, n, 5);
    const c = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) c[i * n + j] = g[i * n + j]! + g[j * n + i]!;
    }
    const expected = reference(left, n, 2 * k, right, n, 2 * k, {
      transB: true,
      alpha: -1,
      beta: 1,
      c,
    });
    const inPlace = c.slice();
    const result = await runtime.symmetricProduct(
      { rows: n, cols: 2 * k, data: left },
      { rows: n, cols: 2 * k, data: right },
      { alpha: -1, c: inPlace, blocks },
    );
    assert.equal(result.data, inPlace);
    assert.ok(maxDifference(inPlace, expected, n * n) < 1e-12);
    // C read from the trailing block of a larger matrix, the result compacted elsewhere.
    const offset = 3;
    const stride = n + offset;
    const larger = new Float64Array(stride * stride).fill(Number.NaN);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) larger[(offset + i) * stride + offset + j] = c[i * n + j]!;
    }
    const compacted = new Float64Array(n * n);
    await runtime.symmetricProduct(
      { rows: n, cols: 2 * k, data: left },
      { rows: n, cols: 2 * k, data: right },
      { alpha: -1, from: { data: larger, stride, offset }, c: compacted, blocks },
    );
    assert.ok(maxDifference(compacted, expected, n * n) < 1e-12);
  }
  await assert.rejects(
    runtime.symmetricProduct(
      { rows: 4, cols: 2, data: new Float64Array(8) },
      { rows: 3, cols: 2, data: new Float64Array(6) },
    ),
    /4 × 2 and 3 × 2 differ/,
  );
  await assert.rejects(
    runtime.symmetricProduct(
      { rows: 2, cols: 1, data: new Float64Array(2) },
      { rows: 2, cols: 1, data: new Float64Array(2) },
      { from: { data: new Float64Array(4), stride: 2, offset: 0 } },
    ),
    /`from` needs `c`/,
  );
});

test('the compute backend: cpu as asked, or cpu with the reason', () => {
  assert.deepEqual(chooseProvider('cpu'), { provider: 'cpu', fallback: null });
  const dml = chooseProvider('dml');
  assert.equal(dml.provider, 'cpu');
  assert.match(dml.fallback!, /^dml not available in this onnxruntime, which offers cpu/);
  assert.equal(describeProvider(dml, 'detail'), `cpu (detail); ${dml.fallback}`);
  assert.equal(new MatMulRuntime('cpu').provider.fallback, null);
});

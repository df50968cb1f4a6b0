import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { jacobiSingularValues } from '../../../../src/server/analysis/jacobiSvd';
import {
  computeSpectrumInThread,
  gramDiagonal,
  resolveMethod,
  tensorMatrices,
} from '../../../../src/server/analysis/spectrum';
import {
  bandToTridiagonal,
  bandToTridiagonalPortable,
  factorPanel,
  panelQr,
  reduceToBand,
  symmetricEigenvalues,
  tridiagonalEigenvalues,
  tridiagonalEigenvaluesQl,
  wasmBandReductionLoaded,
  wasmPanelQrLoaded,
  wasmTridiagonalLoaded,
} from '../../../../src/server/analysis/symmetricEigen';
import {
  computeTensorSpectrum,
  disposeSpectrumWorker,
} from '../../../../src/server/jobs/computeSpectrum';
import { MatMulRuntime } from '../../../../src/server/runtime/matmul';
import { chooseProvider } from '../../../../src/server/runtime/providers';
import { MAX_FULL_SPECTRUM_SIDE } from '../../../../src/shared/limits';
import {
  gaussian,
  gaussianMatrix,
  matrixWithSpectrum,
  maxDifference,
  orthonormalColumns,
} from '../../../support/matrices';

const runtime = new MatMulRuntime('cpu');
after(async () => {
  disposeSpectrumWorker();
  await runtime.dispose();
});

const descending = (values: number[]) => [...values].sort((a, b) => b - a);

/** AᵀA of an n × n Gaussian A. */
function gramOf(n: number, seed: number) {
  const a = gaussianMatrix(n, n, seed);
  return runtime.gemm(
    { rows: n, cols: n, data: a },
    { rows: n, cols: n, data: a },
    { transA: true },
  );
}

describe('one-sided Jacobi reference', () => {
  test('a diagonal matrix has the absolute diagonal as singular values', () => {
    const rows = 5;
    const cols = 3;
    const w = new Float64Array(rows * cols);
    [2, -7, 0.5].forEach((value, i) => (w[i * cols + i] = value));
    assert.deepEqual(Array.from(jacobiSingularValues(w, rows, cols)), [7, 2, 0.5]);
  });

  test('matches a prescribed spectrum to rounding, tall and wide', () => {
    const sigma = [10, 5, 3, 1, 0.25, 1e-3];
    const w = matrixWithSpectrum(9, 6, sigma, 11);
    assert.ok(maxDifference(jacobiSingularValues(w, 9, 6), sigma, 6) < 1e-13);
    const transposed = new Float64Array(54);
    for (let i = 0; i < 9; i++) for (let j = 0; j < 6; j++) transposed[j * 9 + i] = w[i * 6 + j]!;
    assert.ok(maxDifference(jacobiSingularValues(transposed, 6, 9), sigma, 6) < 1e-13);
  });
});

describe('symmetric eigenvalues in two stages', () => {
  // Sizes around the band width, odd sizes, and band widths of 1 (already tridiagonal).
  for (const [n, nb] of [
    [1, 4],
    [2, 4],
    [5, 4],
    [37, 8],
    [64, 16],
    [101, 16],
    [40, 1],
  ] as const) {
    test(`n = ${n}, band ${nb}: eigenvalues of AᵀA are the squared singular values`, async () => {
      const a = gaussianMatrix(n + 3, n, 100 + n);
      const gram = await runtime.gemm(
        { rows: n + 3, cols: n, data: a },
        { rows: n + 3, cols: n, data: a },
        { transA: true },
      );
      const eigenvalues = await symmetricEigenvalues(runtime, gram, nb, () => {});
      const sigma = jacobiSingularValues(a, n + 3, n);
      const expected = Array.from(sigma, (s) => s * s);
      assert.equal(eigenvalues.length, n);
      assert.ok(maxDifference(eigenvalues, expected, n) < 1e-11 * expected[0]!);
    });
  }

  test('the band stage leaves nothing outside the band and keeps the trace', async () => {
    const n = 50;
    const nb = 6;
    const gram = await gramOf(n, 5);
    let trace = 0;
    for (let i = 0; i < n; i++) trace += gram.data[i * n + i]!;
    // The reduction works in the Gram matrix's own buffer.
    const band = await reduceToBand(runtime, gram, nb, () => {});
    let bandTrace = 0;
    for (let i = 0; i < n; i++) bandTrace += band.data[i * band.width]!;
    assert.ok(Math.abs(trace - bandTrace) < 1e-10 * trace);
    for (let c = 0; c < n; c++) {
      for (let d = nb + 1; d < band.width && c + d < n; d++) {
        assert.equal(band.data[c * band.width + d], 0, `entry (${c + d}, ${c})`);
      }
    }
    const { diagonal, offDiagonal } = bandToTridiagonal(band, nb, () => {});
    let tridiagonalTrace = 0;
    for (const value of diagonal) tridiagonalTrace += value;
    assert.ok(Math.abs(trace - tridiagonalTrace) < 1e-10 * trace);
    assert.equal(offDiagonal.length, n - 1);
  });

  test('the WebAssembly bulge chase gives the TypeScript one’s tridiagonal form', async () => {
    const n = 90;
    const nb = 8;
    const gram = await gramOf(n, 9);
    const band = await reduceToBand(runtime, gram, nb, () => {});
    const copy = { ...band, data: band.data.slice() };
    assert.ok(wasmBandReductionLoaded(), 'the module loads (built from source on demand)');
    const wasm = bandToTridiagonal(band, nb, () => {});
    const portable = bandToTridiagonalPortable(copy, nb, () => {});
    const scale = Math.max(...Array.from(portable.diagonal, Math.abs));
    // The same steps, summed in a different order (SIMD pairs): equal to rounding.
    assert.ok(maxDifference(wasm.diagonal, portable.diagonal, n) < 1e-9 * scale);
    const magnitudes = (values: Float64Array) => Array.from(values, Math.abs);
    assert.ok(
      maxDifference(magnitudes(wasm.offDiagonal), magnitudes(portable.offDiagonal), n - 1) <
        1e-9 * scale,
    );
    const eigenvalues = tridiagonalEigenvalues(wasm.diagonal, wasm.offDiagonal);
    const reference = tridiagonalEigenvalues(portable.diagonal, portable.offDiagonal);
    assert.ok(maxDifference(eigenvalues, reference, n) < 1e-12 * reference[0]!);
  });

  test('panel QR: Q·R is the panel, Q = I − V·T·Vᵀ orthogonal; WebAssembly = TypeScript', () => {
    for (const [m, nb] of [
      [45, 8],
      [6, 8],
      [33, 32],
    ] as const) {
      const panel = gaussianMatrix(m, nb, m * 100 + nb);
      // A zero column below the diagonal: its reflector is the identity (τ = 0).
      for (let i = 2; i < m; i++) panel[1 * m + i] = 0;
      for (const round32 of [false, true]) {
        assert.ok(wasmPanelQrLoaded(), 'the module loads (built from source on demand)');
        const r = panel.slice();
        const wasm = factorPanel(r, m, nb, round32);
        const vectors = wasm.vectors.slice();
        const t = wasm.t.slice();
        const rPortable = panel.slice();
        const portable = panelQr(rPortable, m, nb, round32 ? Math.fround : (x) => x);
        assert.equal(wasm.count, Math.min(m, nb));
        assert.ok(maxDifference(vectors, portable.vectors, vectors.length) < 1e-14);
        assert.ok(maxDifference(t, portable.t, t.length) < 1e-13);
        assert.ok(maxDifference(r, rPortable, r.length) < 1e-12);
        const count = wasm.count;
        // Q (m × m) by definition, from the vectors and T as returned.
        const q = new Float64Array(m * m);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) {
            let sum = 0;
            for (let p = 0; p < count; p++) {
              for (let s = 0; s < count; s++) {
                sum += vectors[p * m + i]! * t[p * count + s]! * vectors[s * m + j]!;
              }
            }
            q[i * m + j] = (i === j ? 1 : 0) - sum;
          }
        }
        if (round32) {
          for (const value of vectors) assert.equal(value, Math.fround(value));
        }
        let orthogonality = 0;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) {
            let sum = 0;
            for (let p = 0; p < m; p++) sum += q[p * m + i]! * q[p * m + j]!;
            orthogonality = Math.max(orthogonality, Math.abs(sum - (i === j ? 1 : 0)));
          }
        }
        assert.ok(orthogonality < 1e-13, `QᵀQ − I: ${orthogonality}`);
        // Q·R reproduces the panel: exactly for float64 vectors, to float32 rounding else.
        let residual = 0;
        for (let i = 0; i < m; i++) {
          for (let c = 0; c < nb; c++) {
            let sum = 0;
            for (let p = 0; p <= Math.min(c, m - 1); p++) sum += q[i * m + p]! * r[c * m + p]!;
            residual = Math.max(residual, Math.abs(sum - panel[c * m + i]!));
            if (i > c) assert.equal(r[c * m + i], 0);
          }
        }
        assert.ok(residual < (round32 ? 1e-5 : 1e-12), `‖QR − panel‖: ${residual}`);
      }
    }
  });

  test('float32 reduction: random, ill-conditioned and rank-deficient Gram matrices', async () => {
    const n = 300;
    const rows = n + 20;
    /** σ of W from its float32 Gram matrix reduced in float32, against float64 Jacobi. */
    const errors = async (w: Float32Array) => {
      const reference = jacobiSingularValues(w, rows, n);
      const gram = await runtime.gemm(
        { rows, cols: n, data: w },
        { rows, cols: n, data: w },
        { transA: true },
      );
      assert.ok(gram.data instanceof Float32Array);
      const eigenvalues = await symmetricEigenvalues(runtime, gram, 16, () => {});
      const sigma = eigenvalues.map((value) => Math.sqrt(Math.max(0, value)));
      return { sigma, reference, error: maxDifference(sigma, reference, n) / reference[0]! };
    };
    const random = await errors(Float32Array.from(gaussianMatrix(rows, n, 7)));
    assert.ok(random.error < 1e-5, `random: ${random.error}`);
    // σ from 1 down to 1e-6: the float32 Gram matrix itself limits the smallest values to
    // about √ε₃₂·σ₁; the reduction adds little to that.
    const spread = Array.from({ length: n }, (_, i) => 10 ** ((-6 * i) / (n - 1)));
    const ill = await errors(Float32Array.from(matrixWithSpectrum(rows, n, spread, 8)));
    assert.ok(ill.error < 2e-4, `ill-conditioned: ${ill.error}`);
    const rank = 40;
    const leading = Array.from({ length: rank }, (_, i) => 5 - i / 10);
    const deficient = await errors(Float32Array.from(matrixWithSpectrum(rows, n, leading, 9)));
    assert.ok(maxDifference(deficient.sigma, leading, rank) < 1e-4 * 5);
    assert.ok(deficient.sigma[rank]! < 3e-3 * 5, `σ_{r+1} = ${deficient.sigma[rank]}`);
  });

  test('tridiagonal QL: the 1-2-1 matrix has eigenvalues 2 − 2cos(kπ/(n+1))', () => {
    const n = 30;
    const values = tridiagonalEigenvalues(
      new Float64Array(n).fill(2),
      new Float64Array(n - 1).fill(-1),
    );
    const expected = descending(
      Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))),
    );
    assert.ok(maxDifference(values, expected, n) < 1e-13);
  });

  test('a cancelled check stops the computation', async () => {
    const gram = await gramOf(60, 3);
    await assert.rejects(
      symmetricEigenvalues(runtime, gram, 8, () => {
        throw new Error('stop');
      }),
      /stop/,
    );
  });
});

describe('tridiagonal eigenvalues', () => {
  /** Eigenvalues 2 − 2cos(kπ/(n+1)) of the n × n 1-2-1 matrix, descending. */
  const oneTwoOne = (n: number) =>
    descending(
      Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))),
    );

  /**
   * Float64 reference by one-sided Jacobi on the dense T + c·I, c = ‖T‖₁ + 1 (positive
   * definite, so its singular values are λ + c).
   */
  function jacobiReference(d: Float64Array, e: Float64Array): number[] {
    const n = d.length;
    let norm = 0;
    for (let i = 0; i < n; i++) {
      norm = Math.max(norm, Math.abs(d[i]!) + Math.abs(e[i] ?? 0) + Math.abs(e[i - 1] ?? 0));
    }
    const c = norm + 1;
    const dense = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      dense[i * n + i] = d[i]! + c;
      if (i + 1 < n) dense[i * n + i + 1] = dense[(i + 1) * n + i] = e[i]!;
    }
    return Array.from(jacobiSingularValues(dense, n, n), (value) => value - c);
  }

  /** max over i of |d| + 2|e|. */
  const normOf = (d: Float64Array, e: Float64Array) =>
    d.reduce((worst, value, i) => Math.max(worst, Math.abs(value) + 2 * Math.abs(e[i] ?? 0)), 0);

  /** The WebAssembly routine within tolerance·‖T‖ of the TypeScript QL, and near the Jacobi reference. */
  function agrees(d: Float64Array, e: Float64Array, tolerance: number): void {
    const n = d.length;
    const values = tridiagonalEigenvalues(d, e);
    const scale = normOf(d, e);
    const ql = maxDifference(values, tridiagonalEigenvaluesQl(d, e), n);
    const jacobi = maxDifference(values, jacobiReference(d, e), n);
    assert.ok(ql <= tolerance * scale, `against QL: ${ql / scale}·‖T‖`);
    // Jacobi's own error grows with n and with its shift c.
    assert.ok(jacobi <= 1e-12 * scale, `against Jacobi: ${jacobi / scale}·‖T‖`);
  }

  test('the 1-2-1 matrix: 2 − 2cos(kπ/(n+1)), at any scale and either sign of e', () => {
    assert.ok(wasmTridiagonalLoaded(), 'the module loads (built from source on demand)');
    for (const n of [3, 4, 17, 500]) {
      const expected = oneTwoOne(n);
      for (const [scale, sign] of [
        [1, -1],
        [1, 1],
        [1e200, -1],
        [1e-200, 1],
        [3, -1],
      ] as const) {
        const values = tridiagonalEigenvalues(
          new Float64Array(n).fill(2 * scale),
          new Float64Array(n - 1).fill(sign * scale),
        );
        const error = maxDifference(
          values,
          expected.map((value) => value * scale),
          n,
        );
        assert.ok(error <= 1e-14 * 4 * scale, `n = ${n}, scale ${scale}: ${error / scale}`);
      }
    }
  });

  test('random: as the TypeScript QL and a float64 Jacobi reference', () => {
    for (const [n, seed] of [
      [5, 1],
      [64, 2],
      [301, 3],
    ] as const) {
      const next = gaussian(seed);
      const d = Float64Array.from({ length: n }, next);
      const e = Float64Array.from({ length: n - 1 }, next);
      agrees(d, e, 1e-13);
    }
  });

  test('graded, clustered and Wilkinson’s W21+ matrices', () => {
    const n = 160;
    // Graded over 16 orders of magnitude, both ways.
    const graded = Float64Array.from({ length: n }, (_, i) => 10 ** (-i / 10));
    const gradedOff = Float64Array.from({ length: n - 1 }, (_, i) => 0.3 * 10 ** (-(i + 0.5) / 10));
    agrees(graded, gradedOff, 1e-13);
    agrees(graded.slice().reverse(), gradedOff.slice().reverse(), 1e-13);
    // A tight cluster: all eigenvalues within 1e-8 of 1.
    const next = gaussian(7);
    const cluster = Float64Array.from({ length: n }, () => 1 + 1e-9 * next());
    const clusterOff = Float64Array.from({ length: n - 1 }, () => 1e-9 * next());
    agrees(cluster, clusterOff, 1e-14);
    // W21+: d = |10 − i|, e = 1; its largest eigenvalues come in pairs 1e-14 … 1e-7 apart.
    const w = Float64Array.from({ length: 21 }, (_, i) => Math.abs(10 - i));
    agrees(w, new Float64Array(20).fill(1), 1e-14);
    const values = tridiagonalEigenvalues(w, new Float64Array(20).fill(1));
    assert.ok(Math.abs(values[0]! - 10.746194182903393) < 1e-12, `${values[0]}`);
    assert.ok(values[0]! - values[1]! > 0 && values[0]! - values[1]! < 1e-12);
  });

  test('zeros on the off-diagonal split the matrix; 0 × 0, 1 × 1, 2 × 2 and zero matrices', () => {
    const sizes = [1, 2, 3, 50, 1, 7];
    const d: number[] = [];
    const e: number[] = [];
    const expected: number[] = [];
    sizes.forEach((size, block) => {
      if (block > 0) e.push(0);
      for (let i = 0; i < size; i++) d.push(2 * (block + 1));
      for (let i = 0; i + 1 < size; i++) e.push(-(block + 1));
      expected.push(...oneTwoOne(size).map((value) => value * (block + 1)));
    });
    const values = tridiagonalEigenvalues(Float64Array.from(d), Float64Array.from(e));
    assert.ok(maxDifference(values, descending(expected), d.length) < 1e-13 * 24);
    agrees(Float64Array.from(d), Float64Array.from(e), 1e-13);

    assert.equal(tridiagonalEigenvalues(new Float64Array(0), new Float64Array(0)).length, 0);
    assert.deepEqual(
      Array.from(tridiagonalEigenvalues(Float64Array.of(-3), new Float64Array(0))),
      [-3],
    );
    // [[1, 2], [2, 1]]: 3 and −1.
    const pair = tridiagonalEigenvalues(Float64Array.of(1, 1), Float64Array.of(2));
    assert.ok(maxDifference(pair, [3, -1], 2) < 1e-15);
    assert.deepEqual(
      Array.from(tridiagonalEigenvalues(new Float64Array(9), new Float64Array(8))),
      [0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
  });

  test('a cancelled check stops it between slices of eigenvalues', () => {
    let calls = 0;
    assert.throws(
      () =>
        tridiagonalEigenvalues(
          new Float64Array(600).fill(2),
          new Float64Array(599).fill(-1),
          () => {
            if (++calls === 2) throw new Error('stop');
          },
        ),
      /stop/,
    );
    assert.equal(calls, 2);
  });
});

describe('tensor spectra', () => {
  // 200 × 260 goes the Gram route (onnxruntime + two stages); small ones go Jacobi.
  const rows = 200;
  const cols = 260;

  test('diagonal: the singular values are the sorted magnitudes, both precisions', async () => {
    const w = new Float32Array(rows * cols);
    const diagonal = Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? -1 : 1) * (1 + i / 7));
    diagonal.forEach((value, i) => (w[i * cols + i] = value));
    const expected = descending(diagonal.map((value) => Math.abs(Math.fround(value))));
    for (const precision of ['float32', 'float64'] as const) {
      const result = await computeSpectrumInThread(w, [rows, cols], { precision });
      assert.match(result.backend, /onnxruntime/);
      assert.equal(result.singularValues.length, rows);
      const tolerance = precision === 'float32' ? 1e-4 : 1e-10;
      assert.ok(maxDifference(result.singularValues, expected, rows) < tolerance * expected[0]!);
    }
  });

  test('orthogonal: every singular value is 1', async () => {
    const n = 240;
    const q = orthonormalColumns(n, n, 21);
    for (const precision of ['float32', 'float64'] as const) {
      const result = await computeSpectrumInThread(Float32Array.from(q), [n, n], { precision });
      const worst = Math.max(...Array.from(result.singularValues, (s) => Math.abs(s - 1)));
      // float32 storage of Q itself is off by ~1e-7 per entry.
      assert.ok(worst < 1e-5, `${precision}: ${worst}`);
    }
    const exact = await computeSpectrumInThread(q, [n, n], { precision: 'float64' });
    assert.ok(Math.max(...Array.from(exact.singularValues, (s) => Math.abs(s - 1))) < 1e-10);
  });

  test('all zeros: every singular value is 0, with no products; one non-zero value is not skipped', async () => {
    const zeros = new Float32Array(rows * cols);
    for (const options of [{}, { method: 'topk' as const, k: 20 }]) {
      const result = await computeSpectrumInThread(zeros, [rows, cols], options);
      assert.equal(result.singularValues.length, options.k ?? rows);
      assert.ok(result.singularValues.every((value) => value === 0));
      assert.equal(result.frobeniusSquared, 0);
      assert.match(result.backend, /all values zero/);
    }
    zeros[5 * cols + 9] = -3;
    const one = await computeSpectrumInThread(zeros, [rows, cols]);
    assert.ok(Math.abs(one.singularValues[0]! - 3) < 1e-5);
    assert.match(one.backend, /onnxruntime/);
  });

  test('exact rank r: the values beyond r vanish', async () => {
    const r = 7;
    const sigma = [9, 8, 6, 5, 3, 2, 1];
    const w = matrixWithSpectrum(rows, cols, sigma, 31);
    const result = await computeSpectrumInThread(w, [rows, cols], { precision: 'float64' });
    assert.ok(maxDifference(result.singularValues, sigma, r) < 1e-10 * 9);
    // The Gram route squares the condition number: zero values come out near √ε·σ₁.
    assert.ok(result.singularValues[r]! < 1e-6 * 9, `σ_{r+1} = ${result.singularValues[r]}`);
    const single = await computeSpectrumInThread(Float32Array.from(w), [rows, cols]);
    assert.ok(maxDifference(single.singularValues, sigma, r) < 1e-4 * 9);
    assert.ok(single.singularValues[r]! < 3e-3 * 9);
  });

  test('random: float32 within 1e-4·σ₁ and float64 within 1e-10·σ₁ of the float64 reference', async () => {
    for (const [m, n] of [
      [rows, cols],
      [cols, rows],
    ] as const) {
      const w = Float32Array.from(gaussianMatrix(m, n, m * 7 + n));
      const reference = jacobiSingularValues(w, m, n);
      const single = await computeSpectrumInThread(w, [m, n], { precision: 'float32' });
      const double = await computeSpectrumInThread(w, [m, n], { precision: 'float64' });
      const side = Math.min(m, n);
      assert.ok(maxDifference(single.singularValues, reference, side) < 1e-4 * reference[0]!);
      assert.ok(maxDifference(double.singularValues, reference, side) < 1e-10 * reference[0]!);
      assert.ok(
        Math.abs(double.frobeniusSquared - reference.reduce((s, x) => s + x * x, 0)) <
          1e-9 * double.frobeniusSquared,
      );
      assert.deepEqual(
        [single.rows, single.cols, single.method, single.conv],
        [m, n, 'full', null],
      );
    }
  });

  test('the Gram diagonal is summed in float64: squared norms of the rows (wide) or columns (tall)', () => {
    const w = Float32Array.from(gaussianMatrix(5, 7, 61));
    const rowNorms = gramDiagonal({ rows: 5, cols: 7, values: w });
    const columnNorms = gramDiagonal({ rows: 7, cols: 5, values: w });
    assert.equal(rowNorms.length, 5);
    assert.equal(columnNorms.length, 5);
    for (let i = 0; i < 5; i++) {
      let row = 0;
      for (let c = 0; c < 7; c++) row += w[i * 7 + c]! ** 2;
      let column = 0;
      for (let r = 0; r < 7; r++) column += w[r * 5 + i]! ** 2;
      assert.ok(Math.abs(rowNorms[i]! - row) <= 1e-15 * row);
      assert.ok(Math.abs(columnNorms[i]! - column) <= 1e-15 * column);
    }
  });

  test('float32: a singular value of 1.5e-4·σ₁ over a long side stays within 1e-4·σ₁', async () => {
    // The last row is nearly the sum of the others. Summed in float32 over 40000 positive
    // terms, the Gram matrix's diagonal would be off by about σ_min², and σ_min come out 0.
    const [m, k] = [128, 40000];
    const w = Float32Array.from(gaussianMatrix(m, k, 3));
    for (let c = 0, last = (m - 1) * k; c < k; c++) {
      let sum = 0;
      for (let r = 0; r < m - 1; r++) sum += w[r * k + c]!;
      w[last + c] = sum / Math.sqrt(m - 1) + 3e-4 * w[last + c]!;
    }
    const single = await computeSpectrumInThread(w, [m, k], { precision: 'float32' });
    const double = await computeSpectrumInThread(w, [m, k], { precision: 'float64' });
    assert.match(single.backend, /Gram matrix on onnxruntime in float32/);
    const sigma = double.singularValues;
    assert.ok(sigma[m - 1]! > 1e-4 * sigma[0]! && sigma[m - 1]! < 2e-4 * sigma[0]!);
    assert.ok(maxDifference(single.singularValues, sigma, m) < 1e-4 * sigma[0]!);
  });

  test('stage timings: wall and CPU seconds of each stage of the Gram route', async () => {
    const w = Float32Array.from(gaussianMatrix(300, 310, 71));
    const stageTimings: Record<string, number> = {};
    await computeSpectrumInThread(w, [300, 310], { method: 'full' }, undefined, { stageTimings });
    const stages = ['Gram matrix', 'band reduction', 'bulge chasing', 'tridiagonal eigenvalues'];
    assert.deepEqual(
      Object.keys(stageTimings).sort(),
      stages.flatMap((stage) => [stage, `${stage} CPU`]).sort(),
    );
    for (const seconds of Object.values(stageTimings)) assert.ok(seconds >= 0 && seconds < 60);
  });

  test('small matrices take the Jacobi route and are exact', async () => {
    const w = matrixWithSpectrum(20, 12, [4, 2, 1, 0.5], 41);
    const result = await computeSpectrumInThread(w, [20, 12]);
    assert.match(result.backend, /Jacobi/);
    assert.ok(maxDifference(result.singularValues, [4, 2, 1, 0.5, 0, 0], 6) < 1e-13);
  });

  test('conv kernels: flattened to out × in·kh·kw, or pooled over spatial slices', async () => {
    const [out, inputs, kh, kw] = [6, 4, 3, 3];
    const values = Float32Array.from(gaussianMatrix(out, inputs * kh * kw, 51));
    const flat = await computeSpectrumInThread(values, [out, inputs, kh, kw], { conv: 'flatten' });
    assert.deepEqual([flat.rows, flat.cols, flat.conv], [out, inputs * kh * kw, 'flatten']);
    assert.ok(
      maxDifference(flat.singularValues, jacobiSingularValues(values, out, 36), out) < 1e-12,
    );

    const spatial = await computeSpectrumInThread(values, [out, inputs, kh, kw], {
      conv: 'spatial',
    });
    assert.deepEqual([spatial.rows, spatial.cols, spatial.conv], [out, inputs, 'spatial']);
    const pooled: number[] = [];
    for (let k = 0; k < kh * kw; k++) {
      const slice = new Float64Array(out * inputs);
      for (let o = 0; o < out; o++) {
        for (let i = 0; i < inputs; i++) slice[o * inputs + i] = values[(o * inputs + i) * 9 + k]!;
      }
      pooled.push(...jacobiSingularValues(slice, out, inputs));
    }
    assert.equal(spatial.singularValues.length, kh * kw * inputs);
    assert.ok(maxDifference(spatial.singularValues, descending(pooled), pooled.length) < 1e-12);
    assert.ok(
      Math.abs(spatial.frobeniusSquared - flat.frobeniusSquared) < 1e-9 * flat.frobeniusSquared,
    );

    const { matrices } = tensorMatrices(values, [out, inputs, kh, kw], 'spatial');
    assert.equal(matrices.length, 9);
    assert.equal(matrices[4]!.values[1], values[1 * 9 + 4]);
  });

  test('top-k matches the leading values of the full spectrum', async () => {
    const sigma = Array.from({ length: 150 }, (_, i) => 100 * 0.9 ** i);
    const w = Float32Array.from(matrixWithSpectrum(300, 220, sigma, 61));
    const full = await computeSpectrumInThread(w, [300, 220]);
    const top = await computeSpectrumInThread(w, [300, 220], { method: 'topk', k: 12 });
    assert.equal(top.method, 'topk');
    assert.equal(top.singularValues.length, 12);
    assert.match(top.backend, /randomized/);
    assert.ok(maxDifference(top.singularValues, full.singularValues, 12) < 1e-4 * sigma[0]!);
    assert.ok(
      Math.abs(top.frobeniusSquared - full.frobeniusSquared) < 1e-9 * full.frobeniusSquared,
    );
  });

  test('1-D, 0-D, empty and mismatched tensors are refused with a clear message', async () => {
    await assert.rejects(computeTensorSpectrum(new Float32Array(5), [5]), /one dimension \[5\]/);
    await assert.rejects(computeTensorSpectrum(new Float32Array(1), []), /no dimensions/);
    await assert.rejects(computeTensorSpectrum(new Float32Array(0), [0, 4]), /empty/);
    await assert.rejects(
      computeTensorSpectrum(new Float32Array(5), [2, 3]),
      /holds 6 values, but 5/,
    );
    await assert.rejects(
      computeSpectrumInThread(new Float32Array(6), [2, 3], { method: 'topk', k: 0 }),
      /top-k needs a whole k/,
    );
  });

  test('a full spectrum beyond the side limit is refused; auto switches to top-k', () => {
    assert.throws(
      () => resolveMethod({ method: 'full' }, MAX_FULL_SPECTRUM_SIDE + 1),
      /up to 8192/,
    );
    assert.equal(resolveMethod({}, MAX_FULL_SPECTRUM_SIDE + 1), 'topk');
    assert.equal(resolveMethod({ method: 'auto' }, MAX_FULL_SPECTRUM_SIDE), 'full');
    assert.equal(resolveMethod({ method: 'topk' }, 10), 'topk');
  });
});

describe('the spectrum worker', () => {
  test('gives the same values as the computation in this thread, with the backend line', async () => {
    const w = Float32Array.from(gaussianMatrix(190, 210, 71));
    const here = await computeSpectrumInThread(w, [190, 210]);
    const there = await computeTensorSpectrum(w, [190, 210]);
    assert.deepEqual(Array.from(there.singularValues), Array.from(here.singularValues));
    assert.equal(there.backend, here.backend);
    assert.equal(w.length, 190 * 210, "the caller's array is not detached");
  });

  test('an aborted signal rejects with an AbortError, before and during the computation', async () => {
    const w = Float32Array.from(gaussianMatrix(700, 700, 81));
    const before = new AbortController();
    before.abort();
    await assert.rejects(computeTensorSpectrum(w, [700, 700], {}, before.signal), {
      name: 'AbortError',
    });
    const during = new AbortController();
    const pending = computeTensorSpectrum(w, [700, 700], {}, during.signal);
    setTimeout(() => during.abort(), 50);
    await assert.rejects(pending, { name: 'AbortError' });
    // The worker is free again afterwards.
    const small = await computeTensorSpectrum(Float32Array.from(gaussianMatrix(8, 5, 1)), [8, 5]);
    assert.equal(small.singularValues.length, 5);
  });

  test('a compute backend this onnxruntime lacks falls back to cpu and says why', async () => {
    const choice = chooseProvider('coreml');
    assert.equal(choice.provider, 'cpu');
    assert.match(choice.fallback ?? '', /coreml not available/);
    const w = Float32Array.from(gaussianMatrix(190, 200, 91));
    const result = await computeTensorSpectrum(w, [190, 200], {}, undefined, { backend: 'coreml' });
    assert.match(result.backend, /^cpu \(.*\); coreml not available in this onnxruntime/);
    const reference = jacobiSingularValues(w, 190, 200);
    assert.ok(maxDifference(result.singularValues, reference, 190) < 1e-4 * reference[0]!);
  });
});

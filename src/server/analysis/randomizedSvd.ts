/**
 * The k largest singular values by randomized subspace iteration (Halko, Martinsson &
 * Tropp): a Gaussian sketch Y = A·Ω of k + OVERSAMPLING columns, `powerIterations` rounds
 * of Y ← A·(Aᵀ·Y) with re-orthonormalisation in between, then the singular values of the
 * small B = Qᵀ·A from the eigenvalues of B·Bᵀ. Every product runs on onnxruntime;
 * orthonormalisation is CholeskyQR2 (two rounds of Gram, Cholesky, Y·R⁻¹), whose products
 * run there too.
 */
import type { GemmArray, Matrix, MatMulRuntime } from '../runtime/matmul';
import {
  operandOf,
  transposedProducts,
  type ArrayConstructorOf,
  type MatrixOperand,
} from './matrixOperand';
import { symmetricEigenvalues, type CancelCheck } from './symmetricEigen';

export type { ArrayConstructorOf };

/** Extra sketch columns beyond k: the error bound improves quickly with a few. */
export const OVERSAMPLING = 10;
/** Rounds of subspace iteration by default; each sharpens the decay between σ_k and σ_{k+1}. */
export const DEFAULT_POWER_ITERATIONS = 4;

/** A deterministic standard-normal stream (xorshift + Box–Muller), so that results repeat. */
export function gaussianFill(target: GemmArray, seed: number): void {
  let state = seed >>> 0 || 0x9e3779b9;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < target.length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    target[i] = radius * Math.cos(angle);
    if (i + 1 < target.length) target[i + 1] = radius * Math.sin(angle);
  }
}

/**
 * Upper-triangular R (row-major, size²) with RᵀR = gram, by Cholesky; a diagonal shift
 * proportional to the trace keeps it defined when the columns are nearly dependent.
 */
function choleskyUpper(gram: GemmArray, size: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < size; i++) trace += gram[i * size + i]!;
  const shift = (trace / Math.max(1, size)) * 1e-12;
  const r = new Float64Array(size * size);
  for (let j = 0; j < size; j++) {
    let diagonal = gram[j * size + j]! + shift;
    for (let p = 0; p < j; p++) diagonal -= r[p * size + j]! * r[p * size + j]!;
    const pivot = Math.sqrt(Math.max(diagonal, shift > 0 ? shift : Number.MIN_VALUE));
    r[j * size + j] = pivot;
    for (let c = j + 1; c < size; c++) {
      let sum = gram[j * size + c]!;
      for (let p = 0; p < j; p++) sum -= r[p * size + j]! * r[p * size + c]!;
      r[j * size + c] = sum / pivot;
    }
  }
  return r;
}

/** R⁻¹ of an upper-triangular R (row-major), itself upper triangular. */
function invertUpper(r: Float64Array, size: number): Float64Array {
  const inverse = new Float64Array(size * size);
  for (let j = size - 1; j >= 0; j--) {
    inverse[j * size + j] = 1 / r[j * size + j]!;
    for (let i = j - 1; i >= 0; i--) {
      let sum = 0;
      for (let p = i + 1; p <= j; p++) sum += r[i * size + p]! * inverse[p * size + j]!;
      inverse[i * size + j] = -sum / r[i * size + i]!;
    }
  }
  return inverse;
}

/**
 * Orthonormal columns spanning those of `y` (CholeskyQR2). With `transposed`, `y` holds Yᵀ
 * (Y's columns one after another) and so does the result: Qᵀ = R⁻ᵀ·Yᵀ.
 */
export async function orthonormalize<T extends GemmArray>(
  runtime: MatMulRuntime,
  y: Matrix<T>,
  Element: ArrayConstructorOf<T>,
  transposed = false,
): Promise<Matrix<T>> {
  const size = transposed ? y.rows : y.cols;
  let q = y;
  for (let round = 0; round < 2; round++) {
    const gram = await runtime.gemm(q, q, transposed ? { transB: true } : { transA: true });
    const inverse = invertUpper(choleskyUpper(gram.data, size), size);
    const converted = new Element(inverse.length);
    for (let i = 0; i < inverse.length; i++) converted[i] = inverse[i]!;
    const r = { rows: size, cols: size, data: converted };
    q = transposed ? await runtime.gemm(r, q, { transA: true }) : await runtime.gemm(q, r);
  }
  return q;
}

/** The `k` largest singular values (descending) of the row-major `a` (in memory or streamed). */
export async function randomizedTopSingularValues<T extends GemmArray>(
  runtime: MatMulRuntime,
  a: Matrix<T> | MatrixOperand<T>,
  k: number,
  check: CancelCheck,
  powerIterations = DEFAULT_POWER_ITERATIONS,
): Promise<Float64Array> {
  const { eigenvalues } = await randomizedRange(runtime, a, k, check, powerIterations);
  const sigma = new Float64Array(Math.min(k, eigenvalues.length));
  for (let i = 0; i < sigma.length; i++) sigma[i] = Math.sqrt(Math.max(0, eigenvalues[i]!));
  return sigma;
}

/**
 * The subspace iteration behind randomizedTopSingularValues: `basis`, orthonormal columns
 * (rows × (k + OVERSAMPLING), row-major) that approximately span the top left singular
 * vectors of A, and the eigenvalues (descending, σ² of the Ritz values) of Qᵀ·A·Aᵀ·Q
 * for that basis Q, all of them. A is `a` (in memory or streamed), or with `transposed` aᵀ:
 * every product then reads `a` transposed, so that a tall matrix is worked on as its wide
 * transpose without a transposed copy.
 */
export async function randomizedRange<T extends GemmArray>(
  runtime: MatMulRuntime,
  a: Matrix<T> | MatrixOperand<T>,
  k: number,
  check: CancelCheck,
  powerIterations = DEFAULT_POWER_ITERATIONS,
  transposed = false,
): Promise<{ basis: Matrix<T>; eigenvalues: Float64Array }> {
  const operand = operandOf(runtime, a);
  const products = transposed ? transposedProducts(operand) : operand;
  const { rows, cols, Element } = products;
  const side = Math.min(rows, cols);
  const width = Math.min(side, k + OVERSAMPLING);
  /** A·X and Aᵀ·Y. */
  const times = (x: Matrix<T>) => products.times(x);
  const transposeTimes = (y: Matrix<T>) => products.transposeTimes(y);
  const omega = new Element(cols * width);
  gaussianFill(omega, 0x5eed + rows * 31 + cols);
  let q = await orthonormalize(
    runtime,
    await times({ rows: cols, cols: width, data: omega }),
    Element,
  );
  for (let round = 0; round < powerIterations; round++) {
    check();
    const z = await orthonormalize(runtime, await transposeTimes(q), Element);
    check();
    q = await orthonormalize(runtime, await times(z), Element);
  }
  check();
  // Z = Aᵀ·Q (cols × width); ZᵀZ = Qᵀ·A·Aᵀ·Q, whose eigenvalues are the squared singular
  // values of A restricted to span(Q).
  const z = await transposeTimes(q);
  const small = await runtime.gemm(z, z, { transA: true });
  const eigenvalues = await symmetricEigenvalues(runtime, small, Math.min(16, width), check);
  return { basis: q, eigenvalues };
}

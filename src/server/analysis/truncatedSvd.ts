/**
 * Rank-r truncated SVD W ≈ (U_r·Σ_r)·V_rᵀ, singular vectors included.
 *
 * Small problems, and ranks so close to the smaller side that a sketch would not be
 * smaller, go to the exact one-sided Jacobi SVD. Otherwise a randomized range finder
 * (Halko, Martinsson & Tropp): a Gaussian sketch of r + p columns, a few rounds of
 * subspace iteration, then the exact SVD of the small projected matrix:
 *
 * 1. Yᵀ = Ωᵀ·Wᵀ, then `powerIterations` × (Zᵀ = Qᵀ·W, Yᵀ = Zᵀ·Wᵀ) with CholeskyQR2 in
 *    float64 in between (its Cholesky factor is shifted, so a sketch of lower rank than its
 *    width still gives a basis of its range); every product with W runs on onnxruntime (Gemm, MLAS) in W's
 *    element type.
 * 2. An orthonormal Q of the sketch in float64: CholeskyQR2 on onnxruntime, checked, or a
 *    Householder QR where that is not orthonormal to 1e-10 (a sketch of lower rank than
 *    its width, as for a matrix of exactly that rank); B = Qᵀ·W ((r+p) × cols).
 * 3. Q₂ the same way for the rows of B, the Jacobi SVD of the small B·Q₂ = U_s·Σ·V_sᵀ,
 *    so that W ≈ Q·B = (Q·U_s)·Σ·(Q₂·V_s)ᵀ; the products with Q, Q₂ run on onnxruntime
 *    in float64.
 *
 * Sketches are kept transposed (row-major (r+p) × side, i.e. the columns one after
 * another), which is the layout the Householder QR works in.
 */
import type { GemmArray, Matrix, MatMulRuntime } from '../runtime/matmul';
import { jacobiSvd } from './jacobiSvd';
import { gaussianFill, orthonormalize } from './randomizedSvd';
import type { CancelCheck } from './symmetricEigen';

/** Extra sketch columns beyond the rank: at least this many, or an eighth of the rank. */
export const MIN_OVERSAMPLING = 10;
/** Rounds of subspace iteration: each sharpens the separation at σ_r (cheap next to W's size). */
export const LOW_RANK_POWER_ITERATIONS = 4;
/** Problems up to this many multiply-adds per Jacobi sweep (q²·p) go the exact route. */
export const EXACT_MAX_SWEEP_WORK = 1 << 22;

export interface TruncatedSvd {
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
  /** The `rank` largest singular values, descending. */
  readonly singularValues: Float64Array;
  /** U_r·Σ_r, rows × rank row-major. */
  readonly scaledLeft: Float64Array;
  /** V_rᵀ, rank × cols row-major. */
  readonly rightT: Float64Array;
  /** How it was computed, for reports. */
  readonly route: string;
}

export interface TruncatedSvdOptions {
  readonly powerIterations?: number;
  /** Use the exact route whatever the size. */
  readonly exact?: boolean;
}

/** Sketch width for rank r of a matrix whose smaller side is `side`. */
export function sketchWidth(rank: number, side: number): number {
  return Math.min(side, rank + Math.max(MIN_OVERSAMPLING, Math.ceil(rank / 8)));
}

/** Whether a rows × cols matrix is small enough for the exact SVD at any rank. */
export function isSmallForExactSvd(rows: number, cols: number): boolean {
  const side = Math.min(rows, cols);
  return side * side * Math.max(rows, cols) <= EXACT_MAX_SWEEP_WORK;
}

/** Whether rank r of a rows × cols matrix takes the exact route. */
export function takesExactRoute(rows: number, cols: number, rank: number): boolean {
  const side = Math.min(rows, cols);
  return sketchWidth(rank, side) >= side || isSmallForExactSvd(rows, cols);
}

/** The leading `rank` columns of a k-column row-major matrix (and rows of a k-row one). */
function leading(
  svd: { singularValues: Float64Array; scaledLeft: Float64Array; rightT: Float64Array },
  rows: number,
  cols: number,
  rank: number,
): { singularValues: Float64Array; scaledLeft: Float64Array; rightT: Float64Array } {
  const k = svd.singularValues.length;
  if (rank === k) return svd;
  const scaledLeft = new Float64Array(rows * rank);
  for (let r = 0; r < rows; r++) {
    scaledLeft.set(svd.scaledLeft.subarray(r * k, r * k + rank), r * rank);
  }
  return {
    singularValues: svd.singularValues.slice(0, rank),
    scaledLeft,
    rightT: svd.rightT.slice(0, rank * cols),
  };
}

/** W ≈ U_r·Σ_r·V_rᵀ for the row-major `rows` × `cols` matrix `a` (see the module comment). */
export async function truncatedSvd<T extends GemmArray>(
  runtime: MatMulRuntime,
  a: Matrix<T>,
  rank: number,
  check: CancelCheck,
  options: TruncatedSvdOptions = {},
): Promise<TruncatedSvd> {
  const { rows, cols } = a;
  const side = Math.min(rows, cols);
  if (!Number.isInteger(rank) || rank < 1) {
    throw new RangeError(`rank must be a positive integer, got ${rank}`);
  }
  const r = Math.min(rank, side);
  check();
  if (options.exact || takesExactRoute(rows, cols, r)) {
    const svd = jacobiSvd(a.data, rows, cols);
    return { rows, cols, rank: r, ...leading(svd, rows, cols, r), route: 'one-sided Jacobi SVD' };
  }
  const width = sketchWidth(r, side);
  const powerIterations = options.powerIterations ?? LOW_RANK_POWER_ITERATIONS;
  const narrow = (values: Float64Array): T => convert(values, a.data) as T;
  const omegaT = new Float64Array(width * cols);
  gaussianFill(omegaT, 0x10a7 + rows * 31 + cols);
  // Yᵀ = Ωᵀ·Wᵀ: width × rows.
  let yT = await runtime.gemm({ rows: width, cols, data: narrow(omegaT) }, a, { transB: true });
  for (let round = 0; round < powerIterations; round++) {
    check();
    const qT = await orthonormalize(runtime, widen(yT), Float64Array, true);
    check();
    const zT = await runtime.gemm({ rows: width, cols: rows, data: narrow(qT.data) }, a);
    check();
    const wT = await orthonormalize(runtime, widen(zT), Float64Array, true);
    check();
    yT = await runtime.gemm({ rows: width, cols, data: narrow(wT.data) }, a, { transB: true });
  }
  check();
  const qT = await orthonormalRows(runtime, widen(yT));
  check();
  // B = Qᵀ·W (width × cols); any orthonormal basis Q₂ of its rows gives B = (B·Q₂)·Q₂ᵀ.
  const b = widen(await runtime.gemm({ rows: width, cols: rows, data: narrow(qT) }, a));
  check();
  const q2T = await orthonormalRows(runtime, b);
  check();
  const projected = await runtime.gemm(b, { rows: width, cols, data: q2T }, { transB: true });
  const small = leading(jacobiSvd(projected.data, width, width), width, width, r);
  check();
  // U_r·Σ_r = Q·(U_s·Σ)_r: rows × r.
  const scaledLeft = await runtime.gemm(
    { rows: width, cols: rows, data: qT },
    { rows: width, cols: r, data: small.scaledLeft },
    { transA: true },
  );
  // V_rᵀ = (V_sᵀ)_r·Q₂ᵀ: r × cols.
  const rightT = await runtime.gemm(
    { rows: r, cols: width, data: small.rightT },
    { rows: width, cols, data: q2T },
  );
  return {
    rows,
    cols,
    rank: r,
    singularValues: small.singularValues,
    scaledLeft: toFloat64(scaledLeft.data),
    rightT: toFloat64(rightT.data),
    route: `randomized SVD (sketch ${width}, ${powerIterations} power iterations, onnxruntime products)`,
  };
}

function toFloat64(values: GemmArray): Float64Array {
  return values instanceof Float64Array ? values : Float64Array.from(values);
}

function widen(matrix: Matrix): Matrix<Float64Array> {
  return { rows: matrix.rows, cols: matrix.cols, data: toFloat64(matrix.data) };
}

function convert(values: Float64Array, like: GemmArray): GemmArray {
  return like instanceof Float64Array ? values : Float32Array.from(values);
}

/** Largest |QᵀQ − I| entry accepted from CholeskyQR2 before the Householder QR is used. */
const ORTHOGONALITY_TOLERANCE = 1e-10;

/**
 * Orthonormal rows spanning those of `yT` (float64, rows ≤ cols): CholeskyQR2 on
 * onnxruntime, checked, and the Householder QR instead where it did not come out
 * orthonormal (a sketch of lower rank than its width, or badly conditioned).
 */
async function orthonormalRows(
  runtime: MatMulRuntime,
  yT: Matrix<Float64Array>,
): Promise<Float64Array> {
  const q = await orthonormalize(runtime, yT, Float64Array, true);
  const gram = await runtime.gemm(q, q, { transB: true });
  const size = q.rows;
  let orthonormal = true;
  for (let i = 0; i < size * size && orthonormal; i++) {
    const expected = i % (size + 1) === 0 ? 1 : 0;
    // Written so that NaN (a failed Cholesky) fails the test too.
    orthonormal = Math.abs(gram.data[i]! - expected) <= ORTHOGONALITY_TOLERANCE;
  }
  if (orthonormal) return q.data;
  return householderQr(yT.data.slice(), yT.cols, yT.rows).qT;
}

/**
 * Householder QR in float64 of the m × n matrix (m ≥ n) whose n columns of length m lie
 * one after another in `columns` (consumed). Returns Qᵀ in the same layout (n rows of
 * length m, orthonormal) and R (n × n, upper triangular, row-major).
 */
export function householderQr(
  columns: Float64Array,
  m: number,
  n: number,
): { qT: Float64Array; r: Float64Array } {
  if (m < n) throw new RangeError(`householderQr needs m ≥ n, got ${m} × ${n}`);
  const taus = new Float64Array(n);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const start = j * m;
    const alpha = columns[start + j]!;
    let below = 0;
    for (let i = j + 1; i < m; i++) below += columns[start + i]! ** 2;
    if (below === 0) {
      taus[j] = 0;
      columns[start + j] = 1;
      r[j * n + j] = alpha;
    } else {
      const norm = Math.sqrt(alpha * alpha + below);
      const beta = alpha <= 0 ? norm : -norm;
      const scale = 1 / (alpha - beta);
      for (let i = j + 1; i < m; i++) columns[start + i]! *= scale;
      columns[start + j] = 1;
      taus[j] = (beta - alpha) / beta;
      r[j * n + j] = beta;
    }
    // Apply H_j = I − τ·v·vᵀ (v in column j, rows j…m−1) to the later columns.
    const tau = taus[j]!;
    for (let k = j + 1; k < n; k++) {
      const other = k * m;
      if (tau !== 0) {
        let w = 0;
        for (let i = j; i < m; i++) w += columns[start + i]! * columns[other + i]!;
        w *= tau;
        for (let i = j; i < m; i++) columns[other + i]! -= w * columns[start + i]!;
      }
      r[j * n + k] = columns[other + j]!;
    }
  }
  // Q = H_0·H_1·…·H_{n−1}·[I; 0], applied from the last reflector back.
  const qT = new Float64Array(n * m);
  for (let k = 0; k < n; k++) qT[k * m + k] = 1;
  for (let j = n - 1; j >= 0; j--) {
    const tau = taus[j]!;
    if (tau === 0) continue;
    const start = j * m;
    for (let k = j; k < n; k++) {
      const target = k * m;
      let w = 0;
      for (let i = j; i < m; i++) w += columns[start + i]! * qT[target + i]!;
      w *= tau;
      for (let i = j; i < m; i++) qT[target + i]! -= w * columns[start + i]!;
    }
  }
  return { qT, r };
}

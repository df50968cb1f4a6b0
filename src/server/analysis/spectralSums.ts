/**
 * Sums over every singular value of a matrix, Σσᵢ and Σσᵢ·ln σᵢ, estimated without the
 * spectrum by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): for random probe
 * vectors x with E[x·xᵀ] = I, tr f(G) = E[xᵀ·f(G)·x], and xᵀ·f(G)·x is a Gauss quadrature
 * of the spectral measure of G seen from x, whose nodes and weights are the eigenvalues and
 * squared first eigenvector components of the tridiagonal matrix that `steps` Lanczos
 * steps from x build. G is the Gram matrix of the smaller side (σ² are its eigenvalues).
 *
 * With a `deflation` (the top of the spectrum already known: an orthonormal basis of its
 * singular vectors and the Ritz values there), the quadrature covers only the rest,
 * (I − Q·Qᵀ)·G·(I − Q·Qᵀ), and the known values are summed exactly: the few large values
 * that dominate the estimate's variance no longer enter it.
 *
 * All probes advance together: each Lanczos step is two products of the matrix with the
 * block of probe vectors, on onnxruntime (so on the chosen execution provider); the
 * vectors themselves are kept and fully re-orthogonalised in float64.
 *
 * The effective rank needs exactly these two sums (effectiveRankOfSums in spectralMetrics.ts).
 */
import type { SpectralSums } from '../../shared/spectrum';
import type { GemmArray, Matrix, MatMulRuntime } from '../runtime/matmul';
import { operandOf, type MatrixOperand } from './matrixOperand';
import { gaussianFill } from './randomizedSvd';
import type { CancelCheck } from './symmetricEigen';

/** Probe vectors by default: the estimate's relative spread falls as 1/√probes. */
export const DEFAULT_SLQ_PROBES = 16;
/** Lanczos steps per probe by default (the quadrature's nodes). */
export const DEFAULT_SLQ_STEPS = 24;
/** Sweeps of the small Jacobi eigensolver at most (it converges in under ten). */
const MAX_JACOBI_SWEEPS = 50;

/** Deterministic ±1 entries (the signs of gaussianFill's stream), so that estimates repeat. */
function rademacherFill(target: Float64Array, seed: number): void {
  gaussianFill(target, Math.imul(seed, 0x9e3779b1) ^ 0x2545f491);
  for (let i = 0; i < target.length; i++) target[i] = target[i]! < 0 ? -1 : 1;
}

/**
 * Eigenvalues and the squared first components of the eigenvectors of the symmetric
 * tridiagonal matrix (diagonal `alpha`, off-diagonal `beta`), by cyclic Jacobi rotations
 * on its dense form: the nodes and weights of a Gauss quadrature (Golub & Welsch).
 */
export function gaussQuadrature(
  alpha: ArrayLike<number>,
  beta: ArrayLike<number>,
): { nodes: Float64Array; weights: Float64Array } {
  const m = alpha.length;
  const a = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    a[i * m + i] = alpha[i]!;
    if (i + 1 < m) a[i * m + i + 1] = a[(i + 1) * m + i] = beta[i]!;
  }
  // Only the first row of the eigenvector matrix is needed: V's row 0 under the rotations.
  const first = new Float64Array(m);
  first[0] = 1;
  for (let sweep = 0; sweep < MAX_JACOBI_SWEEPS; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        const value = a[i * m + j]! * a[i * m + j]!;
        total += value;
        if (i !== j) off += value;
      }
    }
    if (off <= 1e-30 * total) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q]!;
        if (apq === 0) continue;
        const theta = (a[q * m + q]! - a[p * m + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p]!;
          const akq = a[k * m + q]!;
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k]!;
          const aqk = a[q * m + k]!;
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        const fp = first[p]!;
        const fq = first[q]!;
        first[p] = c * fp - s * fq;
        first[q] = s * fp + c * fq;
      }
    }
  }
  const nodes = new Float64Array(m);
  const weights = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    nodes[i] = a[i * m + i]!;
    weights[i] = first[i]! * first[i]!;
  }
  return { nodes, weights };
}

export interface SpectralSumOptions<T extends GemmArray = GemmArray> {
  readonly probes?: number;
  readonly steps?: number;
  readonly seed?: number;
  /**
   * Orthonormal columns (side × width, row-major, side = min(rows, cols)) spanning the top
   * eigenvectors of G, and the eigenvalues of Qᵀ·G·Q (randomizedRange of `a`, with
   * `transposed` when rows ≥ cols: G is A·Aᵀ for a wide matrix, else AᵀA).
   */
  readonly deflation?: { readonly basis: Matrix<T>; readonly eigenvalues: ArrayLike<number> };
}

/** Adds √μ and √μ·ln √μ, weighted, for an eigenvalue μ > 0 of the scaled G. */
function addNode(sums: { root: number; rootLog: number }, mu: number, weight: number): void {
  if (!(mu > 0)) return;
  const root = Math.sqrt(mu);
  sums.root += weight * root;
  sums.rootLog += weight * root * 0.5 * Math.log(mu);
}

/**
 * Estimated Σσ and Σσ·ln σ over all min(rows, cols) singular values of the row-major `a`
 * (in memory or streamed).
 * G is scaled by its mean eigenvalue (‖A‖²_F / side, `frobeniusSquared` given) so that the
 * quadrature works on values near 1, and the sums are scaled back.
 */
export async function estimateSpectralSums<T extends GemmArray>(
  runtime: MatMulRuntime,
  matrix: Matrix<T> | MatrixOperand<T>,
  frobeniusSquared: number,
  check: CancelCheck,
  options: SpectralSumOptions<T> = {},
): Promise<SpectralSums> {
  const a = operandOf(runtime, matrix);
  const side = Math.min(a.rows, a.cols);
  const deflation = options.deflation;
  if (deflation && deflation.basis.rows !== side) {
    throw new Error(
      `a deflated spectral sum needs a basis of ${side}-vectors (the smaller side), not of ${deflation.basis.rows}`,
    );
  }
  if (!(frobeniusSquared > 0)) return { sigma: 0, sigmaLogSigma: 0 };
  const probes = Math.max(1, Math.min(options.probes ?? DEFAULT_SLQ_PROBES, side));
  const steps = Math.max(1, Math.min(options.steps ?? DEFAULT_SLQ_STEPS, side));
  const scale = frobeniusSquared / side;
  const { Element } = a;
  // basis[j]: the j-th Lanczos vectors of all probes, probe p at p·side.
  const basis: Float64Array[] = [];
  const start = new Float64Array(probes * side);
  // The seed depends on the Gram matrix only: a matrix and its transpose get the same probes.
  rademacherFill(start, options.seed ?? 0x51a9 + side * 7 + Math.max(a.rows, a.cols));
  const block = new Element(probes * side);
  /** Rows of `block` ← (I − Q·Qᵀ)·row, on onnxruntime. */
  const deflate = async () => {
    if (!deflation) return;
    const x: Matrix<T> = { rows: probes, cols: side, data: block };
    const coefficients = await runtime.gemm(x, deflation.basis);
    await runtime.gemm(coefficients, deflation.basis, {
      transB: true,
      alpha: -1,
      beta: 1,
      c: block,
      output: block,
    });
  };
  // Each probe x (E[x·xᵀ] = I) contributes ‖x‖²·(quadrature from x / ‖x‖): with deflation
  // ‖(I − Q·Qᵀ)·x‖² instead of ‖x‖² = side.
  const probeWeights = new Float64Array(probes).fill(side);
  if (deflation) {
    for (let i = 0; i < start.length; i++) block[i] = start[i]!;
    await deflate();
    for (let i = 0; i < start.length; i++) start[i] = block[i]!;
  }
  for (let p = 0; p < probes; p++) {
    let norm = 0;
    for (let i = p * side; i < (p + 1) * side; i++) norm += start[i]! * start[i]!;
    probeWeights[p] = norm;
    const inverse = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = p * side; i < (p + 1) * side; i++) start[i]! *= inverse;
  }
  basis.push(start);
  const alphas = Array.from({ length: probes }, () => [] as number[]);
  const betas = Array.from({ length: probes }, () => [] as number[]);
  const done = new Uint8Array(probes);
  for (let j = 0; j < steps; j++) {
    check();
    const q = basis[j]!;
    for (let i = 0; i < q.length; i++) block[i] = q[i]!;
    // W = Q·G for Q holding one probe vector per row: Q·A·Aᵀ (wide) or Q·Aᵀ·A.
    const x: Matrix<T> = { rows: probes, cols: side, data: block };
    const w = await a.gramTimesRows(x);
    if (deflation) {
      block.set(w.data as never);
      await deflate();
    }
    const image = deflation ? block : w.data;
    const next = new Float64Array(probes * side);
    for (let p = 0; p < probes; p++) {
      if (done[p]) continue;
      const offset = p * side;
      let alpha = 0;
      for (let i = 0; i < side; i++) {
        const value = image[offset + i]! / scale;
        next[offset + i] = value;
        alpha += value * q[offset + i]!;
      }
      alphas[p]!.push(alpha);
      // Full re-orthogonalisation against every earlier vector of this probe (twice is
      // enough, Kahan's rule): it removes the three-term recurrence's own terms as well.
      for (let round = 0; round < 2; round++) {
        for (const previous of basis) {
          let dot = 0;
          for (let i = 0; i < side; i++) dot += next[offset + i]! * previous[offset + i]!;
          for (let i = 0; i < side; i++) next[offset + i]! -= dot * previous[offset + i]!;
        }
      }
      let norm = 0;
      for (let i = 0; i < side; i++) norm += next[offset + i]! * next[offset + i]!;
      norm = Math.sqrt(norm);
      // An invariant subspace: the quadrature is exact with the nodes so far.
      if (j + 1 === steps || norm <= 1e-10 * Math.max(1, Math.abs(alpha))) {
        done[p] = 1;
        continue;
      }
      betas[p]!.push(norm);
      for (let i = 0; i < side; i++) next[offset + i]! /= norm;
    }
    if (done.every((flag) => flag === 1)) break;
    basis.push(next);
  }
  // Per probe, Σ wₖ·f(θₖ) over the nodes θ (eigenvalues of G / scale), times its weight;
  // the trace is their mean. The deflated values add exactly.
  const sums = { root: 0, rootLog: 0 };
  for (let p = 0; p < probes; p++) {
    if (alphas[p]!.length === 0) continue;
    const { nodes, weights } = gaussQuadrature(alphas[p]!, betas[p]!);
    for (let k = 0; k < nodes.length; k++) {
      addNode(sums, nodes[k]!, (probeWeights[p]! / probes) * weights[k]!);
    }
  }
  if (deflation) {
    for (let i = 0; i < deflation.eigenvalues.length; i++) {
      addNode(sums, deflation.eigenvalues[i]! / scale, 1);
    }
  }
  // σ = √(scale·μ): Σσ = √scale·Σ√μ, Σσ·ln σ = √scale·(Σ√μ·ln√μ + ln√scale·Σ√μ).
  const rootScale = Math.sqrt(scale);
  const sigma = sums.root;
  const sigmaLog = sums.rootLog;
  return {
    sigma: rootScale * sigma,
    sigmaLogSigma: rootScale * (sigmaLog + 0.5 * Math.log(scale) * sigma),
  };
}

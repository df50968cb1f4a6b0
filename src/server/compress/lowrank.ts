/**
 * Truncated SVD for low-rank factorisation W ≈ A·B (A: rows × r, B: r × cols).
 *
 * One-sided Jacobi (Hestenes) in float64 on the matrix whose columns are the smaller side:
 * plane rotations make its columns mutually orthogonal; their norms are the singular
 * values and the accumulated rotations the right singular vectors. It works on W itself,
 * so small singular values stay accurate (no squared condition number as with the Gram
 * matrix). Cost per sweep ≈ 3·q²·p flops for a p × q problem (q the smaller side), with
 * about 6–12 sweeps: well under a second for q ≤ 256, a few seconds at 512. The smaller
 * side is bounded by MAX_LOWRANK_SIDE and the element count by MAX_LOWRANK_ELEMENTS.
 */
import { MAX_LOWRANK_ELEMENTS, MAX_LOWRANK_SIDE } from '../../shared/limits';
import { maxSavingRank, rankForEnergy } from '../../shared/spectrum';

export interface Svd {
  readonly rows: number;
  readonly cols: number;
  /** All min(rows, cols) singular values, descending. */
  readonly singularValues: Float64Array;
  /** Left factor U·Σ, rows × k row-major (k = min(rows, cols)), columns in σ order. */
  readonly scaledLeft: Float64Array;
  /** Vᵀ, k × cols row-major. */
  readonly rightT: Float64Array;
  readonly sweeps: number;
}

const MAX_SWEEPS = 40;

/** Full thin SVD of a row-major rows × cols matrix (see the module comment for limits). */
export function thinSvd(values: ArrayLike<number>, rows: number, cols: number): Svd {
  if (rows * cols !== values.length) {
    throw new RangeError(
      `a ${rows} × ${cols} matrix needs ${rows * cols} values, got ${values.length}`,
    );
  }
  const q = Math.min(rows, cols);
  const p = Math.max(rows, cols);
  if (q > MAX_LOWRANK_SIDE || rows * cols > MAX_LOWRANK_ELEMENTS) {
    throw new RangeError(
      `${rows} × ${cols} is beyond the low-rank limits (smaller side ≤ ${MAX_LOWRANK_SIDE}, ≤ ${MAX_LOWRANK_ELEMENTS} elements)`,
    );
  }
  const transposed = cols > rows;
  // Column-major p × q working copy: column j of W (or of Wᵀ when transposed).
  const a = new Float64Array(p * q);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c]!;
      if (transposed) a[c + r * p] = v;
      else a[r + c * p] = v;
    }
  }
  const v = new Float64Array(q * q); // column-major, starts as the identity
  for (let j = 0; j < q; j++) v[j * q + j] = 1;
  const eps = 1e-15;
  let sweeps = 0;
  for (; sweeps < MAX_SWEEPS; sweeps++) {
    let rotated = false;
    for (let i = 0; i < q - 1; i++) {
      for (let j = i + 1; j < q; j++) {
        const oi = i * p;
        const oj = j * p;
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let k = 0; k < p; k++) {
          const x = a[oi + k]!;
          const y = a[oj + k]!;
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let k = 0; k < p; k++) {
          const x = a[oi + k]!;
          const y = a[oj + k]!;
          a[oi + k] = c * x - s * y;
          a[oj + k] = s * x + c * y;
        }
        const vi = i * q;
        const vj = j * q;
        for (let k = 0; k < q; k++) {
          const x = v[vi + k]!;
          const y = v[vj + k]!;
          v[vi + k] = c * x - s * y;
          v[vj + k] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = new Float64Array(q);
  for (let j = 0; j < q; j++) {
    let sum = 0;
    for (let k = 0; k < p; k++) sum += a[j * p + k]! ** 2;
    norms[j] = Math.sqrt(sum);
  }
  const order = Array.from({ length: q }, (_, j) => j).sort((x, y) => norms[y]! - norms[x]!);
  const singularValues = Float64Array.from(order, (j) => norms[j]!);
  const scaledLeft = new Float64Array(rows * q);
  const rightT = new Float64Array(q * cols);
  order.forEach((j, rank) => {
    const sigma = norms[j]!;
    if (!transposed) {
      // W = (W·V)·Vᵀ: the rotated columns are U·Σ, V's columns the right vectors.
      for (let r = 0; r < rows; r++) scaledLeft[r * q + rank] = a[j * p + r]!;
      for (let c = 0; c < cols; c++) rightT[rank * cols + c] = v[j * q + c]!;
    } else {
      // Wᵀ = (Wᵀ·V)·Vᵀ, so W = V·(Wᵀ·V)ᵀ: left = V·Σ, right = (Wᵀ·V / σ)ᵀ.
      for (let r = 0; r < rows; r++) scaledLeft[r * q + rank] = v[j * q + r]! * sigma;
      for (let c = 0; c < cols; c++) {
        rightT[rank * cols + c] = sigma > 0 ? a[j * p + c]! / sigma : 0;
      }
    }
  });
  return { rows, cols, singularValues, scaledLeft, rightT, sweeps };
}

export interface RankChoice {
  readonly rank?: number;
  readonly energy?: number;
}

/** Σσ² of all singular values (= ‖W‖_F² up to rounding). */
function energyOf(singularValues: Float64Array): number {
  let sum = 0;
  for (const s of singularValues) sum += s * s;
  return sum;
}

/**
 * The rank to keep: the explicit `rank`, or the smallest one keeping `energy` of Σσ².
 * Throws, naming the limit, when that rank would not store fewer parameters than W.
 */
export function chooseRank(svd: Svd, choice: RankChoice): number {
  const full = svd.singularValues.length;
  let rank: number;
  if (choice.rank !== undefined) {
    if (!Number.isInteger(choice.rank) || choice.rank < 1) {
      throw new RangeError(`rank must be a positive integer, got ${choice.rank}`);
    }
    rank = Math.min(choice.rank, full);
  } else if (choice.energy !== undefined) {
    if (!(choice.energy > 0 && choice.energy <= 1)) {
      throw new RangeError(`energy must be in (0, 1], got ${choice.energy}`);
    }
    rank = rankForEnergy(
      Array.from(svd.singularValues),
      energyOf(svd.singularValues),
      choice.energy,
    );
  } else {
    throw new RangeError('low-rank needs a rank or an energy target');
  }
  const limit = maxSavingRank(svd.rows, svd.cols);
  if (rank > limit) {
    throw new LowRankRefusal(
      `rank ${rank} of a ${svd.rows} × ${svd.cols} matrix stores ${rank * (svd.rows + svd.cols)} parameters, not fewer than ${svd.rows * svd.cols}; the largest rank that saves is ${limit}`,
    );
  }
  return rank;
}

/** A rank that would not reduce the parameter count. */
export class LowRankRefusal extends Error {
  override readonly name = 'LowRankRefusal';
}

/**
 * Factors of the rank-r approximation as float32: A = U_r·√Σ_r (rows × r) and
 * B = √Σ_r·V_rᵀ (r × cols), so that both factors have comparable ranges.
 */
export function lowRankFactors(svd: Svd, rank: number): { a: Float32Array; b: Float32Array } {
  const k = svd.singularValues.length;
  const r = Math.min(rank, k);
  const a = new Float32Array(svd.rows * r);
  const b = new Float32Array(r * svd.cols);
  for (let j = 0; j < r; j++) {
    const sigma = svd.singularValues[j]!;
    const root = Math.sqrt(sigma);
    const leftScale = sigma > 0 ? 1 / root : 0;
    for (let row = 0; row < svd.rows; row++) {
      a[row * r + j] = svd.scaledLeft[row * k + j]! * leftScale;
    }
    for (let c = 0; c < svd.cols; c++) b[j * svd.cols + c] = svd.rightT[j * svd.cols + c]! * root;
  }
  return { a, b };
}

/** A·B for row-major A (rows × r) and B (r × cols), in float64 accumulation. */
export function multiplyFactors(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  rows: number,
  rank: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(rows * cols);
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    row.fill(0);
    for (let j = 0; j < rank; j++) {
      const x = a[i * rank + j]!;
      if (x === 0) continue;
      const offset = j * cols;
      for (let c = 0; c < cols; c++) row[c] += x * b[offset + c]!;
    }
    out.set(row, i * cols);
  }
  return out;
}

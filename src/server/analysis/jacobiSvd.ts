/**
 * Singular value decomposition by one-sided Jacobi rotations in float64 (Hestenes' method).
 *
 * Plane rotations make the columns of the smaller side mutually orthogonal; their norms
 * are the singular values and the accumulated rotations the right singular vectors. It
 * works on W itself, without forming WᵀW, so small singular values stay accurate to a few
 * units of rounding relative to σ₁. Slow (≈ 3·q²·p flops per sweep for a p × q problem, q
 * the smaller side, a handful of sweeps): the reference the fast routes are tested against,
 * the route for small matrices, and the exact small SVD inside the randomized one.
 */

/** Sweeps after which a matrix that has not converged is reported as such. */
const MAX_SWEEPS = 60;

export interface JacobiSvd {
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

interface Rotated {
  /** n columns of length m (m ≥ n), one after another, mutually orthogonal. */
  readonly columns: Float64Array;
  /** Their squared norms. */
  readonly norms: Float64Array;
  /** The accumulated rotations, n columns of length n, or null when not asked for. */
  readonly rotations: Float64Array | null;
  readonly m: number;
  readonly n: number;
  readonly tall: boolean;
  readonly sweeps: number;
}

/** Orthogonalise the columns of the tall orientation of `values` (see the module comment). */
function rotate(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  withVectors: boolean,
): Rotated {
  if (rows * cols !== values.length) {
    throw new RangeError(
      `a ${rows} × ${cols} matrix needs ${rows * cols} values, got ${values.length}`,
    );
  }
  // Columns of the tall orientation: n columns of length m, m ≥ n, stored one after another.
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const columns = new Float64Array(m * n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const value = values[r * cols + c]!;
      if (tall) columns[c * m + r] = value;
      else columns[r * m + c] = value;
    }
  }
  let rotations: Float64Array | null = null;
  if (withVectors) {
    rotations = new Float64Array(n * n);
    for (let j = 0; j < n; j++) rotations[j * n + j] = 1;
  }
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) norms[j] = dot(columns, j * m, j * m, m);
  const epsilon = 2.220446049250313e-16;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = norms[p]!;
        const beta = norms[q]!;
        const gamma = dot(columns, p * m, q * m, m);
        if (gamma === 0 || Math.abs(gamma) <= epsilon * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        planeRotation(columns, p * m, q * m, m, c, s);
        if (rotations) planeRotation(rotations, p * n, q * n, n, c, s);
        // Recomputed rather than updated, so that rounding cannot accumulate over sweeps.
        norms[p] = dot(columns, p * m, p * m, m);
        norms[q] = dot(columns, q * m, q * m, m);
      }
    }
    if (!rotated) return { columns, norms, rotations, m, n, tall, sweeps: sweep + 1 };
  }
  throw new Error(`the Jacobi SVD did not converge in ${MAX_SWEEPS} sweeps`);
}

/**
 * Singular values (descending) of the `rows` × `cols` row-major matrix `values`.
 * Works on the columns of the side with fewer entries, so `min(rows, cols)` values result.
 */
export function jacobiSingularValues(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
): Float64Array {
  const sigma = rotate(values, rows, cols, false).norms.map(Math.sqrt);
  return sigma.sort().reverse();
}

/** Full thin SVD of the `rows` × `cols` row-major matrix `values`, singular vectors included. */
export function jacobiSvd(values: ArrayLike<number>, rows: number, cols: number): JacobiSvd {
  const { columns, norms, rotations, m, n, tall, sweeps } = rotate(values, rows, cols, true);
  const v = rotations!;
  const sigmaOf = (j: number) => Math.sqrt(norms[j]!);
  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y]! - norms[x]!);
  const singularValues = Float64Array.from(order, sigmaOf);
  const scaledLeft = new Float64Array(rows * n);
  const rightT = new Float64Array(n * cols);
  order.forEach((j, rank) => {
    const sigma = sigmaOf(j);
    if (tall) {
      // W = (W·V)·Vᵀ: the rotated columns are U·Σ, V's columns the right vectors.
      for (let r = 0; r < rows; r++) scaledLeft[r * n + rank] = columns[j * m + r]!;
      for (let c = 0; c < cols; c++) rightT[rank * cols + c] = v[j * n + c]!;
    } else {
      // Wᵀ = (Wᵀ·V)·Vᵀ, so W = V·(Wᵀ·V)ᵀ: left = V·Σ, right = (Wᵀ·V / σ)ᵀ.
      for (let r = 0; r < rows; r++) scaledLeft[r * n + rank] = v[j * n + r]! * sigma;
      for (let c = 0; c < cols; c++) {
        rightT[rank * cols + c] = sigma > 0 ? columns[j * m + c]! / sigma : 0;
      }
    }
  });
  return { rows, cols, singularValues, scaledLeft, rightT, sweeps };
}

function planeRotation(
  values: Float64Array,
  a: number,
  b: number,
  length: number,
  c: number,
  s: number,
): void {
  for (let i = 0; i < length; i++) {
    const x = values[a + i]!;
    const y = values[b + i]!;
    values[a + i] = c * x - s * y;
    values[b + i] = s * x + c * y;
  }
}

function dot(values: Float64Array, a: number, b: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum += values[a + i]! * values[b + i]!;
  return sum;
}

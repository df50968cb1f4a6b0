/**
 * Singular values by one-sided Jacobi rotations in float64 (Hestenes' method).
 *
 * Slow (O(rows·cols²) per sweep, a handful of sweeps) but simple and accurate to a few
 * units of rounding relative to σ₁, without forming WᵀW: the reference the fast routes are
 * tested against, and the route for small matrices where it costs nothing.
 */

/** Sweeps after which a matrix that has not converged is reported as such. */
const MAX_SWEEPS = 60;

/**
 * Singular values (descending) of the `rows` × `cols` row-major matrix `values`.
 * Works on the columns of the side with fewer entries, so `min(rows, cols)` values result.
 */
export function jacobiSingularValues(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
): Float64Array {
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
        const pStart = p * m;
        const qStart = q * m;
        for (let i = 0; i < m; i++) {
          const x = columns[pStart + i]!;
          const y = columns[qStart + i]!;
          columns[pStart + i] = c * x - s * y;
          columns[qStart + i] = s * x + c * y;
        }
        // Recomputed rather than updated, so that rounding cannot accumulate over sweeps.
        norms[p] = dot(columns, pStart, pStart, m);
        norms[q] = dot(columns, qStart, qStart, m);
      }
    }
    if (!rotated) {
      const sigma = norms.map(Math.sqrt);
      return sigma.sort().reverse();
    }
  }
  throw new Error(`the Jacobi SVD did not converge in ${MAX_SWEEPS} sweeps`);
}

function dot(values: Float64Array, a: number, b: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum += values[a + i]! * values[b + i]!;
  return sum;
}

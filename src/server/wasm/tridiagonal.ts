// Eigenvalues of a symmetric tridiagonal matrix by the square-root-free implicit QL
// method (Pal, Walker and Kahan's variant), compiled to WebAssembly with AssemblyScript by
// scripts/build-wasm.mjs. Called by tridiagonalEigenvalues in
// src/server/analysis/symmetricEigen.ts, which documents the method; the host copies the
// diagonal and off-diagonal into this module's memory and reads the eigenvalues back.
//
// The QL step is carried out on the squares of the off-diagonal entries: with c² and s²
// of each rotation in place of c and s, a step needs no square root. The matrix is first
// scaled by a power of two (exact) to a norm near 1, so that no square overflows or
// underflows where it matters. The host calls `deflate` in slices of eigenvalues, to poll
// for cancellation (and so that the engine's optimised code runs after the first slice).

/** First byte the host may use (after this module's static data), 16-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

function get(p: usize, i: i32): f64 {
  return load<f64>(p + ((<usize>i) << 3));
}

function put(p: usize, i: i32, value: f64): void {
  store<f64>(p + ((<usize>i) << 3), value);
}

const EPSILON: f64 = 2.220446049250313e-16;

/** Bounds of p·(p + b) inside which its reciprocal and the products with it stay normal. */
const TINY: f64 = 1e-250;
const HUGE: f64 = 1e250;

/**
 * Iterations per eigenvalue with two shifts (the eigenvalues of the leading 2 × 2 block);
 * later ones take the nearer of the two alone, as a pair can stall where the other one
 * is no closer to an eigenvalue than to the rest (the 3 × 3 1-2-1 matrix: shifts 1 and 3).
 */
const PAIRED_ITERATIONS = 2;

/** 2^exponent, the power of two the matrix was scaled by (prepare), and the split bound². */
let exponent: i32 = 0;
let negligible2: f64 = 0;

/**
 * Readies the n × n tridiagonal matrix with diagonal `d` (n values) and off-diagonal `e`
 * (n − 1 values; the array holds n) for `deflate`, in place: both scaled by a power of two
 * (exact) to ‖T‖ in [0.5, 1), ‖T‖ = maxᵢ |dᵢ| + 2|eᵢ|, and e replaced by its squares.
 */
export function prepare(d: usize, e: usize, n: i32): void {
  exponent = 0;
  negligible2 = 0;
  if (n <= 0) return;
  put(e, n - 1, 0);
  let norm: f64 = 0;
  for (let i = 0; i < n; i++) norm = max(norm, abs(get(d, i)) + 2 * abs(get(e, i)));
  // Clamped where 2^±exponent would not be finite.
  if (norm > 0 && isFinite(norm)) {
    exponent = min(max(<i32>Math.floor(Math.log2(norm)) + 1, -1000), 1000);
  }
  const scale = Math.pow(2, <f64>-exponent);
  for (let i = 0; i < n; i++) {
    put(d, i, get(d, i) * scale);
    const value = get(e, i) * scale;
    put(e, i, value * value);
  }
  const negligible = EPSILON * norm * scale;
  negligible2 = negligible * negligible;
}

/** The eigenvalues in `d` (n values) back to the matrix's scale, after `deflate`. */
export function finish(d: usize, n: i32): void {
  const unscale = Math.pow(2, <f64>exponent);
  for (let i = 0; i < n; i++) put(d, i, get(d, i) * unscale);
}

/**
 * QL iterations on the prepared matrix (`d`, squares `e2`) until d[first … last) are
 * eigenvalues (of the scaled matrix; d[0 … first) already are). An off-diagonal entry
 * splits the matrix where |eᵢ| ≤ ε·(|dᵢ| + |dᵢ₊₁|) or |eᵢ| ≤ ε·‖T‖. Returns 0, or −1 when an
 * eigenvalue needs more than `maxIterations` iterations (two QL steps each).
 */
export function deflate(
  d: usize,
  e2: usize,
  n: i32,
  first: i32,
  last: i32,
  maxIterations: i32,
): i32 {
  for (let l = first; l < min(last, n); l++) {
    for (let iteration = 0; ; iteration++) {
      let m = l;
      for (; m < n - 1; m++) {
        const bound = EPSILON * (abs(get(d, m)) + abs(get(d, m + 1)));
        const square = get(e2, m);
        if (square <= bound * bound || square <= negligible2) break;
      }
      if (m === l) break;
      if (iteration >= maxIterations) return -1;
      put(e2, m, 0);
      // Shifts: the eigenvalues of the leading 2 × 2 block, the one nearer d[l] first.
      const dl = get(d, l);
      const dl1 = get(d, l + 1);
      const root = Math.sqrt(get(e2, l));
      const g = (dl1 - dl) / (2 * root);
      const r = abs(g) < 1e150 ? Math.sqrt(g * g + 1) : abs(g);
      const shiftA = dl - root / (g + (g >= 0 ? r : -r));
      const shiftB = dl + dl1 - shiftA;
      const paired = iteration < PAIRED_ITERATIONS;
      if (m === l + 1) {
        // A 2 × 2 block: its eigenvalues are the shifts.
        put(d, l, shiftA);
        put(d, l + 1, shiftB);
        put(e2, l, 0);
        continue;
      }
      // Paired: two QL steps at once, one with each shift, the second a row behind the first
      // (its row i is final once the first has passed row i − 1): two independent chains
      // of dependent arithmetic that the processor overlaps. The row step is written out
      // for each (the compiler would not inline a shared function here). Per row i, with
      // γ, p, c² and s² of the row below and b = e²ᵢ: c² = p/(p + b), s² = b/(p + b),
      // γ ← c²·(dᵢ − σ) − s²·γ, d[i + 1] = γ_below + dᵢ − γ, e²[i + 1] = s²_below·(p + b)
      // (not on the first row), p ← γ²/c². As γ = N/(p + b) with N = p·(dᵢ − σ) − b·γ_below,
      // one division 1/(p·(p + b)) gives s², γ and p; c² = 0 (p = 0) and p·(p + b) out of
      // range take the plain formulas.
      let cA: f64 = 1;
      let sA: f64 = 0;
      let gammaA = get(d, m) - shiftA;
      let pA = gammaA * gammaA;
      let cB: f64 = 1;
      let sB: f64 = 0;
      let gammaB: f64 = 0;
      let pB: f64 = 0;
      for (let i = m - 1; i >= l - 1; i--) {
        if (i >= l) {
          const bb = get(e2, i);
          const sum = pA + bb;
          if (i !== m - 1) put(e2, i + 1, sA * sum);
          const alpha = get(d, i);
          const previousGamma = gammaA;
          const denominator = sum * pA;
          if (denominator > TINY && denominator < HUGE) {
            const numerator = pA * (alpha - shiftA) - bb * previousGamma;
            const inverse = 1 / denominator;
            const scaled = pA * inverse;
            gammaA = numerator * scaled;
            sA = bb * scaled;
            cA = pA * scaled;
            pA = numerator * numerator * inverse;
          } else {
            const previousC = cA;
            cA = sum !== 0 ? pA / sum : 1;
            sA = sum !== 0 ? bb / sum : 0;
            gammaA = cA * (alpha - shiftA) - sA * previousGamma;
            pA = cA !== 0 ? (gammaA * gammaA) / cA : previousC * bb;
          }
          put(d, i + 1, previousGamma + (alpha - gammaA));
        } else {
          put(e2, l, sA * pA);
          put(d, l, shiftA + gammaA);
        }
        if (!paired) continue;
        if (i === m - 1) {
          gammaB = get(d, m) - shiftB;
          pB = gammaB * gammaB;
          continue;
        }
        const j = i + 1;
        const bb = get(e2, j);
        const sum = pB + bb;
        if (j !== m - 1) put(e2, j + 1, sB * sum);
        const alpha = get(d, j);
        const previousGamma = gammaB;
        const denominator = sum * pB;
        if (denominator > TINY && denominator < HUGE) {
          const numerator = pB * (alpha - shiftB) - bb * previousGamma;
          const inverse = 1 / denominator;
          const scaled = pB * inverse;
          gammaB = numerator * scaled;
          sB = bb * scaled;
          cB = pB * scaled;
          pB = numerator * numerator * inverse;
        } else {
          const previousC = cB;
          cB = sum !== 0 ? pB / sum : 1;
          sB = sum !== 0 ? bb / sum : 0;
          gammaB = cB * (alpha - shiftB) - sB * previousGamma;
          pB = cB !== 0 ? (gammaB * gammaB) / cB : previousC * bb;
        }
        put(d, j + 1, previousGamma + (alpha - gammaB));
      }
      if (paired) {
        put(e2, l, sB * pB);
        put(d, l, shiftB + gammaB);
      }
    }
  }
  return 0;
}

// Householder QR of one panel of the dense → band reduction, compiled to WebAssembly
// (SIMD) with AssemblyScript by scripts/build-wasm.mjs. The same arithmetic as panelQr in
// src/server/analysis/symmetricEigen.ts, which documents it and runs where this module
// cannot load; the host copies the panel into this module's memory and reads R, the
// reflectors and T back.
//
// Layouts (f64): the panel is column-major m × nb; the reflectors column-major m × count
// (count = min(m, nb)), unit first entry, zero above it; T row-major count × count.

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

/** Σ a[i]·b[i] for i < length. */
function dot(a: usize, b: usize, length: i32): f64 {
  let sumV = f64x2.splat(0);
  let i = 0;
  for (; i + 2 <= length; i += 2) {
    const offset = (<usize>i) << 3;
    sumV = f64x2.add(sumV, f64x2.mul(v128.load(a + offset), v128.load(b + offset)));
  }
  let sum = f64x2.extract_lane(sumV, 0) + f64x2.extract_lane(sumV, 1);
  for (; i < length; i++) sum += get(a, i) * get(b, i);
  return sum;
}

/** y[i] −= scale·x[i] for i < length. */
function axpy(y: usize, x: usize, scale: f64, length: i32): void {
  const scaleV = f64x2.splat(scale);
  let i = 0;
  for (; i + 2 <= length; i += 2) {
    const offset = (<usize>i) << 3;
    v128.store(
      y + offset,
      f64x2.sub(v128.load(y + offset), f64x2.mul(v128.load(x + offset), scaleV)),
    );
  }
  for (; i < length; i++) put(y, i, get(y, i) - scale * get(x, i));
}

/**
 * Reduces the panel to R (on and above the diagonal; zeros below) and writes the
 * reflectors and T of Q = I − V·T·Vᵀ. With `round32` ≠ 0 the reflectors are rounded to
 * float32 (as the products will see them) and T is formed for the rounded vectors, so that
 * Q stays exactly orthogonal. `z` is scratch for nb values. Returns count.
 */
export function panelQr(
  panel: usize,
  m: i32,
  nb: i32,
  round32: i32,
  vectors: usize,
  t: usize,
  z: usize,
): i32 {
  const count = min(nb, m);
  for (let j = 0; j < count; j++) {
    const column = panel + ((<usize>(j * m + j)) << 3);
    const length = m - j;
    const v = vectors + ((<usize>(j * m)) << 3);
    for (let i = 0; i < j; i++) put(v, i, 0);
    put(v, j, 1);
    const below = v + ((<usize>(j + 1)) << 3);
    const alpha = load<f64>(column);
    const rest = column + 8;
    const squares = dot(rest, rest, length - 1);
    let tau: f64 = 0;
    if (squares === 0) {
      for (let i = 1; i < length; i++) put(v, j + i, 0);
    } else {
      const norm = Math.sqrt(alpha * alpha + squares);
      const beta = alpha <= 0 ? norm : -norm;
      const scale = 1 / (alpha - beta);
      for (let i = 1; i < length; i++) {
        put(v, j + i, get(column, i) * scale);
        put(column, i, 0);
      }
      store<f64>(column, beta);
      tau = (beta - alpha) / beta;
      for (let c = j + 1; c < nb; c++) {
        const target = panel + ((<usize>(c * m + j)) << 3);
        const product = tau * (load<f64>(target) + dot(below, target + 8, length - 1));
        store<f64>(target, load<f64>(target) - product);
        axpy(target + 8, below, product, length - 1);
      }
    }
    let squared: f64 = 1;
    for (let i = 1; i < length; i++) {
      let value = get(v, j + i);
      if (round32 !== 0) value = <f64>(<f32>value);
      put(v, j + i, value);
      squared += value * value;
    }
    const exactTau = tau === 0 ? 0 : 2 / squared;
    // T[0:j, j] = −τ·T[0:j, 0:j]·(V[:, 0:j]ᵀ·v_j), the products over rows j … m.
    put(t, j * count + j, exactTau);
    const vj = v + ((<usize>j) << 3);
    for (let p = 0; p < j; p++) {
      put(z, p, dot(vectors + ((<usize>(p * m + j)) << 3), vj, length));
    }
    for (let p = 0; p < j; p++) {
      let sum: f64 = 0;
      for (let q = p; q < j; q++) sum += get(t, p * count + q) * get(z, q);
      put(t, p * count + j, -exactTau * sum);
    }
    for (let p = j + 1; p < count; p++) put(t, p * count + j, 0);
  }
  return count;
}

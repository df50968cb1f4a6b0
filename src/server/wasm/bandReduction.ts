// Band → tridiagonal reduction of a symmetric matrix by Householder bulge chasing,
// compiled to WebAssembly (SIMD) with AssemblyScript by scripts/build-wasm.mjs. The same
// algorithm as bandToTridiagonal in src/server/analysis/symmetricEigen.ts, which documents
// it; the host copies the band into this module's memory and reads the result back.
//
// Band storage: entry (r, c) of the lower band, 0 ≤ r − c < width, is the f64 at
// band + 8·(c·width + r − c).

/** First byte the host may use (after this module's static data), 16-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

let band: usize = 0;
let width: i32 = 0;

function at(r: i32, c: i32): usize {
  return band + ((<usize>(c * width + r - c)) << 3);
}

function get(p: usize, i: i32): f64 {
  return load<f64>(p + ((<usize>i) << 3));
}

function put(p: usize, i: i32, value: f64): void {
  store<f64>(p + ((<usize>i) << 3), value);
}

/**
 * Reflector for the `length` entries of column `col` from row `start`: v (v[0] = 1) into
 * `v`, the column set to (β, 0, …); returns τ (0: nothing below the first entry).
 */
function annihilate(start: i32, length: i32, col: i32, v: usize): f64 {
  const first = at(start, col);
  const alpha = load<f64>(first);
  let below: f64 = 0;
  for (let i = 1; i < length; i++) {
    const x = get(first, i);
    below += x * x;
  }
  put(v, 0, 1);
  if (below === 0) {
    for (let i = 1; i < length; i++) put(v, i, 0);
    return 0;
  }
  const norm = Math.sqrt(alpha * alpha + below);
  const beta = alpha <= 0 ? norm : -norm;
  const scale = 1 / (alpha - beta);
  for (let i = 1; i < length; i++) {
    put(v, i, get(first, i) * scale);
    put(first, i, 0);
  }
  store<f64>(first, beta);
  return (beta - alpha) / beta;
}

/** H·A·H on the length × length diagonal block at s. */
function twoSided(s: i32, length: i32, v: usize, tau: f64, p: usize): void {
  if (tau === 0) return;
  for (let r = 0; r < length; r++) put(p, r, 0);
  for (let c = 0; c < length; c++) {
    const column = at(s + c, s + c) - ((<usize>c) << 3);
    const vc = get(v, c);
    const vcV = f64x2.splat(vc);
    let sum = get(column, c) * vc;
    let sumV = f64x2.splat(0);
    let r = c + 1;
    for (; r + 2 <= length; r += 2) {
      const offset = (<usize>r) << 3;
      const value = v128.load(column + offset);
      sumV = f64x2.add(sumV, f64x2.mul(value, v128.load(v + offset)));
      v128.store(p + offset, f64x2.add(v128.load(p + offset), f64x2.mul(value, vcV)));
    }
    for (; r < length; r++) {
      const value = get(column, r);
      sum += value * get(v, r);
      put(p, r, get(p, r) + value * vc);
    }
    put(p, c, get(p, c) + sum + f64x2.extract_lane(sumV, 0) + f64x2.extract_lane(sumV, 1));
  }
  let pv: f64 = 0;
  for (let r = 0; r < length; r++) {
    const scaled = get(p, r) * tau;
    put(p, r, scaled);
    pv += scaled * get(v, r);
  }
  const k = 0.5 * tau * pv;
  for (let r = 0; r < length; r++) put(p, r, get(p, r) - k * get(v, r));
  for (let c = 0; c < length; c++) {
    const column = at(s + c, s + c) - ((<usize>c) << 3);
    const vc = f64x2.splat(get(v, c));
    const wc = f64x2.splat(get(p, c));
    let r = c;
    for (; r + 2 <= length; r += 2) {
      const offset = (<usize>r) << 3;
      const update = f64x2.add(
        f64x2.mul(v128.load(v + offset), wc),
        f64x2.mul(v128.load(p + offset), vc),
      );
      v128.store(column + offset, f64x2.sub(v128.load(column + offset), update));
    }
    for (; r < length; r++) {
      put(column, r, get(column, r) - (get(v, r) * get(p, c) + get(p, r) * get(v, c)));
    }
  }
}

/** Rows [rowStart, rowStart + rows) × columns [colStart, colStart + length) ← block·H. */
function applyRight(
  rowStart: i32,
  rows: i32,
  colStart: i32,
  length: i32,
  v: usize,
  tau: f64,
  sums: usize,
): void {
  if (tau === 0) return;
  for (let r = 0; r < rows; r++) put(sums, r, 0);
  for (let c = 0; c < length; c++) {
    const column = at(rowStart, colStart + c);
    const vc = f64x2.splat(get(v, c));
    let r = 0;
    for (; r + 2 <= rows; r += 2) {
      const offset = (<usize>r) << 3;
      v128.store(
        sums + offset,
        f64x2.add(v128.load(sums + offset), f64x2.mul(v128.load(column + offset), vc)),
      );
    }
    for (; r < rows; r++) put(sums, r, get(sums, r) + get(column, r) * get(v, c));
  }
  for (let c = 0; c < length; c++) {
    const column = at(rowStart, colStart + c);
    const scaled = tau * get(v, c);
    const scaledV = f64x2.splat(scaled);
    let r = 0;
    for (; r + 2 <= rows; r += 2) {
      const offset = (<usize>r) << 3;
      v128.store(
        column + offset,
        f64x2.sub(v128.load(column + offset), f64x2.mul(v128.load(sums + offset), scaledV)),
      );
    }
    for (; r < rows; r++) put(column, r, get(column, r) - get(sums, r) * scaled);
  }
}

/** Columns (start, start + length) of rows [next, next + rows) ← H·block. */
function applyLeft(next: i32, rows: i32, start: i32, length: i32, v: usize, tau: f64): void {
  if (tau === 0) return;
  for (let c = start + 1; c < start + length; c++) {
    const column = at(next, c);
    let sumV = f64x2.splat(0);
    let sum: f64 = 0;
    let i = 0;
    for (; i + 2 <= rows; i += 2) {
      const offset = (<usize>i) << 3;
      sumV = f64x2.add(sumV, f64x2.mul(v128.load(v + offset), v128.load(column + offset)));
    }
    for (; i < rows; i++) sum += get(v, i) * get(column, i);
    const scaled = tau * (sum + f64x2.extract_lane(sumV, 0) + f64x2.extract_lane(sumV, 1));
    const scaledV = f64x2.splat(scaled);
    i = 0;
    for (; i + 2 <= rows; i += 2) {
      const offset = (<usize>i) << 3;
      v128.store(
        column + offset,
        f64x2.sub(v128.load(column + offset), f64x2.mul(v128.load(v + offset), scaledV)),
      );
    }
    for (; i < rows; i++) put(column, i, get(column, i) - scaled * get(v, i));
  }
}

/**
 * Reduces the n × n band (half-bandwidth nb, storage width ≥ 2·nb + 1) at `data` to
 * tridiagonal form in place, for sweeps [firstSweep, lastSweep). `scratch` holds 5·nb
 * f64 values. The host calls it in slices of sweeps to poll for cancellation.
 */
export function chaseSweeps(
  data: usize,
  n: i32,
  storageWidth: i32,
  nb: i32,
  firstSweep: i32,
  lastSweep: i32,
  scratch: usize,
): void {
  band = data;
  width = storageWidth;
  const stride = (<usize>nb) << 3;
  let v = scratch;
  let chaseV = scratch + stride;
  const p = scratch + 2 * stride;
  const sums = scratch + 3 * stride;
  for (let sweep = firstSweep; sweep < lastSweep && sweep + 2 < n; sweep++) {
    let start = sweep + 1;
    let length = min(nb, n - start);
    let tau = annihilate(start, length, sweep, v);
    twoSided(start, length, v, tau, p);
    for (;;) {
      const next = start + length;
      if (next >= n) break;
      const nextLength = min(nb, n - next);
      applyRight(next, nextLength, start, length, v, tau, sums);
      const chaseTau = annihilate(next, nextLength, start, chaseV);
      applyLeft(next, nextLength, start, length, chaseV, chaseTau);
      twoSided(next, nextLength, chaseV, chaseTau, p);
      start = next;
      length = nextLength;
      tau = chaseTau;
      const swap = v;
      v = chaseV;
      chaseV = swap;
    }
  }
}

/**
 * Eigenvalues of a dense symmetric matrix in two stages, the way current LAPACK does
 * for large matrices (sytrd_2stage):
 *
 * 1. Dense → band of half-bandwidth `nb`: for each panel of `nb` columns, a Householder QR
 *    of the part below the band (here, O(m·nb²)), then the two-sided update of the
 *    trailing matrix as BLAS-3 products on onnxruntime (A·V and one rank-2nb update).
 * 2. Band → tridiagonal by bulge chasing: each sweep annihilates one column with a
 *    Householder reflector of length nb and chases the bulge it creates down the band,
 *    each step clearing the first column of the bulge (the rest is cleared by the next
 *    sweeps). O(n²·nb), in float64 on a band of half-width 2nb.
 * 3. Eigenvalues of the tridiagonal matrix by implicit QL with Wilkinson shifts, in its
 *    square-root-free form.
 *
 * Every stage checks `isCancelled` between steps.
 */
import type { GemmArray, Matrix, MatMulRuntime } from '../runtime/matmul';
import { instantiateWasm, type WasmMemory } from './wasmLoader';
import { WASM_PAGE_BYTES } from './wasmStats';

export type CancelCheck = () => void;

/** Lower band of a symmetric matrix: entry (r, c), 0 ≤ r − c < width, at c·width + r − c. */
export interface SymmetricBand {
  readonly n: number;
  readonly width: number;
  readonly data: Float64Array;
}

interface Reflector {
  /** v with v[0] = 1. */
  readonly v: Float64Array;
  readonly tau: number;
  readonly beta: number;
}

/**
 * Householder reflector H = I − τ·v·vᵀ with H·x = β·e₁. τ = 0 (H = I) when x has nothing
 * below its first entry.
 */
function householder(x: Float64Array): Reflector {
  const length = x.length;
  const alpha = x[0]!;
  let below = 0;
  for (let i = 1; i < length; i++) below += x[i]! * x[i]!;
  const v = new Float64Array(length);
  v[0] = 1;
  if (below === 0) return { v, tau: 0, beta: alpha };
  const norm = Math.sqrt(alpha * alpha + below);
  const beta = alpha <= 0 ? norm : -norm;
  const scale = 1 / (alpha - beta);
  for (let i = 1; i < length; i++) v[i] = x[i]! * scale;
  return { v, tau: (beta - alpha) / beta, beta };
}

/** Panels whose two-sided updates are gathered before the trailing matrix is rewritten. */
export const PANELS_PER_UPDATE = 8;

/** Block rows of the gathered update (symmetric: the lower triangle's products only). */
const UPDATE_BLOCKS = 8;

/** Columns [from, to) of the first `rows` rows of `data` (rows of `stride` values) into `out`. */
function copyColumns<T extends GemmArray>(
  data: T,
  stride: number,
  from: number,
  to: number,
  rows: number,
  out: T,
): void {
  const cols = to - from;
  if (cols >= 64) {
    for (let r = 0; r < rows; r++) {
      out.set(data.subarray(r * stride + from, r * stride + to) as never, r * cols);
    }
    return;
  }
  // Short rows: a plain loop costs less than a subarray per row.
  for (let r = 0, source = from, target = 0; r < rows; r++, source += stride - cols) {
    for (let c = 0; c < cols; c++) out[target++] = data[source++]!;
  }
}

/**
 * Stage 1 on onnxruntime: the band of `gram` (a full symmetric matrix, row-major, whose
 * buffer the reduction works in: its values are consumed), in the element type of `gram`.
 *
 * The updates are gathered, as LAPACK's latrd does within a block: after a few panels the
 * current matrix is A − L·Rᵀ, with A the working matrix as last rewritten, L = [V₁ W₁ V₂ W₂ …]
 * and R = [W₁ V₁ W₂ V₂ …] the reflectors and corrections of the panels since (Qᵀ·A·Q =
 * A − V·Wᵀ − W·Vᵀ for each). A panel reads its columns as A − L·Rᵀ (one small product) and
 * forms A·V as A·V − L·(Rᵀ·V); every PANELS_PER_UPDATE panels one symmetric rank-2·nb·
 * PANELS_PER_UPDATE product rewrites the trailing part, compacted to the rows and columns
 * not yet reduced, into the other of two buffers. Few large updates instead of one per
 * panel: each pass over the matrix does more arithmetic per byte.
 *
 * L, R, V and W are kept transposed (one row per vector, over the working matrix's side),
 * so that a panel's vectors are appended as whole rows and the products use exactly the
 * vectors gathered so far. Reflectors are zero before their first row; entries of W there
 * are never read (every later read is of rows and columns after it).
 */
export async function reduceToBand<T extends GemmArray>(
  runtime: MatMulRuntime,
  gram: Matrix<T>,
  nb: number,
  check: CancelCheck,
): Promise<SymmetricBand> {
  const n = gram.rows;
  const width = 2 * nb + 1;
  const band = new Float64Array(n * width);
  const Element = (gram.data instanceof Float64Array ? Float64Array : Float32Array) as unknown as {
    new (length: number): T;
  };
  const round32 = !(gram.data instanceof Float64Array);
  const capacity = 2 * nb * PANELS_PER_UPDATE;
  const buffers: [T, T] = [gram.data, new Element(n * n)];
  let which = 0;
  /** Global index of the working matrix's first row and column, and its side. */
  let origin = 0;
  let size = n;
  let current = gram.data.subarray(0, n * n) as T;
  // Lᵀ and Rᵀ: `used` rows of `size` values.
  const leftT = new Element(capacity * n);
  const rightT = new Element(capacity * n);
  let used = 0;
  const scratch = new Element(capacity * n);
  const vT = new Element(nb * n);
  const columnsBuffer = new Element(n * (nb + 1));
  const tMatrix = new Element(nb * nb);
  const half = new Element(nb * nb);
  const rowsOf = (data: T, cols: number, from: number, to: number): T =>
    data.subarray(from * cols, to * cols) as T;
  /** Columns [from, to) of the first `rows` rows of the row-major `data` (row length `size`), contiguous. */
  const columnsOf = (data: T, rows: number, from: number, to: number): Matrix<T> => {
    const cols = to - from;
    const out = scratch.subarray(0, rows * cols) as T;
    copyColumns(data, size, from, to, rows, out);
    return { rows, cols, data: out };
  };
  for (let k = 0; ; k += nb) {
    check();
    let o = k - origin;
    const remaining = n - k;
    if (used + 2 * nb > capacity && remaining > nb + 1) {
      // Rewrite the trailing part: (A − L·Rᵀ)[o:, o:], compacted.
      const side = size - o;
      const compacted = buffers[1 - which]!.subarray(0, side * side) as T;
      const left = await runtime.transpose(columnsOf(leftT, used, o, size));
      const right = await runtime.transpose(columnsOf(rightT, used, o, size));
      await runtime.symmetricProduct<T>(left, right, {
        alpha: -1,
        from: { data: current, stride: size, offset: o },
        c: compacted,
        blocks: UPDATE_BLOCKS,
      });
      check();
      which = 1 - which;
      current = compacted;
      origin = k;
      size = side;
      o = 0;
      used = 0;
    }
    // The panel's columns o … o + w of the current matrix (the last block whole), over all
    // rows of the working matrix; rows o … size are the panel's.
    const w = remaining <= nb + 1 ? remaining : nb;
    const columns = columnsBuffer.subarray(0, size * w) as T;
    copyColumns(current, size, o, o + w, size, columns);
    if (used > 0) {
      await runtime.gemm<T>(
        { rows: used, cols: size, data: rowsOf(leftT, size, 0, used) },
        columnsOf(rightT, used, o, o + w),
        { transA: true, alpha: -1, beta: 1, c: columns, output: columns },
      );
    }
    const at = (r: number, c: number) => columns[(o + r) * w + c]!;
    if (remaining <= nb + 1) {
      for (let r = 0; r < remaining; r++) {
        for (let c = 0; c <= r; c++) band[(k + c) * width + r - c] = at(r, c);
      }
      break;
    }
    for (let r = 0; r < nb; r++) {
      for (let c = 0; c <= r; c++) band[(k + c) * width + r - c] = at(r, c);
    }
    const m = remaining - nb;
    const panelValues = new Float64Array(m * nb);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < nb; j++) panelValues[j * m + i] = at(nb + i, j);
    }
    const { vectors, t, count } = factorPanel(panelValues, m, nb, round32);
    // R: entry (i, j), i ≤ j, of the panel is A[k+nb+i][k+j], inside the band.
    for (let j = 0; j < nb; j++) {
      for (let i = 0; i <= Math.min(j, m - 1); i++) {
        band[(k + j) * width + nb + i - j] = panelValues[j * m + i]!;
      }
    }
    if (count === 0) continue;
    // Vᵀ over the working matrix's columns: zero before `top`.
    const top = o + nb;
    const v: Matrix<T> = { rows: count, cols: size, data: vT.subarray(0, count * size) as T };
    for (let j = 0; j < count; j++) {
      v.data.fill(0, j * size, j * size + top);
      v.data.set(vectors.subarray(j * m, (j + 1) * m) as never, j * size + top);
    }
    // A·V (A streamed once, the small Vᵀ packed), less L·(Rᵀ·V) for the updates not yet
    // applied.
    const av = await runtime.gemm<T>({ rows: size, cols: size, data: current }, v, {
      transB: true,
    });
    if (used > 0) {
      const z = await runtime.gemm<T>(
        { rows: used, cols: size, data: rowsOf(rightT, size, 0, used) },
        v,
        { transB: true },
      );
      await runtime.gemm<T>({ rows: used, cols: size, data: rowsOf(leftT, size, 0, used) }, z, {
        transA: true,
        alpha: -1,
        beta: 1,
        c: av.data,
        output: av.data,
      });
    }
    check();
    // Wᵀ of Qᵀ·A·Q = A − V·Wᵀ − W·Vᵀ, Q = I − V·T·Vᵀ: with X = A·V·T,
    // W = X − ½·V·(Tᵀ·Vᵀ·X), so Wᵀ = Xᵀ − ½·(Xᵀ·V·T)·Vᵀ.
    const tm = { rows: count, cols: count, data: tMatrix.subarray(0, count * count) as T };
    for (let i = 0; i < count * count; i++) tm.data[i] = t[i]!;
    const x = await runtime.gemm<T>(tm, av, { transA: true, transB: true });
    const xv = await runtime.gemm<T>(x, v, { transB: true });
    const halfT = { rows: count, cols: count, data: half.subarray(0, count * count) as T };
    for (let p = 0; p < count; p++) {
      for (let j = 0; j < count; j++) {
        let sum = 0;
        for (let q = 0; q <= j; q++) sum += xv.data[p * count + q]! * t[q * count + j]!;
        halfT.data[p * count + j] = 0.5 * sum;
      }
    }
    await runtime.gemm<T>(halfT, v, { alpha: -1, beta: 1, c: x.data, output: x.data });
    // Lᵀ gains rows [Vᵀ; Wᵀ], Rᵀ gains [Wᵀ; Vᵀ].
    const block = count * size;
    leftT.set(v.data as never, used * size);
    leftT.set(x.data as never, used * size + block);
    rightT.set(x.data as never, used * size);
    rightT.set(v.data as never, used * size + block);
    used += 2 * count;
  }
  return { n, width, data: band };
}

/**
 * Householder QR of the column-major m × nb `panel`, in place: R above the diagonal,
 * reflectors returned as unit lower-trapezoidal `vectors` (column-major m × count) and the
 * upper-triangular `t` of the compact form Q = I − V·T·Vᵀ (count × count, row-major).
 */
export function panelQr(
  panel: Float64Array,
  m: number,
  nb: number,
  round: (value: number) => number,
): { vectors: Float64Array; t: Float64Array; count: number } {
  const count = Math.min(nb, m);
  const vectors = new Float64Array(m * count);
  const t = new Float64Array(count * count);
  for (let j = 0; j < count; j++) {
    const x = panel.slice(j * m + j, (j + 1) * m);
    const { v, tau, beta } = householder(x);
    panel[j * m + j] = beta;
    for (let i = j + 1; i < m; i++) panel[j * m + i] = 0;
    if (tau !== 0) {
      for (let c = j + 1; c < nb; c++) {
        let dot = 0;
        for (let i = 0; i < v.length; i++) dot += v[i]! * panel[c * m + j + i]!;
        dot *= tau;
        for (let i = 0; i < v.length; i++) panel[c * m + j + i]! -= dot * v[i]!;
      }
    }
    // The reflector as the products will see it (rounded to their element type), and τ
    // for that vector, so that I − τ·v·vᵀ stays exactly orthogonal: otherwise each panel's
    // transformation would be off by the rounding of v, an error that adds up.
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      const value = round(v[i]!);
      vectors[j * m + j + i] = value;
      norm += value * value;
    }
    const exactTau = tau === 0 ? 0 : 2 / norm;
    // T[0:j, j] = −τ·T[0:j, 0:j]·(V[:, 0:j]ᵀ·v_j)
    t[j * count + j] = exactTau;
    const z = new Float64Array(j);
    for (let p = 0; p < j; p++) {
      let dot = 0;
      for (let i = j; i < m; i++) dot += vectors[p * m + i]! * vectors[j * m + i]!;
      z[p] = dot;
    }
    for (let p = 0; p < j; p++) {
      let sum = 0;
      for (let q = p; q < j; q++) sum += t[p * count + q]! * z[q]!;
      t[p * count + j] = -exactTau * sum;
    }
  }
  return { vectors, t, count };
}

interface PanelQrExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  panelQr(
    panel: number,
    m: number,
    nb: number,
    round32: number,
    vectors: number,
    t: number,
    z: number,
  ): number;
}

/** A loader of WebAssembly module `name`: instantiated on first call, null when it cannot load. */
function lazyWasm<E>(name: string): () => E | null {
  let exports: E | null | undefined;
  return () => {
    if (exports === undefined) exports = instantiateWasm(name) as unknown as E | null;
    return exports;
  };
}

/** Grows `memory` to hold at least `bytes`. */
function reserve(memory: WasmMemory, bytes: number): void {
  if (bytes > memory.buffer.byteLength) {
    memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE_BYTES));
  }
}

const panelQrModule = lazyWasm<PanelQrExports>('panelQr');

/** Whether the panel QR runs in WebAssembly in this thread. */
export function wasmPanelQrLoaded(): boolean {
  return panelQrModule() !== null;
}

/**
 * panelQr in WebAssembly (src/server/wasm/panelQr.ts) when it loads, else in TypeScript;
 * both run the same arithmetic. `round32`: the reflectors are rounded to float32.
 */
export function factorPanel(
  panel: Float64Array,
  m: number,
  nb: number,
  round32: boolean,
): { vectors: Float64Array; t: Float64Array; count: number } {
  const wasm = panelQrModule();
  if (!wasm) return panelQr(panel, m, nb, round32 ? Math.fround : (value) => value);
  const count = Math.min(nb, m);
  const align = (bytes: number) => (bytes + 15) & ~15;
  const panelAt = align(wasm.heapBase());
  const vectorsAt = panelAt + align(m * nb * 8);
  const tAt = vectorsAt + align(m * count * 8);
  const zAt = tAt + align(count * count * 8);
  reserve(wasm.memory, zAt + nb * 8);
  const memory = wasm.memory;
  new Float64Array(memory.buffer, panelAt, m * nb).set(panel);
  wasm.panelQr(panelAt, m, nb, round32 ? 1 : 0, vectorsAt, tAt, zAt);
  panel.set(new Float64Array(memory.buffer, panelAt, m * nb));
  return {
    vectors: new Float64Array(memory.buffer, vectorsAt, m * count),
    t: new Float64Array(memory.buffer, tAt, count * count),
    count,
  };
}

interface BandReductionExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  chaseSweeps(
    data: number,
    n: number,
    width: number,
    nb: number,
    firstSweep: number,
    lastSweep: number,
    scratch: number,
  ): void;
}

const bandReductionModule = lazyWasm<BandReductionExports>('bandReduction');

/** Whether the bulge chase runs in WebAssembly in this thread. */
export function wasmBandReductionLoaded(): boolean {
  return bandReductionModule() !== null;
}

/** Sweeps run between two cancellation checks in the WebAssembly path. */
const SWEEPS_PER_CHECK = 256;

/**
 * Stage 2: the tridiagonal (diagonal, off-diagonal) of a band of half-bandwidth `nb`, in
 * WebAssembly (src/server/wasm/bandReduction.ts) when it loads, else in TypeScript; both
 * run the same arithmetic. The band is consumed.
 */
export function bandToTridiagonal(
  band: SymmetricBand,
  nb: number,
  check: CancelCheck,
): { diagonal: Float64Array; offDiagonal: Float64Array } {
  const wasm = bandReductionModule();
  if (!wasm) return bandToTridiagonalPortable(band, nb, check);
  const { n, width } = band;
  const scratch = (wasm.heapBase() + 15) & ~15;
  const data = scratch + ((5 * nb * 8 + 15) & ~15);
  reserve(wasm.memory, data + band.data.byteLength);
  const memory = wasm.memory;
  new Float64Array(memory.buffer, data, band.data.length).set(band.data);
  for (let sweep = 0; sweep + 2 < n; sweep += SWEEPS_PER_CHECK) {
    check();
    wasm.chaseSweeps(data, n, width, nb, sweep, sweep + SWEEPS_PER_CHECK, scratch);
  }
  band.data.set(new Float64Array(memory.buffer, data, band.data.length));
  return tridiagonalOf(band);
}

function tridiagonalOf({ n, width, data }: SymmetricBand): {
  diagonal: Float64Array;
  offDiagonal: Float64Array;
} {
  const diagonal = new Float64Array(n);
  const offDiagonal = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) diagonal[i] = data[i * width]!;
  for (let i = 0; i + 1 < n; i++) offDiagonal[i] = data[i * width + 1]!;
  return { diagonal, offDiagonal };
}

/** Stage 2 in TypeScript (the WebAssembly module's reference and fallback). */
export function bandToTridiagonalPortable(
  band: SymmetricBand,
  nb: number,
  check: CancelCheck,
): { diagonal: Float64Array; offDiagonal: Float64Array } {
  const { n, width, data } = band;
  const at = (r: number, c: number) => c * width + r - c;
  const column = (start: number, length: number, col: number) => {
    const x = new Float64Array(length);
    for (let i = 0; i < length; i++) x[i] = data[at(start + i, col)]!;
    return x;
  };
  const annihilate = (start: number, length: number, col: number): Reflector => {
    const reflector = householder(column(start, length, col));
    data[at(start, col)] = reflector.beta;
    for (let i = 1; i < length; i++) data[at(start + i, col)] = 0;
    return reflector;
  };
  const p = new Float64Array(nb);
  const rowSums = new Float64Array(nb);
  // A[s.., s..] ← H·A·H on the L × L diagonal block at s: with p = τ·A·v and
  // w = p − ½τ(pᵀv)·v, A − v·wᵀ − w·vᵀ. Both passes walk the stored columns in order.
  const twoSided = (s: number, { v, tau }: Reflector) => {
    const length = v.length;
    if (tau === 0) return;
    p.fill(0, 0, length);
    for (let c = 0; c < length; c++) {
      const base = at(s + c, s + c) - c;
      const vc = v[c]!;
      let sum = data[base + c]! * vc;
      for (let r = c + 1; r < length; r++) {
        const value = data[base + r]!;
        sum += value * v[r]!;
        p[r]! += value * vc;
      }
      p[c]! += sum;
    }
    let pv = 0;
    for (let r = 0; r < length; r++) {
      p[r]! *= tau;
      pv += p[r]! * v[r]!;
    }
    const k = 0.5 * tau * pv;
    for (let r = 0; r < length; r++) p[r]! -= k * v[r]!;
    for (let c = 0; c < length; c++) {
      const vc = v[c]!;
      const wc = p[c]!;
      const base = at(s + c, s + c) - c;
      for (let r = c; r < length; r++) data[base + r]! -= v[r]! * wc + p[r]! * vc;
    }
  };
  // Rows [rowStart, rowStart + rows) × columns [colStart, colStart + v.length) ← block·H.
  const applyRight = (rowStart: number, rows: number, colStart: number, { v, tau }: Reflector) => {
    if (tau === 0) return;
    rowSums.fill(0, 0, rows);
    for (let c = 0; c < v.length; c++) {
      const base = at(rowStart, colStart + c);
      const vc = v[c]!;
      for (let r = 0; r < rows; r++) rowSums[r]! += data[base + r]! * vc;
    }
    for (let c = 0; c < v.length; c++) {
      const base = at(rowStart, colStart + c);
      const vc = tau * v[c]!;
      for (let r = 0; r < rows; r++) data[base + r]! -= rowSums[r]! * vc;
    }
  };
  for (let sweep = 0; sweep + 2 < n; sweep++) {
    if ((sweep & 63) === 0) check();
    let start = sweep + 1;
    let length = Math.min(nb, n - start);
    let reflector = annihilate(start, length, sweep);
    twoSided(start, reflector);
    for (;;) {
      const next = start + length;
      if (next >= n) break;
      const nextLength = Math.min(nb, n - next);
      applyRight(next, nextLength, start, reflector);
      const chase = annihilate(next, nextLength, start);
      if (chase.tau !== 0) {
        const { v, tau } = chase;
        for (let c = start + 1; c < start + length; c++) {
          const base = at(next, c);
          let sum = 0;
          for (let i = 0; i < nextLength; i++) sum += v[i]! * data[base + i]!;
          sum *= tau;
          for (let i = 0; i < nextLength; i++) data[base + i]! -= sum * v[i]!;
        }
      }
      twoSided(next, chase);
      start = next;
      length = nextLength;
      reflector = chase;
    }
  }
  return tridiagonalOf(band);
}

/** √(a² + b²), without Math.hypot's cost where the squares cannot overflow or underflow. */
function hypot(a: number, b: number): number {
  const magnitude = Math.max(Math.abs(a), Math.abs(b));
  if (magnitude < 1e150 && magnitude > 1e-150) return Math.sqrt(a * a + b * b);
  return Math.hypot(a, b);
}

/** Iterations of the QL method per eigenvalue before giving up (it needs about two). */
const MAX_QL_ITERATIONS = 60;

interface TridiagonalExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  prepare(d: number, e: number, n: number): void;
  deflate(
    d: number,
    e2: number,
    n: number,
    first: number,
    last: number,
    maxIterations: number,
  ): number;
  finish(d: number, n: number): void;
}

const tridiagonalModule = lazyWasm<TridiagonalExports>('tridiagonal');

/** Whether the tridiagonal eigenvalues are computed in WebAssembly in this thread. */
export function wasmTridiagonalLoaded(): boolean {
  return tridiagonalModule() !== null;
}

/** Eigenvalues deflated between two cancellation checks in the WebAssembly path. */
const EIGENVALUES_PER_CHECK = 256;

/**
 * Eigenvalues (descending) of the symmetric tridiagonal matrix with `diagonal` d and
 * `offDiagonal` e. In WebAssembly (src/server/wasm/tridiagonal.ts) when it loads: the
 * implicit QL method in its square-root-free form (Pal–Walker–Kahan), which works on the
 * squares eᵢ² and per step needs only c² and s² of a rotation, no square root. The first
 * two iterations for each eigenvalue make two QL steps, with the two eigenvalues of the
 * leading 2 × 2 block as shifts, run one row apart so that their arithmetic overlaps; later
 * ones one step with the nearer (Wilkinson's). The splitting rule is that of
 * tridiagonalEigenvaluesQl (TypeScript, one Wilkinson shift per step), which runs where the
 * module cannot load. `check` is called between slices of eigenvalues.
 */
export function tridiagonalEigenvalues(
  diagonal: Float64Array,
  offDiagonal: Float64Array,
  check: CancelCheck = () => {},
): Float64Array {
  const wasm = tridiagonalModule();
  if (!wasm) return tridiagonalEigenvaluesQl(diagonal, offDiagonal);
  const n = diagonal.length;
  const dAt = (wasm.heapBase() + 15) & ~15;
  const eAt = dAt + ((n * 8 + 15) & ~15);
  reserve(wasm.memory, eAt + n * 8);
  const memory = wasm.memory;
  new Float64Array(memory.buffer, dAt, n).set(diagonal);
  new Float64Array(memory.buffer, eAt, n).set(offDiagonal.subarray(0, Math.max(0, n - 1)));
  wasm.prepare(dAt, eAt, n);
  for (let first = 0; first < n; first += EIGENVALUES_PER_CHECK) {
    check();
    const last = first + EIGENVALUES_PER_CHECK;
    if (wasm.deflate(dAt, eAt, n, first, last, MAX_QL_ITERATIONS) !== 0) {
      throw new Error('the tridiagonal eigenvalue iteration did not converge');
    }
  }
  wasm.finish(dAt, n);
  return Float64Array.from(new Float64Array(memory.buffer, dAt, n))
    .sort()
    .reverse();
}

/**
 * Eigenvalues (descending) of the symmetric tridiagonal matrix with `diagonal` d and
 * `offDiagonal` e, by the implicit QL method with Wilkinson shifts (no eigenvectors), in
 * TypeScript.
 */
export function tridiagonalEigenvaluesQl(
  diagonal: Float64Array,
  offDiagonal: Float64Array,
): Float64Array {
  const n = diagonal.length;
  const d = Float64Array.from(diagonal);
  const e = new Float64Array(n);
  e.set(offDiagonal);
  const epsilon = 2.220446049250313e-16;
  // Off-diagonal entries below ε·‖T‖ split the matrix: eigenvalues are then accurate to
  // ε·‖T‖ in absolute terms, all the Gram route can promise anyway, and clusters of
  // near-zero eigenvalues (rank-deficient matrices) converge.
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]!) + 2 * Math.abs(e[i]!));
  const negligible = epsilon * norm;
  for (let l = 0; l < n; l++) {
    for (let iteration = 0; ; iteration++) {
      let m = l;
      for (; m < n - 1; m++) {
        const scale = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= epsilon * scale || Math.abs(e[m]!) <= negligible) break;
      }
      if (m === l) break;
      if (iteration >= MAX_QL_ITERATIONS) {
        throw new Error('the tridiagonal eigenvalue iteration did not converge');
      }
      // Shift: the eigenvalue of the leading 2 × 2 block nearer d[l].
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1]! -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (underflow) continue;
      d[l]! -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d.sort().reverse();
}

/**
 * Seconds spent per stage, added to by symmetricEigenvalues when given (benchmarks): the
 * wall time under the stage's name, and the process's CPU time (all threads) under
 * `${stage} CPU`, which shows how many cores the stage kept busy.
 */
export type StageTimings = Record<string, number>;

/** A stage's start: wall and process CPU time, in seconds. */
export interface StageClock {
  readonly wall: number;
  readonly cpu: number;
}

export function stageClock(): StageClock {
  const { user, system } = process.cpuUsage();
  return { wall: performance.now() / 1000, cpu: (user + system) / 1e6 };
}

/** Adds the wall and CPU seconds since `start` to `stage` and returns the clock now. */
export function addStageTime(
  timings: StageTimings | undefined,
  stage: string,
  start: StageClock,
): StageClock {
  const now = stageClock();
  if (timings) {
    timings[stage] = (timings[stage] ?? 0) + now.wall - start.wall;
    timings[`${stage} CPU`] = (timings[`${stage} CPU`] ?? 0) + now.cpu - start.cpu;
  }
  return now;
}

/**
 * Eigenvalues (descending) of the symmetric `matrix` through the three stages; its buffer
 * is consumed.
 *
 * The stages work on A − μ·I, μ the mean eigenvalue (trace / n), and add μ back: the
 * shift never increases ‖A‖₂ (μ lies between the extreme eigenvalues), and it takes the
 * large common part off the diagonal of a Gram matrix, whose rounding would otherwise
 * dominate the error of the smallest eigenvalues when the reduction runs in float32.
 */
export async function symmetricEigenvalues<T extends GemmArray>(
  runtime: MatMulRuntime,
  matrix: Matrix<T>,
  nb: number,
  check: CancelCheck,
  timings?: StageTimings,
): Promise<Float64Array> {
  const n = matrix.rows;
  const data = matrix.data;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += data[i * n + i]!;
  // μ in the matrix's element type, so that the shift subtracted is the one added back.
  const shift = n === 0 ? 0 : data instanceof Float32Array ? Math.fround(trace / n) : trace / n;
  for (let i = 0; i < n; i++) data[i * n + i]! -= shift;
  let start = stageClock();
  const band = await reduceToBand(runtime, matrix, nb, check);
  start = addStageTime(timings, 'band reduction', start);
  const { diagonal, offDiagonal } = bandToTridiagonal(band, nb, check);
  start = addStageTime(timings, 'bulge chasing', start);
  const eigenvalues = tridiagonalEigenvalues(diagonal, offDiagonal, check);
  for (let i = 0; i < n; i++) eigenvalues[i]! += shift;
  addStageTime(timings, 'tridiagonal eigenvalues', start);
  return eigenvalues;
}

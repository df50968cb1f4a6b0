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
 * 3. Eigenvalues of the tridiagonal matrix by implicit QL with Wilkinson shifts.
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

/** Panels between two compactions of the working matrix (see reduceToBand). */
const PANELS_PER_COMPACTION = 4;

/**
 * Stage 1 on onnxruntime: the band of `gram` (a full symmetric matrix, row-major, whose
 * buffer the reduction works in: its values are consumed).
 *
 * The working matrix is the trailing part from the last compaction on, s × s. Each panel
 * is reduced with reflectors padded with zeros above its rows, so that the two-sided
 * update applies to the whole working matrix: rows and columns already reduced to the
 * band meet only zeros of the reflectors and stay as they are, the panel becomes R, and
 * the trailing part is updated, all in one product that onnxruntime writes straight
 * into the other of two buffers. Every few panels the working matrix is compacted to
 * its trailing part, so that the products shrink as the reduction proceeds.
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
  const buffers: [T, T] = [gram.data, new Element(n * n)];
  let which = 0;
  /** Global index of the working matrix's first row and column, and its side. */
  let origin = 0;
  let size = n;
  let current = gram.data.subarray(0, n * n) as T;
  const leftBuffer = new Element(n * 2 * nb);
  const rightBuffer = new Element(n * 2 * nb);
  const paddedBuffer = new Element(n * nb);
  for (let k = 0, panel = 0; ; k += nb, panel++) {
    check();
    const o = k - origin;
    const remaining = n - k;
    if (remaining <= nb + 1) {
      for (let r = 0; r < remaining; r++) {
        for (let c = 0; c <= r; c++) {
          band[(k + c) * width + r - c] = current[(o + r) * size + o + c]!;
        }
      }
      break;
    }
    if (panel > 0 && panel % PANELS_PER_COMPACTION === 0 && o > 0) {
      const next = buffers[1 - which]!;
      const side = size - o;
      for (let r = 0; r < side; r++) {
        const from = (o + r) * size + o;
        next.set(current.subarray(from, from + side) as never, r * side);
      }
      which = 1 - which;
      current = next.subarray(0, side * side) as T;
      origin = k;
      size = side;
    }
    const local = k - origin;
    for (let r = 0; r < nb; r++) {
      for (let c = 0; c <= r; c++) {
        band[(k + c) * width + r - c] = current[(local + r) * size + local + c]!;
      }
    }
    const m = remaining - nb;
    const panelValues = new Float64Array(m * nb);
    for (let i = 0; i < m; i++) {
      const row = (local + nb + i) * size + local;
      for (let j = 0; j < nb; j++) panelValues[j * m + i] = current[row + j]!;
    }
    const { vectors, t, count } = panelQr(panelValues, m, nb);
    // R: entry (i, j), i ≤ j, of the panel is A[k+nb+i][k+j], inside the band.
    for (let j = 0; j < nb; j++) {
      for (let i = 0; i <= Math.min(j, m - 1); i++) {
        band[(k + j) * width + nb + i - j] = panelValues[j * m + i]!;
      }
    }
    if (count === 0) continue;
    // The reflectors over the whole working matrix: zero above row local + nb.
    const top = local + nb;
    const padded = paddedBuffer.subarray(0, size * count) as T;
    padded.fill(0);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < count; j++) padded[(top + i) * count + j] = vectors[j * m + i]!;
    }
    const av = await runtime.gemm<T>(
      { rows: size, cols: size, data: current },
      { rows: size, cols: count, data: padded },
    );
    check();
    const w = (
      await twoSidedCorrection(runtime, av, { rows: size, cols: count, data: padded }, t, Element)
    ).data;
    const left = leftBuffer.subarray(0, size * 2 * count) as T;
    const right = rightBuffer.subarray(0, size * 2 * count) as T;
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < count; j++) {
        const vij = padded[i * count + j]!;
        const wij = w[i * count + j]!;
        left[i * 2 * count + j] = vij;
        left[i * 2 * count + count + j] = wij;
        right[i * 2 * count + j] = wij;
        right[i * 2 * count + count + j] = vij;
      }
    }
    // A − V·Wᵀ − W·Vᵀ in one product, into the other buffer.
    const target = buffers[1 - which]!.subarray(0, size * size) as T;
    await runtime.gemm<T>(
      { rows: size, cols: 2 * count, data: left },
      { rows: size, cols: 2 * count, data: right },
      { transB: true, alpha: -1, beta: 1, c: current, output: target },
    );
    which = 1 - which;
    current = target;
  }
  return { n, width, data: band };
}

/**
 * Householder QR of the column-major m × nb `panel`, in place: R above the diagonal,
 * reflectors returned as unit lower-trapezoidal `vectors` (column-major m × count) and the
 * upper-triangular `t` of the compact form Q = I − V·T·Vᵀ (count × count, row-major).
 */
function panelQr(
  panel: Float64Array,
  m: number,
  nb: number,
): { vectors: Float64Array; t: Float64Array; count: number } {
  const count = Math.min(nb, m);
  const vectors = new Float64Array(m * count);
  const t = new Float64Array(count * count);
  for (let j = 0; j < count; j++) {
    const x = panel.slice(j * m + j, (j + 1) * m);
    const { v, tau, beta } = householder(x);
    panel[j * m + j] = beta;
    for (let i = j + 1; i < m; i++) panel[j * m + i] = 0;
    for (let i = 0; i < v.length; i++) vectors[j * m + j + i] = v[i]!;
    if (tau !== 0) {
      for (let c = j + 1; c < nb; c++) {
        let dot = 0;
        for (let i = 0; i < v.length; i++) dot += v[i]! * panel[c * m + j + i]!;
        dot *= tau;
        for (let i = 0; i < v.length; i++) panel[c * m + j + i]! -= dot * v[i]!;
      }
    }
    // T[0:j, j] = −τ·T[0:j, 0:j]·(V[:, 0:j]ᵀ·v_j)
    t[j * count + j] = tau;
    const z = new Float64Array(j);
    for (let p = 0; p < j; p++) {
      let dot = 0;
      for (let i = j; i < m; i++) dot += vectors[p * m + i]! * vectors[j * m + i]!;
      z[p] = dot;
    }
    for (let p = 0; p < j; p++) {
      let sum = 0;
      for (let q = p; q < j; q++) sum += t[p * count + q]! * z[q]!;
      t[p * count + j] = -tau * sum;
    }
  }
  return { vectors, t, count };
}

/**
 * W of the two-sided update QᵀAQ = A − V·Wᵀ − W·Vᵀ, Q = I − V·T·Vᵀ: with X = A·V·T,
 * W = X − ½·V·(Tᵀ·Vᵀ·X). `av` = A·V and `v` are size × count (row-major); the products
 * run on onnxruntime, the count × count middle term here.
 */
async function twoSidedCorrection<T extends GemmArray>(
  runtime: MatMulRuntime,
  av: Matrix<T>,
  v: Matrix<T>,
  t: Float64Array,
  Element: { new (length: number): T },
): Promise<Matrix<T>> {
  const count = v.cols;
  const tMatrix = new Element(count * count);
  for (let i = 0; i < t.length; i++) tMatrix[i] = t[i]!;
  const x = await runtime.gemm(av, { rows: count, cols: count, data: tMatrix });
  const vtx = await runtime.gemm(v, x, { transA: true });
  // ½·Tᵀ·(Vᵀ·X), T upper triangular.
  const half = new Element(count * count);
  for (let p = 0; p < count; p++) {
    for (let j = 0; j < count; j++) {
      let sum = 0;
      for (let q = 0; q <= p; q++) sum += t[q * count + p]! * vtx.data[q * count + j]!;
      half[p * count + j] = 0.5 * sum;
    }
  }
  return runtime.gemm(
    v,
    { rows: count, cols: count, data: half },
    {
      alpha: -1,
      beta: 1,
      c: x.data,
    },
  );
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

let bandModule: BandReductionExports | null | undefined;

function bandReductionModule(): BandReductionExports | null {
  if (bandModule === undefined) {
    bandModule = instantiateWasm('bandReduction') as unknown as BandReductionExports | null;
  }
  return bandModule;
}

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
  const needed = data + band.data.byteLength;
  const memory = wasm.memory;
  if (needed > memory.buffer.byteLength) {
    memory.grow(Math.ceil((needed - memory.buffer.byteLength) / WASM_PAGE_BYTES));
  }
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

/**
 * Eigenvalues (descending) of the symmetric tridiagonal matrix with `diagonal` d and
 * `offDiagonal` e, by the implicit QL method with Wilkinson shifts (no eigenvectors).
 */
export function tridiagonalEigenvalues(
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

/** Eigenvalues (descending) of the symmetric `matrix` through the three stages. */
export async function symmetricEigenvalues<T extends GemmArray>(
  runtime: MatMulRuntime,
  matrix: Matrix<T>,
  nb: number,
  check: CancelCheck,
): Promise<Float64Array> {
  const band = await reduceToBand(runtime, matrix, nb, check);
  const { diagonal, offDiagonal } = bandToTridiagonal(band, nb, check);
  check();
  return tridiagonalEigenvalues(diagonal, offDiagonal);
}

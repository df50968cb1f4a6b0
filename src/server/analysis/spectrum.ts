/**
 * Singular spectrum of one weight tensor: the tensor read as a matrix (or as one matrix
 * per spatial position of a convolution kernel), its singular values, and the metrics
 * derived from them.
 *
 * Conv kernels `[out, in, k…]`: 'flatten' reads them as out × (in·k…), the row-major
 * bytes as stored; 'spatial' takes the out × in matrix W[:, :, k] at each spatial position
 * k and pools the spectra by concatenation (all values of all slices, sorted descending),
 * the way WeightWatcher pools the ESDs of conv slices; ‖W‖²_F is then the sum over slices.
 */
import {
  MAX_FULL_SPECTRUM_SIDE,
  MAX_SPECTRUM_HELD_BYTES,
  MAX_TOPK_SINGULAR_VALUES,
} from '../../shared/limits';
import type {
  ConvMatrixMode,
  SpectralMetrics,
  SpectralSums,
  SpectrumOptions,
  SpectrumPrecision,
} from '../../shared/spectrum';
import type { ComputeBackend } from '../../shared/settings';
import { describeProvider } from '../runtime/providers';
import {
  sharedMatMulRuntime,
  type GemmArray,
  type Matrix,
  type MatMulRuntime,
} from '../runtime/matmul';
import { jacobiSingularValues } from './jacobiSvd';
import {
  memoryOperand,
  streamedOperand,
  type MatrixOperand,
  type MatrixPanels,
} from './matrixOperand';
import { randomizedRange, randomizedTopSingularValues } from './randomizedSvd';
import { estimateSpectralSums } from './spectralSums';
import {
  addStageTime,
  stageClock,
  symmetricEigenvalues,
  type CancelCheck,
  type StageTimings,
} from './symmetricEigen';

import { spectralSumsOf } from './spectralMetrics';

export { spectralMetrics } from './spectralMetrics';
export type { SpectralMetrics };

export interface SpectrumComputation {
  /** One matrix's shape (for 'spatial', each slice's). */
  readonly rows: number;
  readonly cols: number;
  readonly method: ResolvedMethod;
  readonly precision: SpectrumPrecision;
  readonly conv: ConvMatrixMode | null;
  /** Descending. */
  readonly singularValues: Float64Array;
  readonly frobeniusSquared: number;
  /** 'fast': Σσ and Σσ·ln σ over all values, estimated (summed over pooled slices). */
  readonly sums?: SpectralSums;
  /** Where it ran and how, with any fallback message. */
  readonly backend: string;
}

/** A row-major matrix view of tensor values. */
export interface MatrixView {
  readonly rows: number;
  readonly cols: number;
  readonly values: Float32Array | Float64Array;
}

/** Top-k singular values computed when the request names no k. */
export const DEFAULT_TOPK = 256;

/** 'fast': top singular values computed when the request names no k (the power-law tail). */
export const FAST_TOPK = 128;
/**
 * 'fast': rounds of subspace iteration. σ₁ of a Gaussian matrix (no gap below it, the
 * hardest case) comes within 0.5% with three; matrices with outliers settle sooner.
 */
export const FAST_POWER_ITERATIONS = 3;
/** 'fast' computes the full spectrum up to this smaller side, where it costs little. */
export const FAST_FULL_MAX_SIDE = 1024;

/** What a request's method comes to for one matrix. */
export type ResolvedMethod = 'full' | 'topk' | 'fast';

/** Throws unless `values` fill `shape` and `shape` is a non-empty matrix or conv kernel. */
export function checkTensorShape(values: ArrayLike<number>, shape: readonly number[]): void {
  if (shape.length < 2) {
    throw new Error(
      `a spectrum needs a matrix, but the tensor has ${shape.length === 0 ? 'no dimensions (a scalar)' : `one dimension [${shape.join(', ')}]`}`,
    );
  }
  const count = shape.reduce((product, side) => product * side, 1);
  if (values.length !== count) {
    throw new Error(
      `the tensor's shape [${shape.join(', ')}] holds ${count} values, but ${values.length} were given`,
    );
  }
  if (count === 0) throw new Error(`the tensor of shape [${shape.join(', ')}] is empty`);
}

/** The matrices whose spectra make up the tensor's, and how they were formed. */
export function tensorMatrices(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  conv: ConvMatrixMode = 'flatten',
): { matrices: MatrixView[]; conv: ConvMatrixMode | null } {
  checkTensorShape(values, shape);
  const rows = shape[0]!;
  if (shape.length === 2) return { matrices: [{ rows, cols: shape[1]!, values }], conv: null };
  const inputs = shape[1]!;
  const positions = values.length / (rows * inputs);
  if (conv === 'flatten') {
    return { matrices: [{ rows, cols: inputs * positions, values }], conv };
  }
  const matrices: MatrixView[] = [];
  for (let k = 0; k < positions; k++) {
    const slice = new (values.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(
      rows * inputs,
    );
    for (let i = 0; i < rows * inputs; i++) slice[i] = values[i * positions + k]!;
    matrices.push({ rows, cols: inputs, values: slice });
  }
  return { matrices, conv };
}

function abortError(): Error {
  const error = new Error('The spectrum computation was cancelled');
  error.name = 'AbortError';
  return error;
}

/** A check that throws an AbortError once `isCancelled` returns true. */
function cancelCheck(isCancelled: () => boolean): CancelCheck {
  return () => {
    if (isCancelled()) throw abortError();
  };
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
}

/** Σ w² in float64. */
export function frobeniusSquaredOf(values: ArrayLike<number>): number {
  let even = 0;
  let odd = 0;
  let i = 0;
  for (; i + 1 < values.length; i += 2) {
    even += values[i]! * values[i]!;
    odd += values[i + 1]! * values[i + 1]!;
  }
  if (i < values.length) even += values[i]! * values[i]!;
  return even + odd;
}

/** Which method a request resolves to for a matrix whose smaller side is `side`. */
export function resolveMethod(options: SpectrumOptions, side: number): ResolvedMethod {
  const method = options.method ?? 'auto';
  if (method === 'fast') return side <= FAST_FULL_MAX_SIDE ? 'full' : 'fast';
  if (method === 'full' && side > MAX_FULL_SPECTRUM_SIDE) {
    throw new Error(
      `a full spectrum is computed for matrices up to ${MAX_FULL_SPECTRUM_SIDE} on the smaller side, this one has ${side}; ask for the top-k values instead`,
    );
  }
  if (method === 'auto') return side > MAX_FULL_SPECTRUM_SIDE ? 'topk' : 'full';
  return method;
}

export function resolveTopK(options: SpectrumOptions, side: number): number {
  const k = options.k ?? (options.method === 'fast' ? FAST_TOPK : DEFAULT_TOPK);
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOPK_SINGULAR_VALUES) {
    throw new Error(
      `top-k needs a whole k between 1 and ${MAX_TOPK_SINGULAR_VALUES}, got ${String(k)}`,
    );
  }
  return Math.min(k, side);
}

/** Matrices up to this many multiply-adds per Jacobi sweep go the Jacobi route (exact, no Gram). */
const JACOBI_MAX_SWEEP_WORK = 1 << 22;

/**
 * Half-bandwidth of the dense → band stage for a Gram matrix of side n: wider bands make
 * fewer, more efficient products on onnxruntime but a costlier bulge chase (O(n²·nb)).
 */
export function bandwidthFor(n: number): number {
  if (n >= 2048) return 32;
  return n >= 512 ? 16 : 8;
}

export interface SpectrumSettings {
  /** `layerlens.compute.backend`: where the matrix products run. */
  readonly backend?: ComputeBackend;
  /** Threads of each onnxruntime product (one per core when absent). */
  readonly threads?: number;
  /** Filled with the seconds spent per stage of the Gram route when given (benchmarks, in this thread). */
  readonly stageTimings?: StageTimings;
}

/**
 * From this side on, a float32 Gram matrix is reduced in float32 (twice the throughput of
 * the float64 products, half the memory traffic). Its error on the smallest singular
 * values, about that of NumPy's own float32 eigvalsh(WᵀW) route, stays well within
 * 1e-4·σ₁ there; below it the reduction costs little, and runs in float64.
 */
export const FLOAT32_REDUCTION_MIN_SIDE = 2048;

/** Fewest rows per block row of the Gram matrix: smaller products run below MLAS's best. */
const GRAM_BLOCK_MIN_ROWS = 256;

/**
 * Block rows of the Gram matrix of side n: its products do (blocks + 1) / (2·blocks) of the
 * full product's arithmetic (17/32 at 16 blocks, against the 1/2 of a syrk), in 4 to 16
 * block rows of at least GRAM_BLOCK_MIN_ROWS.
 */
export function gramBlocks(n: number): number {
  return Math.max(4, Math.min(16, Math.floor(n / GRAM_BLOCK_MIN_ROWS)));
}

/**
 * The diagonal of the Gram matrix of the smaller side (squared norms of the rows of a wide
 * or square matrix, of the columns of a tall one), summed in float64.
 *
 * A float32 Gram matrix gets its diagonal from here: onnxruntime sums each diagonal entry
 * in float32 over the whole long side, all terms positive, and the rounding adds up (on a
 * 4096² bfloat16 Gaussian matrix, 8 ulps, 0.002 on entries near 4096). That error shifts
 * the smallest eigenvalues by about its size, and a singular value whose square is of that
 * order (1e-4·σ₁ there) came out as zero; the off-diagonal entries, sums of terms of either
 * sign, round far less. Summed here, the diagonal is rounded once.
 */
export function gramDiagonal({ rows, cols, values }: MatrixView): Float64Array {
  if (rows <= cols) {
    const norms = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      norms[r] = frobeniusSquaredOf(values.subarray(r * cols, (r + 1) * cols));
    }
    return norms;
  }
  const norms = new Float64Array(cols);
  for (let r = 0, at = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, at++) norms[c]! += values[at]! * values[at]!;
  }
  return norms;
}

/** Writes `diagonal` onto the diagonal of the square `matrix` (rounded to its element type). */
function setDiagonal(matrix: Matrix, diagonal: Float64Array): void {
  const n = matrix.rows;
  for (let i = 0; i < n; i++) matrix.data[i * n + i] = diagonal[i]!;
}

/** Values of one matrix in the element type of the requested precision. */
function asElements(values: Float32Array | Float64Array, precision: SpectrumPrecision): GemmArray {
  if (precision === 'float64') {
    return values instanceof Float64Array ? values : Float64Array.from(values);
  }
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/**
 * The top-k or 'fast' singular values of a matrix known by its products only (in memory or
 * streamed from its file), and for 'fast' the estimated sums over all values.
 */
async function productSingularValues(
  runtime: MatMulRuntime,
  a: MatrixOperand,
  method: 'topk' | 'fast',
  k: number,
  precision: SpectrumPrecision,
  check: CancelCheck,
  frobeniusSquared: number,
  timings?: StageTimings,
): Promise<{ values: Float64Array; route: string; sums?: SpectralSums }> {
  if (method === 'topk') {
    return {
      values: await randomizedTopSingularValues(runtime, a, k, check),
      route: `randomized SVD (onnxruntime ${precision} products)`,
    };
  }
  // A, or Aᵀ (read transposed, not copied) when A is tall or square, so that the top
  // subspace the randomized SVD finds is on the side of the Gram matrix the quadrature
  // uses (gramTimesRows: AᵀA for a square matrix, one pass over a streamed one).
  let start = stageClock();
  const top = await randomizedRange(runtime, a, k, check, FAST_POWER_ITERATIONS, a.rows >= a.cols);
  const values = new Float64Array(Math.min(k, top.eigenvalues.length));
  for (let i = 0; i < values.length; i++) {
    values[i] = Math.sqrt(Math.max(0, top.eigenvalues[i]!));
  }
  start = addStageTime(timings, 'randomized top-k', start);
  const sums = await estimateSpectralSums(runtime, a, frobeniusSquared, check, {
    deflation: top,
  });
  addStageTime(timings, 'Lanczos quadrature', start);
  return {
    values,
    sums,
    route: `randomized top-${k} SVD, deflated Lanczos quadrature of Σσ (onnxruntime ${precision} products)`,
  };
}

/** Singular values of one matrix (descending): all of them, or the `k` largest. */
async function matrixSingularValues(
  matrix: MatrixView,
  method: ResolvedMethod,
  k: number,
  precision: SpectrumPrecision,
  runtime: MatMulRuntime,
  check: CancelCheck,
  frobeniusSquared: number,
  timings?: StageTimings,
): Promise<{ values: Float64Array; route: string; sums?: SpectralSums }> {
  const { rows, cols } = matrix;
  const side = Math.min(rows, cols);
  if (side * side * Math.max(rows, cols) <= JACOBI_MAX_SWEEP_WORK) {
    const all = jacobiSingularValues(matrix.values, rows, cols);
    return {
      values: method === 'full' ? all : all.slice(0, k),
      route: 'one-sided Jacobi in float64',
      ...(method === 'fast' ? { sums: spectralSumsOf(all) } : {}),
    };
  }
  const a: Matrix = { rows, cols, data: asElements(matrix.values, precision) };
  if (method !== 'full') {
    return productSingularValues(
      runtime,
      memoryOperand(runtime, a),
      method,
      k,
      precision,
      check,
      frobeniusSquared,
      timings,
    );
  }
  // Gram matrix of the smaller side, in the requested precision, by block rows of its lower
  // triangle (gramOfRows): W·Wᵀ for wide and square matrices, WᵀW (the Gram matrix of Wᵀ,
  // transposed on onnxruntime) for tall ones. Float32 ones are reduced in float64 below
  // FLOAT32_REDUCTION_MIN_SIDE.
  const start = stageClock();
  const wide = rows > cols ? await runtime.transpose(a) : a;
  const gram = await runtime.gramOfRows(wide, gramBlocks(side));
  if (gram.data instanceof Float32Array) setDiagonal(gram, gramDiagonal(matrix));
  check();
  const reduceIn32 = gram.data instanceof Float32Array && side >= FLOAT32_REDUCTION_MIN_SIDE;
  const working: Matrix =
    gram.data instanceof Float64Array || reduceIn32
      ? gram
      : { rows: gram.rows, cols: gram.cols, data: Float64Array.from(gram.data) };
  addStageTime(timings, 'Gram matrix', start);
  const eigenvalues = await symmetricEigenvalues(
    runtime,
    working,
    bandwidthFor(side),
    check,
    timings,
  );
  const sigma = new Float64Array(eigenvalues.length);
  for (let i = 0; i < sigma.length; i++) sigma[i] = Math.sqrt(Math.max(0, eigenvalues[i]!));
  return {
    values: sigma,
    route: `Gram matrix on onnxruntime in ${precision}, band reduction on onnxruntime in ${reduceIn32 ? 'float32' : 'float64'}, bulge chasing and QL in float64`,
  };
}

/**
 * The singular spectrum of a tensor, computed in this thread (the spectrum worker runs
 * it; `computeTensorSpectrum` in jobs/computeSpectrum.ts is the entry point for the
 * server). `isCancelled` is polled between steps; when it returns true the computation
 * stops with an AbortError.
 */
export async function computeSpectrumInThread(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  options: SpectrumOptions = {},
  isCancelled: () => boolean = () => false,
  settings: SpectrumSettings = {},
): Promise<SpectrumComputation> {
  const check = cancelCheck(isCancelled);
  check();
  const { matrices, conv } = tensorMatrices(values, shape, options.conv);
  const { rows, cols } = matrices[0]!;
  const side = Math.min(rows, cols);
  const method = resolveMethod(options, side);
  const k = method === 'full' ? side : resolveTopK(options, side);
  const precision = options.precision ?? 'float32';
  const runtime = sharedMatMulRuntime(settings.backend ?? 'cpu', settings.threads);
  const pooled: Float64Array[] = [];
  const routes = new Set<string>();
  let frobeniusSquared = 0;
  let sums: SpectralSums | undefined;
  for (const matrix of matrices) {
    check();
    const matrixFrobenius = frobeniusSquaredOf(matrix.values);
    frobeniusSquared += matrixFrobenius;
    if (matrixFrobenius === 0 && matrix.values.every((value) => value === 0)) {
      // Every value zero: so is every singular value (and both spectral sums).
      pooled.push(new Float64Array(k));
      routes.add('all values zero');
      continue;
    }
    const {
      values: sigma,
      route,
      sums: matrixSums,
    } = await matrixSingularValues(
      matrix,
      method,
      k,
      precision,
      runtime,
      check,
      matrixFrobenius,
      settings.stageTimings,
    );
    pooled.push(sigma);
    routes.add(route);
    if (matrixSums) {
      sums = {
        sigma: (sums?.sigma ?? 0) + matrixSums.sigma,
        sigmaLogSigma: (sums?.sigmaLogSigma ?? 0) + matrixSums.sigmaLogSigma,
      };
    }
  }
  check();
  return spectrumComputation(
    { rows, cols, method, precision, conv, frobeniusSquared, ...(sums ? { sums } : {}) },
    concatDescending(pooled),
    k,
    routes,
    runtime,
  );
}

/** The result: all values for 'full', else the k largest; the route and where it ran. */
function spectrumComputation(
  base: Omit<SpectrumComputation, 'singularValues' | 'backend'>,
  all: Float64Array,
  k: number,
  routes: ReadonlySet<string>,
  runtime: MatMulRuntime,
): SpectrumComputation {
  const usedRuntime = [...routes].some((route) => route.includes('onnxruntime'));
  const detail = [...routes].join('; ');
  return {
    ...base,
    singularValues: base.method === 'full' ? all : all.slice(0, k),
    backend: usedRuntime ? describeProvider(runtime.provider, detail) : `cpu (${detail})`,
  };
}

/** Bytes of a matrix's values in the working precision of `options`. */
function valueBytes(shape: readonly number[], options: SpectrumOptions): number {
  const elementBytes = options.precision === 'float64' ? 8 : 4;
  return shape.reduce((product, side) => product * side, elementBytes);
}

/**
 * Whether a matrix read from its file is streamed in row panels (computeStreamedSpectrum)
 * instead of read whole: a plain matrix (two dimensions) whose method needs only products
 * with it (top-k, 'fast'), with more than MAX_SPECTRUM_HELD_BYTES of values.
 */
export function streamsSpectrum(shape: readonly number[], options: SpectrumOptions): boolean {
  if (shape.length !== 2) return false;
  if (resolveMethod(options, Math.min(shape[0]!, shape[1]!)) === 'full') return false;
  return valueBytes(shape, options) > MAX_SPECTRUM_HELD_BYTES;
}

/**
 * The top-k or 'fast' spectrum of a matrix streamed in row panels (a matrix that
 * streamsSpectrum sends here): one pass for ‖W‖²_F, then products only, each a pass over
 * the panels. The values are those computeSpectrumInThread gives for the whole matrix, up
 * to float32 rounding in the order of the sums.
 */
export async function computeStreamedSpectrum(
  panels: MatrixPanels,
  options: SpectrumOptions = {},
  isCancelled: () => boolean = () => false,
  settings: SpectrumSettings = {},
): Promise<SpectrumComputation> {
  const check = cancelCheck(isCancelled);
  check();
  const { rows, cols } = panels;
  const method = resolveMethod(options, Math.min(rows, cols));
  if (method === 'full') throw new Error('a full spectrum needs the whole matrix, not panels');
  const k = resolveTopK(options, Math.min(rows, cols));
  const precision = options.precision ?? 'float32';
  const runtime = sharedMatMulRuntime(settings.backend ?? 'cpu', settings.threads);
  let frobeniusSquared = 0;
  await panels.forEachPanel((_, panel) => {
    frobeniusSquared += frobeniusSquaredOf(panel.data);
  });
  check();
  const base = { rows, cols, method, precision, conv: null, frobeniusSquared };
  if (frobeniusSquared === 0) {
    // A sum of squares of zero: every value is zero, and so is every singular value.
    return spectrumComputation(base, new Float64Array(k), k, new Set(['all values zero']), runtime);
  }
  const result = await productSingularValues(
    runtime,
    streamedOperand(runtime, panels),
    method,
    k,
    precision,
    check,
    frobeniusSquared,
    settings.stageTimings,
  );
  return spectrumComputation(
    { ...base, ...(result.sums ? { sums: result.sums } : {}) },
    result.values,
    k,
    new Set([`${result.route}, streamed from the file in row panels`]),
    runtime,
  );
}

/** All values of `parts`, sorted descending. */
export function concatDescending(parts: readonly Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const all = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all.sort().reverse();
}

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
import { MAX_FULL_SPECTRUM_SIDE, MAX_TOPK_SINGULAR_VALUES } from '../../shared/limits';
import type {
  ConvMatrixMode,
  SpectralMetrics,
  SpectrumOptions,
  SpectrumPrecision,
} from '../../shared/spectrum';
import { jacobiSingularValues } from './jacobiSvd';

export { spectralMetrics } from './spectralMetrics';
export type { SpectralMetrics };

export interface SpectrumComputation {
  /** One matrix's shape (for 'spatial', each slice's). */
  readonly rows: number;
  readonly cols: number;
  readonly method: 'full' | 'topk';
  readonly precision: SpectrumPrecision;
  readonly conv: ConvMatrixMode | null;
  /** Descending. */
  readonly singularValues: Float64Array;
  readonly frobeniusSquared: number;
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

/** The matrices whose spectra make up the tensor's, and how they were formed. */
export function tensorMatrices(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  conv: ConvMatrixMode = 'flatten',
): { matrices: MatrixView[]; conv: ConvMatrixMode | null } {
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
  const rows = shape[0]!;
  if (shape.length === 2) return { matrices: [{ rows, cols: shape[1]!, values }], conv: null };
  const inputs = shape[1]!;
  const positions = count / (rows * inputs);
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
export function resolveMethod(options: SpectrumOptions, side: number): 'full' | 'topk' {
  const method = options.method ?? 'auto';
  if (method === 'full' && side > MAX_FULL_SPECTRUM_SIDE) {
    throw new Error(
      `a full spectrum is computed for matrices up to ${MAX_FULL_SPECTRUM_SIDE} on the smaller side, this one has ${side}; ask for the top-k values instead`,
    );
  }
  if (method === 'auto') return side > MAX_FULL_SPECTRUM_SIDE ? 'topk' : 'full';
  return method;
}

export function resolveTopK(options: SpectrumOptions, side: number): number {
  const k = options.k ?? DEFAULT_TOPK;
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOPK_SINGULAR_VALUES) {
    throw new Error(
      `top-k needs a whole k between 1 and ${MAX_TOPK_SINGULAR_VALUES}, got ${String(k)}`,
    );
  }
  return Math.min(k, side);
}

/**
 * The singular spectrum of a tensor. Values are the tensor's, row-major, `shape` its
 * dimensions (at least two). Rejects with an AbortError when `signal` aborts.
 */
export async function computeTensorSpectrum(
  values: Float32Array | Float64Array,
  shape: readonly number[],
  options: SpectrumOptions = {},
  signal?: AbortSignal,
): Promise<SpectrumComputation> {
  throwIfAborted(signal);
  const { matrices, conv } = tensorMatrices(values, shape, options.conv);
  const { rows, cols } = matrices[0]!;
  const side = Math.min(rows, cols);
  const method = resolveMethod(options, side);
  const precision = options.precision ?? 'float32';
  const pooled: Float64Array[] = [];
  let frobeniusSquared = 0;
  for (const matrix of matrices) {
    throwIfAborted(signal);
    frobeniusSquared += frobeniusSquaredOf(matrix.values);
    const sigma = jacobiSingularValues(matrix.values, matrix.rows, matrix.cols);
    pooled.push(sigma);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throwIfAborted(signal);
  const all = concatDescending(pooled);
  return {
    rows,
    cols,
    method,
    precision,
    conv,
    singularValues: method === 'topk' ? all.slice(0, resolveTopK(options, side)) : all,
    frobeniusSquared,
    backend: 'cpu (one-sided Jacobi, float64)',
  };
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

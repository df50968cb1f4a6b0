/**
 * A matrix as the product-only spectral methods (randomized SVD, Lanczos quadrature) see
 * it: what it multiplies, not where its values are. The values are in memory (one product
 * on onnxruntime each), or streamed in row panels from the tensor's file, widened to the
 * working precision panel by panel, so that a matrix larger than the bytes a spectrum job
 * may hold (MAX_SPECTRUM_HELD_BYTES) is never whole in memory. A streamed product is one
 * pass over the panels; X·G for the Gram matrix G = AᵀA of a tall or square matrix is one
 * pass too (Σ (X·Pᵀ)·P over the panels P), for G = A·Aᵀ of a wide one two.
 */
import { DTYPES } from '../../shared/dtypes';
import { SPECTRUM_PANEL_BYTES } from '../../shared/limits';
import type { GemmArray, Matrix, MatMulRuntime } from '../runtime/matmul';
import { decodeHalfToFloat32 } from './decode';
import { fileMatrix, matrixValues, storedRowBytes, type MatrixFileSource } from './tensorMatrix';
import { instantiateWasm, type WasmMemory } from './wasmLoader';

export type ArrayConstructorOf<T extends GemmArray> = { new (length: number): T };

/** The two products of the randomized range finder. */
export interface MatrixProducts<T extends GemmArray = GemmArray> {
  readonly rows: number;
  readonly cols: number;
  readonly Element: ArrayConstructorOf<T>;
  /** A·X for X of cols × w (row-major); rows × w. */
  times(x: Matrix<T>): Promise<Matrix<T>>;
  /** Aᵀ·Y for Y of rows × w; cols × w. */
  transposeTimes(y: Matrix<T>): Promise<Matrix<T>>;
}

export interface MatrixOperand<T extends GemmArray = GemmArray> extends MatrixProducts<T> {
  /**
   * X·G for X of p × side (one vector per row), G the Gram matrix of the smaller side:
   * A·Aᵀ when rows < cols, else AᵀA (a square matrix's AᵀA: one pass when streamed).
   */
  gramTimesRows(x: Matrix<T>): Promise<Matrix<T>>;
}

function elementOf<T extends GemmArray>(data: T): ArrayConstructorOf<T> {
  return (data instanceof Float64Array
    ? Float64Array
    : Float32Array) as unknown as ArrayConstructorOf<T>;
}

/** The products of a matrix held in memory, each one product on onnxruntime. */
export function memoryOperand<T extends GemmArray>(
  runtime: MatMulRuntime,
  a: Matrix<T>,
): MatrixOperand<T> {
  const wide = a.rows < a.cols;
  return {
    rows: a.rows,
    cols: a.cols,
    Element: elementOf(a.data),
    times: (x) => runtime.gemm(a, x),
    transposeTimes: (y) => runtime.gemm(a, y, { transA: true }),
    async gramTimesRows(x) {
      const y = await runtime.gemm(x, a, wide ? {} : { transB: true });
      return runtime.gemm(y, a, wide ? { transB: true } : {});
    },
  };
}

/** `a` itself when it already is an operand, else its in-memory operand. */
export function operandOf<T extends GemmArray>(
  runtime: MatMulRuntime,
  a: Matrix<T> | MatrixOperand<T>,
): MatrixOperand<T> {
  return 'data' in a ? memoryOperand(runtime, a) : a;
}

/** Aᵀ's products from A's (no transposed copy). */
export function transposedProducts<T extends GemmArray>(a: MatrixProducts<T>): MatrixProducts<T> {
  return {
    rows: a.cols,
    cols: a.rows,
    Element: a.Element,
    times: (x) => a.transposeTimes(x),
    transposeTimes: (y) => a.times(y),
  };
}

/** A matrix read in row panels, one after another, each valid only during its visit. */
export interface MatrixPanels<T extends GemmArray = GemmArray> {
  readonly rows: number;
  readonly cols: number;
  readonly Element: ArrayConstructorOf<T>;
  forEachPanel(visit: (rowStart: number, panel: Matrix<T>) => Promise<void> | void): Promise<void>;
}

/** Rows of a row-major matrix. */
function rowsOf<T extends GemmArray>(m: Matrix<T>, from: number, to: number): Matrix<T> {
  return { rows: to - from, cols: m.cols, data: m.data.subarray(from * m.cols, to * m.cols) as T };
}

/**
 * The products of a matrix streamed in row panels (every product reads all of them once or
 * twice). Each kind of product writes into one buffer of its own, kept for the next call of
 * that kind, so that the many products of a spectrum leave no garbage of matrix-sized
 * arrays behind: a result is valid until the next product of the same kind.
 */
export function streamedOperand<T extends GemmArray>(
  runtime: MatMulRuntime,
  panels: MatrixPanels<T>,
): MatrixOperand<T> {
  const { rows, cols, Element } = panels;
  const kept = new Map<string, T>();
  /** The buffer of product `kind`, `length` values long. */
  const buffer = (kind: string, length: number): T => {
    let data = kept.get(kind);
    if (data?.length !== length) {
      data = new Element(length);
      kept.set(kind, data);
    }
    return data;
  };
  /** Σ op(panel)·… accumulated into `target` (the first panel's product overwrites it). */
  const accumulate = (
    first: boolean,
    a: Matrix<T>,
    b: Matrix<T>,
    target: T,
    options: { transA?: boolean; transB?: boolean },
  ) => runtime.gemm(a, b, { ...options, ...(first ? {} : { beta: 1, c: target }), output: target });
  const transposeTimes = async (y: Matrix<T>): Promise<Matrix<T>> => {
    const out = buffer('transposeTimes', cols * y.cols);
    await panels.forEachPanel(async (start, panel) => {
      await accumulate(start === 0, panel, rowsOf(y, start, start + panel.rows), out, {
        transA: true,
      });
    });
    return { rows: cols, cols: y.cols, data: out };
  };
  return {
    rows,
    cols,
    Element,
    async times(x) {
      const out = buffer('times', rows * x.cols);
      await panels.forEachPanel(async (start, panel) => {
        const target = out.subarray(start * x.cols, (start + panel.rows) * x.cols) as T;
        await runtime.gemm(panel, x, { output: target });
      });
      return { rows, cols: x.cols, data: out };
    },
    transposeTimes,
    async gramTimesRows(x) {
      const p = x.rows;
      if (rows >= cols) {
        // X·AᵀA = Σ (X·Pᵀ)·P: one pass.
        const out = buffer('gram', p * cols);
        await panels.forEachPanel(async (start, panel) => {
          const z = await runtime.gemm(x, panel, { transB: true });
          await accumulate(start === 0, z, panel, out, {});
        });
        return { rows: p, cols, data: out };
      }
      // X·A·Aᵀ: Y = X·A = Σ X[:, panel rows]·P, then the columns of Y·Aᵀ panel by panel.
      const y = buffer('gramHalf', p * cols);
      const slice = (start: number, height: number): Matrix<T> => {
        const part = new Element(p * height);
        for (let i = 0; i < p; i++) {
          part.set(
            x.data.subarray(i * rows + start, i * rows + start + height) as never,
            i * height,
          );
        }
        return { rows: p, cols: height, data: part };
      };
      await panels.forEachPanel(async (start, panel) => {
        await accumulate(start === 0, slice(start, panel.rows), panel, y, {});
      });
      const out = buffer('gram', p * rows);
      await panels.forEachPanel(async (start, panel) => {
        const part = await runtime.gemm({ rows: p, cols, data: y }, panel, { transB: true });
        for (let i = 0; i < p; i++) {
          out.set(
            part.data.subarray(i * panel.rows, (i + 1) * panel.rows) as never,
            i * rows + start,
          );
        }
      });
      return { rows: p, cols: rows, data: out };
    },
  };
}

/** Rows per panel so that a panel holds at most `panelBytes` of `elementBytes` values (at least one row). */
export function panelRowsFor(
  rows: number,
  cols: number,
  elementBytes: number,
  panelBytes: number,
): number {
  return Math.max(1, Math.min(rows, Math.floor(panelBytes / (cols * elementBytes))));
}

/** The widening kernels of the statistics module (src/server/wasm/stats.ts) that panels use. */
interface WidenExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  widenFloat16(source: number, count: number, target: number): void;
  widenBfloat16(source: number, count: number, target: number): void;
}

const WASM_PAGE_BYTES = 65536;

/**
 * A panel of `count` float32 values and room for as many 16-bit values, both in the memory
 * of an own instance of the SIMD widening kernels: stored bytes are read straight into it
 * and widened in place, and onnxruntime reads the panel there. Null when the module cannot
 * be loaded (the TypeScript loop widens then).
 */
function wasmWidener(count: number): {
  readonly stored: Uint8Array;
  readonly panel: Float32Array;
  widen(dtype: 'float16' | 'bfloat16', values: number): void;
} | null {
  const wasm = instantiateWasm('stats') as unknown as WidenExports | null;
  if (!wasm) return null;
  const storedAt = (wasm.heapBase() + 15) & ~15;
  const panelAt = storedAt + ((count * 2 + 15) & ~15);
  const end = panelAt + count * 4;
  const { memory } = wasm;
  if (end > memory.buffer.byteLength) {
    memory.grow(Math.ceil((end - memory.buffer.byteLength) / WASM_PAGE_BYTES));
  }
  return {
    stored: new Uint8Array(memory.buffer, storedAt, count * 2),
    panel: new Float32Array(memory.buffer, panelAt, count),
    widen(dtype, values) {
      if (dtype === 'bfloat16') wasm.widenBfloat16(storedAt, values, panelAt);
      else wasm.widenFloat16(storedAt, values, panelAt);
    },
  };
}

/**
 * The row panels of a matrix stored as one range of a file, in float32 or float64: each
 * panel's stored bytes read (synchronously, into one reused buffer) and widened into one
 * reused panel. float16 and bfloat16 widen exactly (into float32 panels by the SIMD kernel,
 * wasmWidener), float32 is read in place; other types and ggml blocks decode through
 * matrixValues. Close it when done.
 */
export function fileMatrixPanels<T extends GemmArray>(
  source: MatrixFileSource,
  Element: ArrayConstructorOf<T>,
  panelBytes = SPECTRUM_PANEL_BYTES,
): MatrixPanels<T> & { close(): void } {
  const { shape } = source;
  const { rows, cols, dtype } = shape;
  const elementBytes = Element === (Float64Array as unknown) ? 8 : 4;
  const height = panelRowsFor(rows, cols, elementBytes, panelBytes);
  const reader = fileMatrix(source.path, source.offset, shape);
  const plain = !shape.blocks;
  const half = plain && (dtype === 'float16' || dtype === 'bfloat16');
  const inPlace = plain && elementBytes === DTYPES[dtype].bits / 8 && DTYPES[dtype].isFloat;
  // Half floats into float32 panels: widened by the SIMD kernel where it loads.
  const widener = half && elementBytes === 4 ? wasmWidener(height * cols) : null;
  const panel = widener ? (widener.panel as unknown as T) : new Element(height * cols);
  const stored = widener?.stored ?? new Uint8Array(inPlace ? 0 : height * storedRowBytes(shape));
  // A float64 panel is widened from float32 when the stored values are half floats.
  const widened = half && elementBytes === 8 ? new Float32Array(height * cols) : null;
  return {
    rows,
    cols,
    Element,
    async forEachPanel(visit) {
      for (let start = 0; start < rows; start += height) {
        const end = Math.min(rows, start + height);
        const count = (end - start) * cols;
        const values = panel.subarray(0, count) as T;
        if (inPlace) {
          reader.readStored(
            start,
            end,
            new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
          );
        } else {
          const bytes = reader.readStored(start, end, stored);
          if (widener) {
            widener.widen(dtype as 'float16' | 'bfloat16', count);
          } else if (half && !widened) {
            decodeHalfToFloat32(dtype, bytes, count, values as Float32Array);
          } else if (half) {
            values.set(decodeHalfToFloat32(dtype, bytes, count, widened!));
          } else {
            values.set(matrixValues(shape, bytes, count));
          }
        }
        await visit(start, { rows: end - start, cols, data: values });
      }
    },
    close: () => reader.close(),
  };
}

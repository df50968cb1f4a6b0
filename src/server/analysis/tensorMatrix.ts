/**
 * A tensor's values as a matrix: the whole of it in memory (for spectra), or rows and
 * column ranges read on demand from its file (for heatmap tiles of large matrices).
 */
import * as fs from 'node:fs';
import { byteLengthOf, DTYPES } from '../../shared/dtypes';
import { matrixShape } from '../../shared/heatmap';
import { MAX_IN_MEMORY_TENSOR_BYTES } from '../../shared/limits';
import { ModelFileError, type TensorEntry } from '../formats/types';
import { decodeHalfToFloat32, decodeValues, isNumericDType, type NumericDType } from './decode';
import { decodedGgmlType, dequantizeAll, storedBytesOf } from './ggmlValues';
import type { MatrixReader, MatrixValues } from './heatmap';
import { fileTensorBytes } from './stats';

export interface TensorMatrixShape {
  readonly dtype: NumericDType;
  readonly rows: number;
  readonly cols: number;
  /** The stored bytes are ggml blocks of this type (rows are whole blocks); values are float32. */
  readonly blocks?: string;
}

/**
 * The matrix view of a tensor, or a clear error when it has none: fewer than two
 * dimensions, a non-numeric or packed 4-bit type, or data of the wrong length.
 * `floatOnly` refuses integer and boolean tensors (spectra are for float weights).
 */
export function tensorMatrixShape(entry: TensorEntry, floatOnly: boolean): TensorMatrixShape {
  const { info, data } = entry;
  const { dtype } = info;
  const matrix = matrixShape(info.shape);
  if (!matrix || matrix.rows === 0 || matrix.cols === 0) {
    throw new Error(
      `tensor "${info.name}" has shape [${info.shape.join(', ')}]: a matrix needs at least two non-empty dimensions`,
    );
  }
  if (!isNumericDType(dtype) || DTYPES[dtype].bits < 8 || (floatOnly && !DTYPES[dtype].isFloat)) {
    throw new Error(
      `tensor "${info.name}" holds ${dtype} values; this view needs ${floatOnly ? 'floating-point' : 'numeric'} weights`,
    );
  }
  const { blocks } = data;
  if (blocks && matrix.cols % decodedGgmlType(blocks).blockElements !== 0) {
    throw new Error(`tensor "${info.name}": its matrix rows are not whole ${blocks} blocks`);
  }
  const expected = blocks
    ? storedBytesOf(blocks, info.parameterCount)
    : byteLengthOf(dtype, info.parameterCount);
  if (data.length !== expected) {
    throw new Error(
      `tensor "${info.name}" has ${data.length} bytes of data, but ${info.parameterCount} ${blocks ?? dtype} elements need ${expected}`,
    );
  }
  return { dtype, rows: matrix.rows, cols: matrix.cols, ...(blocks ? { blocks } : {}) };
}

/** `count` values of the matrix from its stored bytes: decoded, or dequantized from ggml blocks. */
export function matrixValues(
  shape: TensorMatrixShape,
  bytes: Uint8Array,
  count: number,
): MatrixValues {
  return shape.blocks
    ? dequantizeAll(shape.blocks, bytes, count)
    : decodeValues(shape.dtype, bytes, count);
}

/** Stored bytes of one row of the matrix. */
export function storedRowBytes(shape: TensorMatrixShape): number {
  return shape.blocks
    ? storedBytesOf(shape.blocks, shape.cols)
    : shape.cols * (DTYPES[shape.dtype].bits / 8);
}

/** Bytes of an in-memory tensor (ONNX typed fields, sparse initializers), checked against the limit. */
export function loadMemoryBytes(entry: TensorEntry): Uint8Array {
  const { info, data } = entry;
  if (data.kind !== 'memory') throw new Error('not an in-memory tensor');
  if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new Error(
      `tensor "${info.name}" would need ${data.length} bytes in memory, more than the limit of ${MAX_IN_MEMORY_TENSOR_BYTES}`,
    );
  }
  const bytes = data.load();
  if (bytes.byteLength !== data.length) {
    throw new Error(
      `tensor "${info.name}" produced ${bytes.byteLength} bytes instead of ${data.length}`,
    );
  }
  return bytes;
}

/** All values of a tensor (at most MAX_IN_MEMORY_TENSOR_BYTES of stored bytes). */
export async function loadTensorValues(
  entry: TensorEntry,
  shape: TensorMatrixShape,
): Promise<MatrixValues> {
  const { info, data } = entry;
  const count = info.parameterCount;
  if (data.kind === 'memory') return matrixValues(shape, loadMemoryBytes(entry).slice(), count);
  checkValueBytes(entry, shape);
  const bytes = new Uint8Array(data.length);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(data.path, 'r');
  } catch (error) {
    throw new ModelFileError(
      data.path,
      `cannot open the file to read tensor data (${describe(error)})`,
    );
  }
  try {
    for (let filled = 0; filled < bytes.byteLength;) {
      const { bytesRead } = await handle.read(
        bytes,
        filled,
        bytes.byteLength - filled,
        data.offset + filled,
      );
      if (bytesRead === 0)
        throw truncated(data.path, data.offset + filled, data.offset + data.length);
      filled += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return matrixValues(shape, bytes, count);
}

/** Refuses a tensor whose values would take more than MAX_IN_MEMORY_TENSOR_BYTES to hold whole. */
function checkValueBytes(entry: TensorEntry, shape: TensorMatrixShape): void {
  const valueBytes = shape.blocks ? entry.info.parameterCount * 4 : entry.data.length;
  if (valueBytes > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new Error(
      `tensor "${entry.info.name}" has ${valueBytes} bytes of values, more than the limit of ${MAX_IN_MEMORY_TENSOR_BYTES} for reading it whole`,
    );
  }
}

/** Where a matrix's stored bytes lie in a file: what a worker needs to read it itself. */
export interface MatrixFileSource {
  readonly path: string;
  readonly offset: number;
  /** Stored bytes (tensorMatrixShape checked them against the shape). */
  readonly length: number;
  readonly shape: TensorMatrixShape;
}

/** Stored bytes read at a time when a matrix is widened to float32 from its file. */
export const MATRIX_READ_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * The file source of a tensor stored as one plain range of a file (checked against the
 * in-memory limit), or null for an in-memory tensor.
 */
export function matrixFileSource(
  entry: TensorEntry,
  shape: TensorMatrixShape,
): MatrixFileSource | null {
  const { data } = entry;
  if (data.kind !== 'file') return null;
  checkValueBytes(entry, shape);
  return { path: data.path, offset: data.offset, length: data.length, shape };
}

/**
 * The values of a matrix read from its file. float32, float16 and bfloat16 come as one
 * float32 array filled chunk by chunk (the widening is exact), so that the stored bytes
 * never sit in memory whole beside the values (into the start of `reuse` when it is large
 * enough); other types are read whole and decoded (matrixValues).
 */
export async function readMatrixFromFile(
  source: MatrixFileSource,
  chunkBytes = MATRIX_READ_CHUNK_BYTES,
  reuse?: Float32Array,
): Promise<MatrixValues> {
  const { path, offset, length, shape } = source;
  // Whole elements per chunk.
  const chunk = Math.max(8, Math.floor(chunkBytes / 8) * 8);
  const count = shape.rows * shape.cols;
  const { dtype } = shape;
  const bytes = fileTensorBytes(path, offset, length);
  const half = dtype === 'float16' || dtype === 'bfloat16';
  if (shape.blocks || !(half || dtype === 'float32')) {
    const whole = new Uint8Array(length);
    let filled = 0;
    await bytes.chunks(chunk, (piece) => {
      whole.set(piece, filled);
      filled += piece.byteLength;
    });
    return matrixValues(shape, whole, count);
  }
  const values =
    reuse && reuse.length >= count ? reuse.subarray(0, count) : new Float32Array(count);
  const elementBytes = half ? 2 : 4;
  if (length !== count * elementBytes) {
    throw new Error(`${count} ${dtype} values need ${count * elementBytes} bytes, not ${length}`);
  }
  const stored = new Uint8Array(values.buffer, values.byteOffset, length);
  let done = 0;
  await bytes.chunks(chunk, (piece) => {
    const elements = piece.byteLength / elementBytes;
    if (half) decodeHalfToFloat32(dtype, piece, elements, values.subarray(done, done + elements));
    else stored.set(piece, done * 4);
    done += elements;
  });
  return values;
}

/**
 * Reads rows and column ranges straight from the tensor's file (synchronous reads of just
 * the bytes asked for; whole rows in one read). Close it when done.
 */
export function fileMatrix(
  path: string,
  offset: number,
  shape: TensorMatrixShape,
): MatrixReader & {
  /** The stored bytes of rows [rowStart, rowEnd), into the start of `target`. */
  readStored(rowStart: number, rowEnd: number, target: Uint8Array): Uint8Array;
  close(): void;
} {
  const { dtype, rows, cols, blocks } = shape;
  const elementBytes = DTYPES[dtype].bits / 8;
  const blockRowBytes = storedRowBytes(shape);
  let descriptor: number | null = null;
  const open = (): number => {
    if (descriptor !== null) return descriptor;
    try {
      descriptor = fs.openSync(path, 'r');
    } catch (error) {
      throw new ModelFileError(
        path,
        `cannot open the file to read tensor data (${describe(error)})`,
      );
    }
    return descriptor;
  };
  const readExactly = (
    target: Uint8Array,
    targetOffset: number,
    length: number,
    position: number,
  ) => {
    for (let done = 0; done < length;) {
      const read = fs.readSync(open(), target, targetOffset + done, length - done, position + done);
      if (read === 0) throw truncated(path, position + done, position + length);
      done += read;
    }
  };
  return {
    rows,
    cols,
    read(rowStart, rowEnd, colStart, colEnd) {
      const width = colEnd - colStart;
      if (blocks) {
        // Whole rows of blocks, dequantized, then the columns asked for.
        const stored = new Uint8Array((rowEnd - rowStart) * blockRowBytes);
        readExactly(stored, 0, stored.byteLength, offset + rowStart * blockRowBytes);
        const values = dequantizeAll(blocks, stored, (rowEnd - rowStart) * cols);
        if (width === cols) return values;
        const picked = new Float32Array((rowEnd - rowStart) * width);
        for (let row = 0; row < rowEnd - rowStart; row++) {
          picked.set(values.subarray(row * cols + colStart, row * cols + colEnd), row * width);
        }
        return picked;
      }
      const rowBytes = width * elementBytes;
      const bytes = new Uint8Array((rowEnd - rowStart) * rowBytes);
      if (width === cols) {
        readExactly(bytes, 0, bytes.byteLength, offset + rowStart * cols * elementBytes);
      } else {
        for (let row = rowStart; row < rowEnd; row++) {
          const position = offset + (row * cols + colStart) * elementBytes;
          readExactly(bytes, (row - rowStart) * rowBytes, rowBytes, position);
        }
      }
      return decodeValues(dtype, bytes, (rowEnd - rowStart) * width);
    },
    readStored(rowStart, rowEnd, target) {
      const length = (rowEnd - rowStart) * blockRowBytes;
      readExactly(target, 0, length, offset + rowStart * blockRowBytes);
      return target.subarray(0, length);
    },
    close() {
      if (descriptor !== null) fs.closeSync(descriptor);
      descriptor = null;
    },
  };
}

function truncated(path: string, at: number, end: number): ModelFileError {
  return new ModelFileError(
    path,
    `the file ends at byte ${at}, before the end of the tensor data (byte ${end}); was it changed after it was opened?`,
  );
}

function describe(error: unknown): string {
  if (error instanceof Error)
    return 'code' in error && typeof error.code === 'string' ? error.code : error.message;
  return String(error);
}

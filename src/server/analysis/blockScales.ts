/**
 * The quantization grid of a GGUF block-quantized tensor: the scale of each block, read
 * from the stored blocks (no dequantization), laid out as the tensor's matrix of blocks.
 */
import type { BlockScaleGrid } from '../../shared/heatmap';
import { MAX_BLOCK_SCALE_CELLS } from '../../shared/limits';
import type { TensorEntry } from '../formats/types';
import { blockScaleReader } from './ggmlDequant';
import { decodedGgmlType } from './ggmlValues';
import { fileTensorBytes, memoryTensorBytes } from './stats';
import { loadMemoryBytes, tensorMatrixShape } from './tensorMatrix';

/** Stored blocks read at a time. */
const CHUNK_BLOCKS = 64 * 1024;

/**
 * The block scales of `entry`, a tensor stored as decoded ggml blocks; rows are pooled so
 * that the grid has at most `maxCells` cells.
 */
export async function blockScaleGrid(
  entry: TensorEntry,
  maxCells = MAX_BLOCK_SCALE_CELLS,
): Promise<BlockScaleGrid> {
  const { info, data } = entry;
  const shape = tensorMatrixShape(entry, true);
  if (!shape.blocks) {
    throw new Error(`tensor "${info.name}" is not stored as quantized blocks with scales`);
  }
  const type = decodedGgmlType(shape.blocks);
  const readScale = blockScaleReader(type.name);
  const cols = shape.cols / type.blockElements;
  if (cols > maxCells) {
    throw new Error(
      `tensor "${info.name}" has ${cols} blocks per row, more than the limit of ${maxCells} for its quantization grid`,
    );
  }
  const rowsPerCell = Math.max(1, Math.ceil((shape.rows * cols) / maxCells));
  const rows = Math.ceil(shape.rows / rowsPerCell);
  const sums = new Float64Array(rows * cols);
  const stored =
    data.kind === 'file'
      ? fileTensorBytes(data.path, data.offset, data.length)
      : memoryTensorBytes(loadMemoryBytes(entry));
  let block = 0;
  // Chunks are whole blocks (the chunk size is a multiple of the block size).
  await stored.chunks(CHUNK_BLOCKS * type.blockBytes, (chunk) => {
    for (let at = 0; at + type.blockBytes <= chunk.byteLength; at += type.blockBytes) {
      const row = Math.floor(block / cols);
      sums[Math.floor(row / rowsPerCell) * cols + (block % cols)]! += readScale(chunk, at);
      block++;
    }
  });
  if (block !== shape.rows * cols) {
    throw new Error(`tensor "${info.name}": read ${block} blocks instead of ${shape.rows * cols}`);
  }
  const values = new Float32Array(rows * cols);
  let min = Infinity;
  let max = -Infinity;
  for (let row = 0; row < rows; row++) {
    const pooled = Math.min(rowsPerCell, shape.rows - row * rowsPerCell);
    for (let col = 0; col < cols; col++) {
      const value = sums[row * cols + col]! / pooled;
      values[row * cols + col] = value;
      if (value < min) min = value;
      if (value > max) max = value;
    }
  }
  return {
    index: info.index,
    scheme: type.name,
    blockSize: type.blockElements,
    rows,
    cols,
    rowsPerCell,
    matrixRows: shape.rows,
    min,
    max,
    values: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64'),
  };
}

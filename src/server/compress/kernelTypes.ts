/**
 * The shapes the compression kernels (kernels.ts) and their WebAssembly SIMD versions
 * (quantizeSimd.ts) share: a weight seen as a matrix, and a block-quantized weight.
 */

export interface MatrixLayout {
  readonly rows: number;
  readonly cols: number;
  /** 0: the input dimension runs down the rows; 1: along each row. */
  readonly inputAxis: 0 | 1;
}

export interface QuantizedBlocks {
  /** Integers in [−qmax, qmax], in the weight's own layout. */
  readonly q: Int8Array;
  /** One scale per (output channel, block): index c·blocks + b. Zero blocks get scale 1. */
  readonly scales: Float32Array;
  readonly blocks: number;
  readonly blockSize: number;
}

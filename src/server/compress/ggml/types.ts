/**
 * Writes one block of a ggml type: `blockElements` weights from `x[from…]` into `out[at…]`.
 * `importance`, where given, is the importance matrix's value of each of the block's
 * weights (its input column's mean squared activation, importance.ts): the types whose
 * reference quantizers take llama.cpp's quant_weights fit their scales weighted by it.
 */
export type BlockQuantizer = (
  x: Float32Array,
  from: number,
  out: Uint8Array,
  at: number,
  importance?: Float32Array,
) => void;

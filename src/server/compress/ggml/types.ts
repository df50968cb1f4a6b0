/** Writes one block of a ggml type: `blockElements` weights from `x[from…]` into `out[at…]`. */
export type BlockQuantizer = (x: Float32Array, from: number, out: Uint8Array, at: number) => void;

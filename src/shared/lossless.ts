/**
 * Lossless packing (`.llz`) and compressibility: the types the server, the extension, the
 * webview and the CLI share. The container format itself is described in docs/llz-format.md.
 */

/** How well one tensor packs losslessly, next to the bound its exponent stream sets. */
export interface TensorCompressibility {
  readonly index: number;
  readonly rawBytes: number;
  /** Bytes the tensor takes packed (its coded chunks; in a fine-tune delta, its XOR with the base). */
  readonly packedBytes: number;
  /** packedBytes / rawBytes (1 for an empty tensor). */
  readonly ratio: number;
  /**
   * Empirical entropy of the exponent byte stream, in bits per value; null for types
   * without an exponent (integers, 8-bit and 4-bit types).
   */
  readonly exponentEntropyBits: number | null;
  /**
   * The ratio if the exponent stream were coded exactly at its entropy and every other
   * stream as LayerLens stores it: what an ideal exponent coder would reach.
   */
  readonly boundRatio: number | null;
}

export interface CompressibilityError {
  readonly index: number;
  readonly error: string;
}

export type CompressibilityResult = TensorCompressibility | CompressibilityError;

export function isCompressibilityError(
  result: CompressibilityResult,
): result is CompressibilityError {
  return 'error' in result;
}

/** Byte-weighted totals over tensors: the model's compressibility. */
export function totalCompressibility(results: readonly CompressibilityResult[]): {
  rawBytes: number;
  packedBytes: number;
  ratio: number;
} {
  let rawBytes = 0;
  let packedBytes = 0;
  for (const result of results) {
    if (isCompressibilityError(result)) continue;
    rawBytes += result.rawBytes;
    packedBytes += result.packedBytes;
  }
  return { rawBytes, packedBytes, ratio: rawBytes > 0 ? packedBytes / rawBytes : 1 };
}

export interface PackParams {
  /** `file:` URI of the model (.onnx or .safetensors) to pack. */
  readonly uri: string;
  /** Output file URI; `<file>.llz` beside it when absent. */
  readonly outUri?: string;
  /** Base model URI: tensors that match it are stored as XOR deltas. */
  readonly baseUri?: string;
}

export interface PackSummary {
  readonly out: string;
  readonly originalBytes: number;
  readonly packedBytes: number;
  readonly sha256: string;
  readonly tensors: number;
  readonly deltaTensors: number;
}

export interface UnpackParams {
  /** `file:` URI of the `.llz` file. */
  readonly uri: string;
  /** Output file URI; the container's name without `.llz` when absent. */
  readonly outUri?: string;
  /** For deltas: the base model, when not at the path the container records. */
  readonly baseUri?: string;
}

export interface UnpackSummary {
  readonly out: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** One tensor of a fine-tune delta next to the same tensor of its base model. */
export interface TensorDeltaStats {
  readonly index: number;
  /** Frobenius norm of the difference, ‖W − W_base‖_F, over finite values. */
  readonly deltaNorm: number;
  /** ‖W − W_base‖_F / ‖W_base‖_F (null when the base tensor is all zeros). */
  readonly relativeDelta: number | null;
  /** Fraction of elements whose bits are identical to the base's. */
  readonly identicalFraction: number;
}

export type DeltaStatsResult =
  TensorDeltaStats | { readonly index: number; readonly error: string };

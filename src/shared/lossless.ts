/**
 * Lossless packing (`.llz`) and compressibility: the types the server, the extension, the
 * webview and the CLI share. The container format itself is described in docs/llz-format.md.
 */
import { formatBytes } from './format';

/** How well one tensor packs losslessly, next to the bound its exponent stream sets. */
export interface TensorCompressibility {
  readonly index: number;
  readonly rawBytes: number;
  /** Bytes the tensor takes packed (its coded chunks; in a fine-tune delta, its XOR with the base). */
  readonly packedBytes: number;
  /** packedBytes / rawBytes (1 for an empty tensor). */
  readonly ratio: number;
  /**
   * Of packedBytes, those of chunks that repeat a chunk measured before (of another
   * tensor, or earlier in this one): a pack stores each such chunk once, so the model's
   * total leaves them out. Absent from results of older servers.
   */
  readonly repeatedBytes?: number;
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

/**
 * Totals over tensors: the model's compressibility, as a pack stores it (a repeated chunk
 * once, so a model whose branches share weights packs further than its tensors one by one).
 */
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
    packedBytes += result.packedBytes - (result.repeatedBytes ?? 0);
  }
  return { rawBytes, packedBytes, ratio: rawBytes > 0 ? packedBytes / rawBytes : 1 };
}

/**
 * What a whole model file packs to, from its tensors' totals: the tensors as packed, and
 * the rest of the file (graph, header) counted as it is. `modelBytes` is the summary's
 * totalBytes, the size every other figure of the model shows.
 */
export function modelPackEstimate(
  total: { rawBytes: number; packedBytes: number },
  modelBytes: number,
): { modelBytes: number; packedBytes: number; ratio: number } {
  const packedBytes = total.packedBytes + Math.max(0, modelBytes - total.rawBytes);
  return { modelBytes, packedBytes, ratio: modelBytes > 0 ? packedBytes / modelBytes : 1 };
}

/**
 * The model's lossless estimate in words, against the size the rest of the view shows:
 * `Packs losslessly to ≈ 670 KB of 1.72 MB (0.385)`, and a tooltip with its parts.
 */
export function packEstimateText(
  results: readonly CompressibilityResult[],
  modelBytes: number,
): { text: string; title: string } {
  const total = totalCompressibility(results);
  const estimate = modelPackEstimate(total, modelBytes);
  return {
    text: `Packs losslessly to ≈ ${formatBytes(estimate.packedBytes)} of ${formatBytes(modelBytes)} (${estimate.ratio.toFixed(3)})`,
    title:
      `${formatBytes(total.rawBytes)} of tensor data → ${formatBytes(total.packedBytes)} (repeated chunks stored once), ` +
      `plus ${formatBytes(Math.max(0, modelBytes - total.rawBytes))} of structure counted as it is; Pack Losslessly gives the exact size`,
  };
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
  /** The original's chunk digest (the SHA-256 of its chunks' hashes: XXH64, or SHA-256 in version 4). */
  readonly digest: string;
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
  /** What the bytes were checked by: their chunk digest, or (older containers) their SHA-256. */
  readonly digest: string;
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

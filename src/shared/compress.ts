/**
 * Compression of a model into a new file: the request (which tensors, which method, which
 * level) and the report the server returns after validating the result.
 */

export const COMPRESSION_METHODS = [
  'prune',
  'nm',
  'int8',
  'int4',
  'lowrank',
  'fp16',
  'bf16',
  'ggml',
] as const;
export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];

export function isCompressionMethod(value: unknown): value is CompressionMethod {
  return (COMPRESSION_METHODS as readonly unknown[]).includes(value);
}

export interface CompressionOptions {
  readonly method: CompressionMethod;
  /** prune: target sparsity in [0, 1). */
  readonly sparsity?: number;
  /** nm: keep `n` of every `m` consecutive weights along the input dimension (2:4 by default). */
  readonly n?: number;
  readonly m?: number;
  /** int4: values per scale (32, 64 or 128). */
  readonly blockSize?: number;
  /** int4 on ONNX MatMul weights: com.microsoft MatMulNBits, or opset-21 DequantizeLinear. */
  readonly int4Format?: 'matmulnbits' | 'dequantizelinear';
  /** lowrank: an explicit rank, or the energy (0, 1] to keep; one of the two. */
  readonly rank?: number;
  readonly energy?: number;
  /**
   * int8 on safetensors: store each tensor as I8 values `<name>` plus F32 scales
   * `<name>.scale` (one per output channel) instead of the dequantized values.
   */
  readonly storeQuantized?: boolean;
  /** ggml: the llama.cpp block type (one of GGML_QUANT_TYPES, e.g. "Q4_K"). */
  readonly ggmlType?: string;
  /**
   * ggml: llama-imatrix's importance matrix (legacy `.dat` or GGUF form), an absolute path;
   * the scale fits of the types that take one are weighted by it.
   */
  readonly imatrixPath?: string;
}

export interface CompressRequest {
  /** Tensor indices (as in the model's tensor list); empty = every tensor the method applies to. */
  readonly tensors: readonly number[];
  /** Alternatively a regular expression over tensor names (CLI `--layers`). */
  readonly tensorPattern?: string;
  readonly options: CompressionOptions;
  /** Output path; default: next to the original, `<name>.<method>.<ext>`, never overwriting. */
  readonly outPath?: string;
}

/** One output compared on the sample inputs: the worst sample, and the mean over samples. */
export interface OutputDeviation {
  readonly output: string;
  readonly maxAbsDiff: number;
  readonly relativeL2: number;
  readonly cosine: number;
  /** Samples compared (the fields above are the worst of them). */
  readonly samples?: number;
  readonly meanRelativeL2?: number;
  readonly meanCosine?: number;
}

/**
 * Whether a compressed model was validated: only when its outputs were compared on
 * inputs that could show a difference (outputs that vary across samples, not pinned at a
 * bound, and moved by the compressed weights). `reasons` says why not.
 */
export interface ValidationVerdict {
  readonly validated: boolean;
  readonly reasons: readonly string[];
  /** The lowest output cosine over the samples, when outputs were compared. */
  readonly worstCosine?: number;
  /** Samples the outputs were compared on. */
  readonly samples?: number;
}

/** Below this worst-sample cosine a validated model's outputs changed substantially. */
export const SUBSTANTIAL_CHANGE_COSINE = 0.9;

/**
 * "validated: worst output cosine 0.9995 over 8 samples", or "not validated: <reasons>",
 * as every surface shows it: validated says the check could see a difference, the cosine
 * says how large the difference is.
 */
export function verdictText(verdict: ValidationVerdict): string {
  if (!verdict.validated) return `not validated: ${verdict.reasons.join('; ')}`;
  if (verdict.worstCosine === undefined) return 'validated';
  const cosine = verdict.worstCosine;
  const shown = Math.abs(cosine) >= 1e-3 ? cosine.toPrecision(4) : cosine.toExponential(1);
  const measured = `worst output cosine ${shown} over ${verdict.samples ?? 1} samples`;
  return verdict.worstCosine < SUBSTANTIAL_CHANGE_COSINE
    ? `validated, and the outputs changed substantially: ${measured}`
    : `validated: ${measured}`;
}

export interface TensorCompressionResult {
  readonly name: string;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** ‖W − Ŵ‖_F / ‖W‖_F, with Ŵ what the new file computes with. */
  readonly relativeError: number;
  /** What was done, e.g. "int8 per-channel (DequantizeLinear)", or why the tensor was skipped. */
  readonly detail: string;
  readonly skipped: boolean;
}

/** One setting of a per-tensor compression (a plan) and the tensors it was chosen for. */
export interface MethodShare {
  readonly options: CompressionOptions;
  readonly tensors: number;
  /** Those tensors' bytes in the original. */
  readonly bytesBefore: number;
}

export interface CompressionReport {
  readonly source: string;
  readonly output: string;
  /** The JSON copy of this report, written next to the output. */
  readonly reportPath: string;
  /** The method (a per-tensor compression: the one covering the most bytes) and its options. */
  readonly method: CompressionMethod;
  readonly options: CompressionOptions;
  /**
   * Every setting of a per-tensor compression (a plan), the most bytes first; absent for a
   * compression with one method. `describeMethods` says them in words.
   */
  readonly methods?: readonly MethodShare[];
  readonly fileBytesBefore: number;
  readonly fileBytesAfter: number;
  readonly tensors: readonly TensorCompressionResult[];
  /** Per model output, on the sample inputs (empty when the format cannot run, e.g. safetensors). */
  readonly outputs: readonly OutputDeviation[];
  /** How the sample inputs were obtained: "generated (seed 0)", or the files read. */
  readonly inputs: string;
  /** Validation steps passed ("structure", "onnxruntime load", "run") and any warnings. */
  readonly validation: readonly string[];
  /** Whether the comparison could have seen a difference, and why not. */
  readonly verdict: ValidationVerdict;
  readonly elapsedMs: number;
}

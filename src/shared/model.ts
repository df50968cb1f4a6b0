/** View-model types shared by the server, the extension, the webview and the CLI. */
import type { CompressionMethod } from './compress';
import type { FileSizeEffect, StorageChoice } from './compressMethods';
import type { DType } from './dtypes';

/**
 * The model formats LayerLens reads (a packed `.llz` file presents one of them): the name
 * users know, and the extensions of the files they open.
 */
export const MODEL_FORMAT_INFO = {
  onnx: { label: 'ONNX', extensions: ['.onnx'] },
  safetensors: { label: 'safetensors', extensions: ['.safetensors'] },
  pytorch: { label: 'PyTorch', extensions: ['.pt', '.pth', '.ckpt', '.bin'] },
  gguf: { label: 'GGUF', extensions: ['.gguf'] },
} as const satisfies Record<string, { label: string; extensions: readonly string[] }>;

export type ModelFormat = keyof typeof MODEL_FORMAT_INFO;
export const MODEL_FORMATS = Object.keys(MODEL_FORMAT_INFO) as readonly ModelFormat[];

/** The extension of packed files (`.llz`), which hold a model of any format. */
export const PACKED_EXTENSION = '.llz';

/** Extensions (lower case, with the dot) of every model file LayerLens opens, packed ones included. */
export const MODEL_FILE_EXTENSIONS: readonly string[] = [
  ...MODEL_FORMATS.flatMap((format) => MODEL_FORMAT_INFO[format].extensions),
  PACKED_EXTENSION,
];

/** Whether the model's format stores a graph of operators (nodes with ops, inputs, outputs). */
export function hasGraph(summary: ModelSummary): boolean {
  return summary.capabilities?.graph === true;
}

export function isModelFormat(value: unknown): value is ModelFormat {
  return (MODEL_FORMATS as readonly unknown[]).includes(value);
}

/** Where in the file a tensor's values live. */
export type TensorLocation =
  | 'initializer'
  | 'constant'
  | 'sparse-initializer'
  | 'external'
  | 'safetensors'
  | 'pytorch'
  | 'gguf';

export interface TensorInfo {
  /** Position in the model's tensor list; the key used by every per-tensor request. */
  readonly index: number;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /**
   * The dimensions in the order the file stores them, where that differs from `shape`
   * (GGUF's `ne`, innermost first); shown in the shape's tooltip.
   */
  readonly fileShape?: readonly number[];
  readonly parameterCount: number;
  /** Bytes of the stored values (for sparse initializers: values plus indices). */
  readonly byteLength: number;
  /**
   * The layer the tensor belongs to. ONNX: the name of the node that consumes it (or
   * produces it, for Constant nodes without a consumer). safetensors: the name prefix
   * (`encoder.fc1` for `encoder.fc1.weight`).
   */
  readonly node: string;
  /** Operator type of that node (`Conv`, `MatMul`…); null where the format has no graph. */
  readonly op: string | null;
  readonly location: TensorLocation;
  /**
   * Path of the (sub)graph that holds the tensor: `""` for the main graph,
   * `If_0/then_branch` for a subgraph attribute, nested with `/`.
   */
  readonly graph: string;
  /** File that holds the bytes, relative to the model's folder. */
  readonly file: string;
  /** Offset of the bytes within `file`, when they are one contiguous range there. */
  readonly byteOffset: number | null;
  /**
   * Present when the stored values are codes of a quantization scheme (a GGUF ggml type,
   * an ONNX DequantizeLinear/MatMulNBits weight): how the values the model computes with
   * are encoded. `dtype` is then the element type of those decoded values.
   */
  readonly encoding?: TensorEncoding;
}

/** How a quantized tensor's stored codes map to the values the model computes with. */
export interface TensorEncoding {
  /** The name users know: `Q4_K`, `int8 per-channel`, `MatMulNBits 4-bit`. */
  readonly scheme: string;
  /** Stored bits per weight, scales and zero points included. */
  readonly bitsPerWeight: number;
  /**
   * The type the codes are stored as, under which the summary counts the tensor's bytes: the
   * codes' dtype (`int8`; `uint8` holding packed 4-bit codes) or the block type (`Q4_K`).
   */
  readonly storedType: StoredType;
  /** One scale for the whole tensor, one per output channel, or one per block. */
  readonly granularity: 'tensor' | 'channel' | 'block';
  /** Weights per block, for block granularity. */
  readonly blockSize?: number;
  /** Zero point absent or fixed at the middle of the code range. */
  readonly symmetric?: boolean;
  /** The op that turns the codes into values (`DequantizeLinear`, `MatMulNBits`…), where a graph names one. */
  readonly decodedBy?: string;
  /** Null when LayerLens decodes the values; otherwise why it does not (the type is listed only). */
  readonly notDecoded: string | null;
  /**
   * LayerLens counts the integer codes the values are decoded from (the histogram's codes
   * view): ONNX quantized weights; not ggml blocks, whose codes are not read apart.
   */
  readonly countsCodes: boolean;
  /**
   * LayerLens reads the scale of every block (the heatmap's quantization grid,
   * layerlens/blockScales): decoded ggml block types; not ONNX encodings.
   */
  readonly blockScales: boolean;
}

/**
 * A type tensors are stored as: a dtype, or the name of a block type whose blocks hold
 * codes and scales together (GGUF's `Q4_K`).
 */
export type StoredType = DType | (string & {});

/** The type the tensor's bytes are stored as (its codes' for a quantized weight). */
export function storedTypeOf(info: Pick<TensorInfo, 'dtype' | 'encoding'>): StoredType {
  return info.encoding?.storedType ?? info.dtype;
}

export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType | null;
  /** Dimensions; symbolic ones as their name, unknown ones as null. */
  readonly shape: readonly (number | string | null)[] | null;
}

export interface MetadataEntry {
  readonly key: string;
  readonly value: string;
}

export interface ModelSummary {
  readonly format: ModelFormat;
  /** File name (no folder), for titles and messages. */
  readonly fileName: string;
  /** Size of the opened file itself; of a sharded model opened through its index, the sum of its shards. */
  readonly fileBytes: number;
  /** Size of every file the model reads: the file, its external data files or shards. */
  readonly totalBytes: number;
  /** Other files the model's bytes live in, relative to the model's folder. */
  readonly dataFiles: readonly string[];
  /** Shards of a model opened through its shard index (`dataFiles` names them); absent otherwise. */
  readonly shards?: number;
  readonly parameterCount: number;
  readonly tensorCount: number;
  /** By the type each tensor is stored as (storedTypeOf: a quantized weight's codes or blocks). */
  readonly parametersByDType: Readonly<Partial<Record<StoredType, number>>>;
  readonly bytesByDType: Readonly<Partial<Record<StoredType, number>>>;
  /** Operator counts over the whole graph, subgraphs included (empty for safetensors). */
  readonly opCounts: Readonly<Record<string, number>>;
  /** Nodes over the whole graph, subgraphs included. */
  readonly nodeCount: number;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Format facts (IR version, opsets, producer…) and the file's own metadata. */
  readonly metadata: readonly MetadataEntry[];
  /**
   * A packed fine-tune delta (`layerlens pack --base`): the path of its base model, null
   * when the base is missing (its tensor values cannot be read then).
   */
  readonly deltaBase?: string | null;
  /** Problems that did not stop the model from opening. */
  readonly warnings: readonly string[];
  /** What LayerLens can do with the model beyond reading it (from its format module). */
  readonly capabilities?: ModelCapabilities;
}

/** What a model's format allows, sent with its summary so the extension need not know formats. */
export interface ModelCapabilities {
  /** The compression methods that can write this format (empty: it cannot be compressed). */
  readonly compress: readonly CompressionMethod[];
  /** The model runs in onnxruntime: measured sensitivity and validated outputs. */
  readonly run: boolean;
  /** Its weights can be swept for sensitivity (the data-free proxy at least). */
  readonly sensitivity: boolean;
  /** The format stores a graph of operators: nodes with ops, the model's inputs and outputs. */
  readonly graph: boolean;
  /** The ways the format stores a method's output, where it offers more than its default. */
  readonly storage?: { readonly [M in CompressionMethod]?: readonly StorageChoice[] };
  /** What each method does to the file's size on this format (a storage way may differ). */
  readonly fileSize?: { readonly [M in CompressionMethod]?: FileSizeEffect };
  /**
   * Why the model is only read though its format can do more (a packed `.llz` file), and
   * what to do about it; shown where the user asks for what it cannot do.
   */
  readonly readOnly?: string;
}

/** The model's weights: the tensors compression methods act on (the rest: shapes, scales, biases). */
export interface WeightTensors {
  /** Their indices in the tensor list, ascending. */
  readonly indices: readonly number[];
}

export interface TensorPage {
  readonly offset: number;
  readonly total: number;
  readonly tensors: readonly TensorInfo[];
}

/**
 * Equal-width bins from `min` to `max`. A tensor's statistics bin its finite values over
 * [min, max] in 256 bins, except float32 tensors, read in one pass: their bins are 2^e wide
 * on multiples of 2^e around [min, max] (128 to 256 of them; server/analysis/stats.ts,
 * GridHistogram). A tensor of one value gets [value − 0.5, value + 0.5].
 */
export interface Histogram {
  /** Lower edge of the first bin and upper edge of the last one. */
  readonly min: number;
  readonly max: number;
  readonly counts: readonly number[];
}

/** The integer codes of a quantized tensor: the raw grid behind its decoded values. */
export interface TensorCodes {
  readonly index: number;
  /** Bits of one code, and whether codes are signed. */
  readonly bits: number;
  readonly signed: boolean;
  /** Smallest and largest code used. */
  readonly min: number;
  readonly max: number;
  /** Distinct codes the tensor uses, of the 2^bits its width allows. */
  readonly levelsUsed: number;
  readonly levelsPossible: number;
  /**
   * Counts of the codes: one bin per code (edges at code ± ½) when the used range has at
   * most MAX_CODE_BINS codes, else MAX_CODE_BINS equal bins over [min, max].
   */
  readonly histogram: Histogram;
}

/** Bins of a code histogram (one per code of an 8-bit tensor). */
export const MAX_CODE_BINS = 256;

export interface TensorStats {
  readonly index: number;
  /** Elements inspected (all of them). */
  readonly count: number;
  /** Finite values only; null when there are none. */
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  /** Population standard deviation. */
  readonly std: number | null;
  /** Fraction of exact zeros among all elements. */
  readonly sparsity: number;
  /** Frobenius norm, sqrt(sum of squares) of the finite values. */
  readonly l2Norm: number;
  readonly nanCount: number;
  readonly infCount: number;
  readonly histogram: Histogram | null;
}

/** A per-tensor failure inside a batch (e.g. a string tensor has no statistics). */
export interface TensorStatsError {
  readonly index: number;
  readonly error: string;
  /** Set when the tensor's bytes could not be read from this file (corrupt or refused data). */
  readonly file?: string;
}

export type TensorStatsResult = TensorStats | TensorStatsError;

export function isStatsError(result: TensorStatsResult): result is TensorStatsError {
  return 'error' in result;
}

/** What every format module provides, and how a tensor's bytes are reached. */
import type { DType } from '../../shared/dtypes';
import type { DequantizePlan } from '../analysis/dequantize';
import type { ModelFormat, ModelSummary, TensorInfo } from '../../shared/model';
import type { OnnxModel } from '../onnx/model';

/**
 * Where a tensor's values are. Values stay on disk (or in the decoded protobuf) until
 * statistics or another computation asks for them. `blocks`, on either kind: the bytes are
 * blocks of this ggml type (GGUF quantized tensors), whose values are their dequantized
 * float32 (analysis/ggmlValues.ts); absent: plain little-endian `dtype` bytes.
 */
export type TensorData =
  /** A contiguous range of a file, in the dtype's little-endian layout. */
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly offset: number;
      readonly length: number;
      readonly blocks?: string;
    }
  /**
   * Values not stored as one range (ONNX typed fields, sparse initializers, tensors of a
   * packed file): `load` builds the dense little-endian bytes on demand.
   */
  | {
      readonly kind: 'memory';
      readonly length: number;
      readonly load: () => Uint8Array;
      /** A packed file's tensor: where a worker can decode the bytes itself, chunk by chunk. */
      readonly packed?: PackedRange;
      readonly blocks?: string;
      /** Values decoded from stored codes (a quantized weight): from which bytes, and how. */
      readonly decoded?: DecodedValues;
      /** Values derived from one file range (a PyTorch view or deflated record): the range and how. */
      readonly derived?: DerivedRange;
    };

/**
 * A tensor whose dense bytes are derived from [offset, offset + length) of its file (a
 * non-contiguous view of a PyTorch storage, gathered; a deflated zip record, inflated).
 * A packed file reads the same range from its container and derives them the same way.
 */
export interface DerivedRange {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  derive(raw: Uint8Array): Uint8Array;
}

/**
 * How the float32 values of a quantized weight come from the stored tensors: its codes
 * and the parameters (scale, zero point) the graph names for them (formats/decodedValues.ts
 * builds the TensorData; formats/onnxQuantized.ts fills this for ONNX).
 */
export interface DecodedValues {
  /** The codes as the file stores them. */
  readonly codes: TensorData;
  /** Their element type in the file (MatMulNBits: `uint8` bytes packing narrower codes). */
  readonly codeDtype: DType;
  /** The other stored tensors the decoding reads (scale, then zero point when there is one). */
  readonly params: readonly TensorData[];
  /** How the values come from the bytes of `codes` and `params` (analysis/dequantize.ts). */
  readonly plan: DequantizePlan;
  /** Bits of one code and whether codes are signed, for the range of possible levels. */
  readonly codeBits: number;
  readonly signedCodes: boolean;
}

/** Bytes [offset, offset + length) of the original file a `.llz` container holds. */
export interface PackedRange {
  readonly container: string;
  /** The base model of a delta container; null when it is not a delta (or the base is missing). */
  readonly base: string | null;
  readonly offset: number;
}

export interface TensorEntry {
  readonly info: TensorInfo;
  readonly data: TensorData;
}

export interface OpenedModel {
  /** Absolute path of the opened file. */
  readonly path: string;
  readonly summary: ModelSummary;
  readonly tensors: readonly TensorEntry[];
  /**
   * ONNX files: the decoded model the reader walked (see src/server/onnx), for work on
   * the graph without decoding the file again. Shared: edit only `editableCopy()`.
   */
  readonly onnx?: () => Promise<OnnxModel>;
  /**
   * A packed ONNX model (which has no `onnx`): its inner model decoded, every tensor's bytes
   * left out (zeros; the container holds them). For questions of structure alone, which
   * tensors are weights and the graph view (onnxStructureOf); never written or run.
   */
  readonly onnxStructure?: () => Promise<OnnxModel>;
  /**
   * A packed `.llz` file: it presents its inner model, read (and drawn as a graph) through
   * that model's format, but it is neither written nor run until it is unpacked
   * (registry's moduleOf).
   */
  readonly packed?: true;
}

export interface OpenOptions {
  /**
   * The folder the files a model names (ONNX external data) are found in, and confined to;
   * default: the model's own folder. A packed model's inner model is read from a temporary
   * copy of its structure, and its external data lives beside the packed file.
   */
  readonly referenceFolder?: string;
}

export interface FormatModule {
  /** The format it reads; `llz`: packed files, which present the model they hold. */
  readonly format: ModelFormat | 'llz';
  /** File-name extensions, lower case with the dot, used when magic bytes are inconclusive. */
  readonly extensions: readonly string[];
  /**
   * Cheap check on the first bytes of the file (at most 4096, fewer for short files):
   * true when the bytes look like this format.
   */
  match(head: Uint8Array): boolean;
  /** Read the structure (headers only) of the file at `path`; throw ModelFileError when it is unusable. */
  open(path: string, options?: OpenOptions): Promise<OpenedModel>;
}

export { ModelFileError } from './modelFileError';

/** What every format module provides, and how a tensor's bytes are reached. */
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
    };

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
  open(path: string): Promise<OpenedModel>;
}

export { ModelFileError } from './modelFileError';

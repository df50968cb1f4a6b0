/** What every format module provides, and how a tensor's bytes are reached. */
import type { onnx } from 'onnx-proto';
import type { CompressionOptions, CompressionReport } from '../../shared/compress';
import type { ModelFormat, ModelSummary, TensorInfo } from '../../shared/model';
import type { LayerLensSettings } from '../../shared/settings';
import type { CompressContext } from '../compress';
import type { MethodFormats, SizedOutcome } from '../compress/methods/types';
import type { ChoicesOutput, TensorChoice } from '../compress/output';
import type { MeasuredSweep } from '../sensitivity/sweep';
import type { SweepTensor } from '../sensitivity/tensors';

/**
 * Where a tensor's values are. Values stay on disk (or in the decoded protobuf) until
 * statistics or another computation asks for them.
 */
export type TensorData =
  /** A contiguous range of a file, in the dtype's little-endian layout. */
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly offset: number;
      readonly length: number;
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
  /** Compressed copies can be written (absent: the format is read-only). */
  readonly compression?: FormatCompression;
  /** The model executes in onnxruntime: measured sensitivity and validated outputs. */
  readonly runs?: boolean;
}

/**
 * What a format that can be compressed provides. Code asks the model's format for it
 * (compressionOf) instead of comparing format names.
 */
export interface FormatCompression {
  /** The key of each method module's implementation for this format (compress/methods/). */
  readonly methods: keyof MethodFormats;
  /** Bytes of the model that size targets and reports count (ONNX: with its external data). */
  modelBytes(summary: ModelSummary): number;
  /** Write the chosen tensors, each with its own options, into one new model; validate and report. */
  compress(
    model: OpenedModel,
    choices: readonly TensorChoice[],
    context: CompressContext,
    output: ChoicesOutput,
  ): Promise<CompressionReport>;
  /** The decoded model that the sweep and the size predictor work on (ONNX: the protobuf). */
  decode(model: OpenedModel): Promise<onnx.IModelProto | undefined>;
  /**
   * What each tensor can be compressed with in a sweep (its traits), or why nothing
   * applies; `decoded` is what `decode` returned.
   */
  sweepTraits(
    model: OpenedModel,
    decoded: onnx.IModelProto | undefined,
  ): (entry: TensorEntry) => SweepTensor | string;
  /** Present where the format runs: the one-session measured sweep (a string: why it cannot). */
  measure?(
    model: OpenedModel,
    decoded: onnx.IModelProto | undefined,
    tensors: readonly SweepTensor[],
    values: ReadonlyMap<number, Float32Array>,
    settings: LayerLensSettings,
    signal?: AbortSignal,
  ): Promise<MeasuredSweep | string>;
  /** Predicted bytes of tensors with options, and what a compressed file adds once. */
  sizer(model: OpenedModel, decoded: onnx.IModelProto | undefined): FormatSizer;
}

export interface FormatSizer {
  /** Bytes a compressed file adds once whatever is changed (metadata, opset imports). */
  readonly fileOverhead: number;
  /** The tensor's bytes in the written file with `options`, or why the option is left out. */
  size(
    entry: TensorEntry,
    options: CompressionOptions,
    values: () => Float32Array,
  ): Promise<SizedOutcome>;
}

/** A model file (or one of its data files) that cannot be read, with the reason. */
export class ModelFileError extends Error {
  constructor(
    /** The file at fault, as an absolute path. */
    readonly file: string,
    /** What is wrong, in words a user understands. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ModelFileError';
  }
}

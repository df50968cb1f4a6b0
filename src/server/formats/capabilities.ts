/**
 * What a format can do beyond reading (FormatModule's optional capabilities): write
 * compressed copies, run in onnxruntime. Kept apart from formats/types.ts, which the
 * compressors, the sweep and the ONNX module import, so that no import cycle forms.
 */
import type { CompressionOptions, CompressionReport } from '../../shared/compress';
import type { ModelGraph } from '../../shared/graph';
import type { ModelFormat, ModelSummary } from '../../shared/model';
import type { Plan, PlanTarget } from '../../shared/plan';
import type { SweepLevel } from '../../shared/sensitivity';
import type { LayerLensSettings } from '../../shared/settings';
import type { CompressContext } from '../compress/context';
import type { MethodFormats, SizedOutcome } from '../compress/methods/types';
import type { ChoicesOutput, TensorChoice } from '../compress/output';
import type { OnnxModel } from '../onnx/model';
import type { MeasuredSweep } from '../sensitivity/sweep';
import type { SweepTensor } from '../sensitivity/traits';
import type { FormatModule, OpenedModel, TensorEntry } from './types';

/** A format module with what it can do beyond reading (as the registry lists it). */
export interface CapableFormatModule extends FormatModule {
  /** Compressed copies can be written (absent: the format is read-only). */
  readonly compression?: FormatCompression;
  /** The model executes in onnxruntime: measured sensitivity and validated outputs. */
  readonly runs?: boolean;
  /**
   * What the data-free sensitivity proxy sweeps, where it differs from `compression` (GGUF:
   * its own levels); formats with `compression` alone sweep through it.
   */
  readonly sweep?: FormatSweep;
  /** The file stores a graph of operators (nodes, ops, inputs and outputs): its graph view. */
  readonly graph?: FormatGraph;
}

/** What a format that stores a graph of operators provides. */
export interface FormatGraph {
  /** The graph view of an opened model (layerlens/graph). */
  build(model: OpenedModel): Promise<ModelGraph>;
}

/** What a sensitivity sweep asks of a format (a part of FormatCompression). */
export type FormatSweep = Pick<
  FormatCompression,
  'decode' | 'structure' | 'sweepTraits' | 'measure'
> & {
  /**
   * The levels the format's own sweep takes when a request names none (GGUF: the ggml
   * block types); absent: every method's default levels (DEFAULT_SWEEP).
   */
  readonly levels?: readonly SweepLevel[];
};

/**
 * What a format that can be compressed provides. Code asks the model's format for it
 * (compressionOf) instead of comparing format names.
 */
export interface FormatCompression {
  /** The key of each method module's implementation for this format (compress/methods/). */
  readonly methods: keyof MethodFormats;
  /**
   * Where compressed copies are written in another format than the model's (a PyTorch
   * checkpoint's become `.safetensors`): that format and its file-name extension.
   */
  readonly output?: { readonly format: ModelFormat; readonly extension: string };
  /** Bytes of the model that size targets and reports count (ONNX: with its external data). */
  modelBytes(summary: ModelSummary): number;
  /** Write the chosen tensors, each with its own options, into one new model; validate and report. */
  compress(
    model: OpenedModel,
    choices: readonly TensorChoice[],
    context: CompressContext,
    output: ChoicesOutput,
  ): Promise<CompressionReport>;
  /**
   * The decoded model that the sweep and the size predictor work on (ONNX: the opened
   * model's own, onnxModelOf; shared, so never edited).
   */
  decode(model: OpenedModel): Promise<OnnxModel | undefined>;
  /**
   * What `sweepTraits` reads to tell which tensors are weights, where it differs from
   * `decode` (ONNX: a packed model's structure, its tensor bytes left out; onnxStructureOf).
   */
  structure?(model: OpenedModel): Promise<OnnxModel | undefined>;
  /**
   * What each tensor can be compressed with in a sweep (its traits), or why nothing
   * applies; `decoded` is what `decode` returned.
   */
  sweepTraits(
    model: OpenedModel,
    decoded: OnnxModel | undefined,
  ): (entry: TensorEntry) => SweepTensor | string;
  /** Present where the format runs: the one-session measured sweep (a string: why it cannot). */
  measure?(
    model: OpenedModel,
    decoded: OnnxModel | undefined,
    tensors: readonly SweepTensor[],
    values: ReadonlyMap<number, Float32Array>,
    settings: LayerLensSettings,
    signal?: AbortSignal,
  ): Promise<MeasuredSweep | string>;
  /**
   * Present where the format plans its own types instead of the generic planner (GGUF:
   * llama.cpp types for a bits-per-weight or size target): the plan of `target`, with the
   * job's cancel, progress and settings.
   */
  planTypes?(model: OpenedModel, target: PlanTarget, context: CompressContext): Promise<Plan>;
  /** Predicted bytes of tensors with options, and what a compressed file adds once. */
  sizer(model: OpenedModel, decoded: OnnxModel | undefined): FormatSizer;
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

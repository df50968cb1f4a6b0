/**
 * What a compression method module provides: its id, label and defaults (shared with the
 * extension through METHOD_INFO), the sweep's levels for it, and for each format it can
 * write, `apply` (compress one tensor), `feasible` (why it cannot, or null) and
 * `predictBytes` (the tensor's bytes in the written file, before anything is written).
 */
import type { CompressionOptions } from '../../../shared/compress';
import type { FileSizeEffect, MethodInfo, StorageChoice } from '../../../shared/compressMethods';
import type { TensorEncoding } from '../../../shared/model';
import type { SweepLevel } from '../../../shared/sensitivity';
import type { JacobiSvd } from '../../analysis/jacobiSvd';
import type { TensorEntry } from '../../formats/types';
import { allFinite, type MatrixLayout } from '../kernels';
import type { EditContext, OnnxOutcome, WeightJob } from '../onnx/methods';
import type { OnnxWeight } from '../onnx/sizes';
import type { SafetensorsOutcome, SafetensorsTensor } from '../safetensorsValues';

/** What the sweep knows about a tensor's shape and use, for deciding which levels apply. */
export interface TensorTraits {
  /** The tensor seen as a matrix with its input axis; absent when there is none (with why). */
  readonly layout?: MatrixLayout;
  readonly layoutProblem?: string;
  /** Why low-rank does not apply (beyond having a layout); absent when it does. */
  readonly lowRankProblem?: string;
}

/** Predicted bytes with the options as the recipe stores them, or why the option is left out. */
export type SizedOutcome = { options: CompressionOptions; bytes: number } | string;

/** Shares one tensor's exact SVD between its low-rank levels (see sensitivity/proxy.ts). */
export interface SvdBasis {
  exact(values: Float32Array, rows: number, cols: number): JacobiSvd | null;
}

/** What every format's implementation of a method may say about itself. */
interface FormatMethod {
  /** The ways the format stores the method's output, for the quick picks (absent: one way). */
  readonly storage?: readonly StorageChoice[];
  /**
   * What the written file's size does (a storage way may say otherwise): the quick picks
   * say it, so that a method that saves nothing on disk is not taken for compression.
   */
  readonly fileSize: FileSizeEffect;
}

/** The method on ONNX: an edit of the decoded model, one weight at a time. */
export interface OnnxMethod extends FormatMethod {
  /** Why the weight cannot take `options` (null: it can). */
  feasible(weight: OnnxWeight, options: CompressionOptions): string | null;
  /** Rewrite the model for one weight; throws Skip with the reason when it does not apply. */
  apply(ctx: EditContext, job: WeightJob, options: CompressionOptions): Promise<OnnxOutcome>;
  /** Bytes the weight takes in the written model (its new nodes included), for a feasible option. */
  predictBytes(
    entry: TensorEntry,
    weight: OnnxWeight,
    options: CompressionOptions,
    values: () => Float32Array,
  ): Promise<SizedOutcome>;
}

/** The method on safetensors: the tensors stored in place of one tensor. */
export interface SafetensorsMethod extends FormatMethod {
  /** Why the tensor cannot take `options` in a written file (null: it can). */
  feasible(entry: TensorEntry, options: CompressionOptions): string | null;
  /** The tensors written in its place, or a string: skipped, with the reason. */
  apply(
    tensor: SafetensorsTensor,
    options: CompressionOptions,
  ): Promise<SafetensorsOutcome | string>;
  /** Bytes the tensor takes in the written file (header entries it adds included). */
  predictBytes(entry: TensorEntry, options: CompressionOptions, fileBytes: number): SizedOutcome;
}

/** The method on GGUF: a tensor re-typed to a ggml block type (compress/ggml/ggufWriter.ts). */
export interface GgufMethod extends FormatMethod {
  /** Why the tensor cannot take `options` in a written file (null: it can). */
  feasible(entry: TensorEntry, options: CompressionOptions): string | null;
  /** Bytes the tensor takes in the written file (its padding to the alignment not counted). */
  predictBytes(entry: TensorEntry, options: CompressionOptions): SizedOutcome;
}

/** The implementation of each format a method can write. */
export interface MethodFormats {
  readonly onnx?: OnnxMethod;
  readonly safetensors?: SafetensorsMethod;
  readonly gguf?: GgufMethod;
}

export interface CompressionMethodModule extends MethodInfo {
  /** The levels of the default sensitivity sweep. */
  readonly sweepLevels: readonly SweepLevel[];
  /** The levels a plan chooses from (none where the method makes no file smaller). */
  readonly planLevels: readonly SweepLevel[];
  /** Why a tensor with `traits` cannot take `level` in a sweep; undefined when it can. */
  sweepProblem(level: SweepLevel, traits: TensorTraits): string | undefined;
  /**
   * Ŵ: the float32 values a model compressed with `level` computes with, in the stored
   * order of `values`; throws LevelNotApplicable when the compressor would skip the tensor.
   */
  reconstruct(
    values: Float32Array,
    layout: MatrixLayout | undefined,
    level: SweepLevel,
    signal?: AbortSignal,
    basis?: SvdBasis,
  ): Promise<Float32Array>;
  readonly formats: MethodFormats;
}

/**
 * Why a weight stored quantized is not compressed again, or null: LayerLens refuses rather
 * than re-quantizing (every method's ONNX `feasible` asks this first, and the compressor and
 * the sweep give the same reason).
 */
export function quantizedProblem(encoding: TensorEncoding | undefined): string | null {
  if (!encoding) return null;
  const via = encoding.decodedBy ? ` (${encoding.decodedBy})` : '';
  return `already ${encoding.scheme}${via}; LayerLens does not re-quantize quantized weights`;
}

/** A level that does not apply to a tensor (the compressor would skip it), with the reason. */
export class LevelNotApplicable extends Error {
  override readonly name = 'LevelNotApplicable';
}

/** `sweepProblem` of the methods that work along the input axis: why a tensor without one cannot take `level`. */
export function inputAxisProblem(level: SweepLevel, traits: TensorTraits): string | undefined {
  return traits.layout ? undefined : `${level.label} needs an input axis: ${traits.layoutProblem}`;
}

/** The layout a sweep level needs, or LevelNotApplicable. */
export function needLayout(layout: MatrixLayout | undefined, level: SweepLevel): MatrixLayout {
  if (!layout) throw new LevelNotApplicable(`${level.label} needs the tensor's input axis`);
  return layout;
}

/** Refuse non-finite values as the compressor does (LevelNotApplicable). */
export function needFinite(values: Float32Array, level: SweepLevel): void {
  if (!allFinite(values)) {
    throw new LevelNotApplicable(`${level.label}: the tensor holds non-finite values (inf or NaN)`);
  }
}

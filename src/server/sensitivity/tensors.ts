/**
 * The tensors a sensitivity sweep takes and what each can be compressed with, as the
 * model's format says (FormatCompression.sweepTraits; the traits themselves: traits.ts).
 */
import { MAX_TENSORS } from '../../shared/limits';
import { sweepCapability, sweepOf } from '../formats/registry';
import { ModelFileError, type OpenedModel } from '../formats/types';
import type { OnnxModel } from '../onnx';
import { safetensorsSweepTraits, type LeftOutTensor, type SweepTensor } from './traits';

export type { LeftOutTensor, SweepTensor } from './traits';

/**
 * The tensors of `indices` (empty: every tensor a method applies to) with their traits;
 * explicitly named tensors that cannot be swept come back in `leftOut` with the reason.
 * `decoded` is what the format's `decode` gives (the opened model's decoded ONNX model,
 * onnxModelOf, for ONNX).
 */
export function sweepTensors(
  model: OpenedModel,
  indices: readonly number[],
  decoded?: OnnxModel,
): { tensors: SweepTensor[]; leftOut: LeftOutTensor[] } {
  if (indices.length > MAX_TENSORS) {
    throw new RangeError(`a request may name at most ${MAX_TENSORS} tensors`);
  }
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= model.tensors.length) {
      throw new ModelFileError(
        model.path,
        `no tensor with index ${index} (the model has ${model.tensors.length})`,
      );
    }
  }
  const traitsOf = sweepOf(model).sweepTraits(model, decoded);
  const wanted = indices.length > 0 ? new Set(indices) : undefined;
  const tensors: SweepTensor[] = [];
  const leftOut: LeftOutTensor[] = [];
  for (const entry of model.tensors) {
    if (wanted && !wanted.has(entry.info.index)) continue;
    const tensor = traitsOf(entry);
    if (typeof tensor === 'string') {
      if (wanted) leftOut.push({ entry, note: tensor });
      continue;
    }
    tensors.push(tensor);
  }
  return { tensors, leftOut };
}

/**
 * The model's weights: the tensors compression methods act on, by the same rule the sweep
 * and the compressor follow (the format's sweepTraits), and the weight matrices that are
 * quantized already (codes with an encoding, which the methods leave as they are). A packed
 * model answers as its inner model does (the format's `structure`); formats that cannot be
 * swept count their floating-point matrices, as safetensors does.
 */
export async function weightIndices(model: OpenedModel): Promise<number[]> {
  const sweep = sweepCapability(model);
  const traitsOf = sweep
    ? sweep.sweepTraits(
        model,
        await (sweep.structure ? sweep.structure(model) : sweep.decode(model)),
      )
    : safetensorsSweepTraits;
  const isWeight = (entry: OpenedModel['tensors'][number]) =>
    (entry.info.encoding !== undefined && entry.info.shape.length >= 2) ||
    typeof traitsOf(entry) !== 'string';
  return model.tensors.filter(isWeight).map((entry) => entry.info.index);
}

/**
 * Which tensors a compression request names: explicit indices, a regular expression over
 * tensor names, or (neither) every tensor the method applies to.
 */
import type { CompressRequest } from '../../shared/compress';
import { MAX_TENSORS } from '../../shared/limits';
import { ModelFileError, type OpenedModel, type TensorEntry } from '../formats/types';

/**
 * The tensors `request` names, in model order. Indices out of range or a pattern that is
 * not a regular expression are refused (naming the model file); a pattern that matches
 * nothing selects nothing.
 */
export function requestedTensors(model: OpenedModel, request: CompressRequest): TensorEntry[] {
  if (request.tensors.length > MAX_TENSORS) {
    throw new RangeError(`a request may name at most ${MAX_TENSORS} tensors`);
  }
  let selected: TensorEntry[];
  if (request.tensors.length > 0) {
    const wanted = new Set<number>();
    for (const index of request.tensors) {
      if (!Number.isInteger(index) || index < 0 || index >= model.tensors.length) {
        throw new ModelFileError(
          model.path,
          `no tensor with index ${index} (the model has ${model.tensors.length})`,
        );
      }
      wanted.add(index);
    }
    selected = model.tensors.filter((entry) => wanted.has(entry.info.index));
  } else {
    selected = [...model.tensors];
  }
  if (request.tensorPattern !== undefined) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(request.tensorPattern);
    } catch (error) {
      throw new RangeError(
        `the layer pattern ${JSON.stringify(request.tensorPattern)} is not a regular expression (${(error as Error).message})`,
      );
    }
    selected = selected.filter((entry) => pattern.test(entry.info.name));
  }
  return selected;
}

/**
 * Compression with a different method per tensor (a plan's recipe): every named tensor
 * gets its own options, all of them written into one new model through the same
 * per-weight code as a single-method compression (the method modules, compress/methods/).
 */
import type { CompressionOptions, CompressionReport, MethodShare } from '../../shared/compress';
import { describeOptions } from '../../shared/compressText';
import { MAX_TENSORS } from '../../shared/limits';
import { compressionOf, openModelFile } from '../formats/registry';
import { ModelFileError, type OpenedModel } from '../formats/types';
import type { CompressContext } from './context';
import type { TensorChoice } from './output';

/** One tensor (by name) and the options it is compressed with. */
export interface TensorStep {
  readonly tensor: string;
  readonly options: CompressionOptions;
}

/** Default output tag of a per-tensor compression: `model.onnx` → `model.plan.onnx`. */
export const PER_TENSOR_OUTPUT_NAME = 'plan';

/**
 * The distinct settings of the steps, the most bytes first: the report's `methods`. The
 * first is the report's `method` and `options`, which name one method.
 */
function methodShares(model: OpenedModel, steps: readonly TensorStep[]): MethodShare[] {
  const shares = new Map<string, MethodShare>();
  const sizes = new Map(model.tensors.map((entry) => [entry.info.name, entry.info.byteLength]));
  for (const step of steps) {
    const key = describeOptions(step.options);
    const share = shares.get(key) ?? { options: step.options, tensors: 0, bytesBefore: 0 };
    shares.set(key, {
      options: share.options,
      tensors: share.tensors + 1,
      bytesBefore: share.bytesBefore + (sizes.get(step.tensor) ?? 0),
    });
  }
  return [...shares.values()].sort((a, b) => b.bytesBefore - a.bytesBefore);
}

/** The entries of `steps` in model order; unknown or repeated tensor names are refused. */
function choicesOf(model: OpenedModel, steps: readonly TensorStep[]): TensorChoice[] {
  if (steps.length > MAX_TENSORS) {
    throw new RangeError(`a per-tensor compression may name at most ${MAX_TENSORS} tensors`);
  }
  const byName = new Map<string, CompressionOptions>();
  for (const step of steps) {
    if (byName.has(step.tensor)) {
      throw new ModelFileError(model.path, `tensor "${step.tensor}" is named twice`);
    }
    byName.set(step.tensor, step.options);
  }
  const choices: TensorChoice[] = [];
  for (const entry of model.tensors) {
    const options = byName.get(entry.info.name);
    if (!options) continue;
    choices.push({ entry, options });
    byName.delete(entry.info.name);
  }
  const missing = [...byName.keys()];
  if (missing.length > 0) {
    throw new ModelFileError(
      model.path,
      `no tensor named ${missing
        .slice(0, 3)
        .map((name) => JSON.stringify(name))
        .join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} in this model`,
    );
  }
  return choices;
}

/**
 * Compress the model at `path` with each step's options on its tensor into one new file
 * (`outPath`, or `<stem>.plan<ext>` in the output folder), validate it and report. The original is
 * never modified; a failed or cancelled job leaves no file.
 */
export async function compressPerTensor(
  path: string,
  steps: readonly TensorStep[],
  context: CompressContext = {},
  outPath?: string,
  opened?: OpenedModel,
): Promise<CompressionReport> {
  context.signal?.throwIfAborted();
  const model = opened ?? (await openModelFile(path));
  if (steps.length === 0) {
    throw new ModelFileError(model.path, 'the plan changes no tensor: nothing to compress');
  }
  const choices = choicesOf(model, steps);
  const methods = methodShares(model, steps);
  const { options } = methods[0]!;
  const output = {
    name: PER_TENSOR_OUTPUT_NAME,
    method: options.method,
    options,
    methods,
    outPath,
    folder: context.settings?.['output.folder'],
  };
  return compressionOf(model).compress(model, choices, context, output);
}

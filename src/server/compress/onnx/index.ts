/**
 * Compression of ONNX models: copy the decoded model (src/server/onnx), apply the method
 * to each selected weight (see methods.ts for what each method writes), write the new
 * model (and data file) next to the original, validate it in onnxruntime, and report.
 *
 * Which tensors a method takes by default: float32, float16 and bfloat16 tensors of two or
 * more dimensions that
 * layers read as weights (MatMul B, Gemm B, Conv/ConvTranspose W, LSTM/GRU/RNN W and R,
 * Gather data), directly or through ops that only move them (the ops of the pass-through
 * table, src/server/onnx/passThrough.ts, that compression looks through). N:M, int8 and
 * int4 also need the input axis, known for MatMul, Gemm (transB), Conv, recurrent weights
 * and Gather tables (per row);
 * low-rank takes MatMul, Gemm and Conv (group 1) weights read directly. Everything else
 * (biases, shape constants, sparse initializers) is listed as skipped with the reason.
 */
import type { onnx } from 'onnx-proto';
import type { CompressionReport, TensorCompressionResult } from '../../../shared/compress';
import { storedData } from '../../formats/decodedValues';
import { loadTensorData } from '../../formats/onnxTensors';
import { ModelFileError, type OpenedModel, type TensorData } from '../../formats/types';
import { validateOnnx } from '../../runtime/validate';
import type { CompressContext } from '../context';
import {
  reportMethods,
  withOutputFiles,
  writeReport,
  type ChoicesOutput,
  type TensorChoice,
} from '../output';
import { NameAllocator, onnxModelOf, sortGraphs, usedNames } from '../../onnx';
import { checkMethodOptions } from '../../../shared/compressMethods';
import { methodFor } from '../methods';
import { quantizedProblem } from '../methods/types';
import {
  DATA_LOCATION_EXTERNAL,
  dtypeProblem,
  opsetJudge,
  Skip,
  weightValues,
  type EditContext,
} from './methods';
import { writeOnnxModel } from './write';

/** A short summary of why nothing was compressed: the most common reasons with counts. */
function skipSummary(results: readonly TensorCompressionResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.detail, (counts.get(r.detail) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([reason, count]) => `${count} × ${reason}`)
    .join('; ');
}

export type { ChoicesOutput, TensorChoice } from '../output';

/**
 * Compress each chosen tensor with its own options (in model order) into one new model,
 * validate it and report; `compressOnnx` is the case of one options for every tensor.
 */
export async function compressOnnxChoices(
  model: OpenedModel,
  selected: readonly TensorChoice[],
  context: CompressContext,
  output: ChoicesOutput,
): Promise<CompressionReport> {
  const started = performance.now();
  const { signal, onProgress } = context;
  for (const choice of selected) checkMethodOptions(choice.options);
  // The reader's decoded model, copied to edit (the opened model's own stays as read).
  const decoded = await onnxModelOf(model, 'compressed');
  const edited = decoded.editableCopy();
  const proto = edited.proto;
  const slots = edited.slots;
  const sources = new Map<onnx.ITensorProto, TensorData>();
  for (const slot of slots) {
    if (slot.proto?.dataLocation === DATA_LOCATION_EXTERNAL)
      sources.set(slot.proto, storedData(model.tensors[slot.index]!.data));
  }
  const ctx: EditContext = {
    model: proto,
    modelPath: model.path,
    names: new NameAllocator(usedNames(proto, model.path)),
    externalize: new Set(),
    notes: [],
    raiseFailures: new Map(),
    // Judged on the model as read (decoded stays unedited), as the size predictor does.
    opsetAllows: opsetJudge(decoded.proto, model.path),
    sourceOpset: decoded.opset,
    signal,
  };
  const total = selected.length + 2;
  const results: TensorCompressionResult[] = [];
  for (const [done, { entry, options }] of selected.entries()) {
    signal?.throwIfAborted();
    const info = entry.info;
    onProgress?.(done, total, info.name);
    const slot = slots[info.index]!;
    const skip = (detail: string): void => {
      results.push({
        name: info.name,
        bytesBefore: info.byteLength,
        bytesAfter: info.byteLength,
        relativeError: 0,
        detail,
        skipped: true,
      });
    };
    if (slot.kind === 'sparse-initializer') {
      skip('sparse initializer (left as stored)');
      continue;
    }
    if (!slot.proto) {
      skip('Constant given by value_* attributes (left as is)');
      continue;
    }
    const quantized = quantizedProblem(info.encoding);
    if (quantized) {
      skip(quantized);
      continue;
    }
    const dtypeSkip = dtypeProblem(info.dtype);
    if (dtypeSkip) {
      skip(dtypeSkip);
      continue;
    }
    if (info.shape.length < 2) {
      skip(
        `${info.shape.length === 0 ? 'scalar' : '1-D'} tensor (biases and vectors are left as they are)`,
      );
      continue;
    }
    const { uses, problem } = edited.weightUses(slot.name, slot.scope);
    if (problem) {
      skip(problem);
      continue;
    }
    const values = weightValues(info.dtype, loadTensorData(entry.data), info.parameterCount);
    try {
      const outcome = await methodFor(options.method, 'onnx').apply(
        ctx,
        { slot, entry, values, uses },
        options,
      );
      results.push({ name: info.name, bytesBefore: info.byteLength, ...outcome, skipped: false });
    } catch (error) {
      if (!(error instanceof Skip)) throw error;
      skip(error.message);
    }
  }
  if (!results.some((r) => !r.skipped)) {
    throw new ModelFileError(
      model.path,
      `nothing to compress with ${output.name}: ${results.length === 0 ? 'no tensor selected' : skipSummary(results)}`,
    );
  }
  // New nodes go before their consumers, but a source out of order stays so: sort every graph.
  const reordered = sortGraphs(proto, model.path);
  if (reordered > 0) {
    ctx.notes.push(
      `nodes put in topological order (${reordered} graph${reordered === 1 ? ' was' : 's were'} out of order)`,
    );
  }
  return withOutputFiles(model.path, output, async (files) => {
    onProgress?.(selected.length, total, 'writing');
    const written = await writeOnnxModel(
      proto,
      model.path,
      files,
      sources,
      ctx.externalize,
      signal,
    );
    // A model with an external data file is validated under its final name (the data file
    // is found beside it); one without is validated at its temporary path and committed with
    // its report, so that a kill never leaves a model without a report.
    if (written.dataFile) {
      await files.commit(written.dataFile.path);
      await files.commit();
    }
    onProgress?.(selected.length + 1, total, 'validating in onnxruntime');
    const weightsChanged = results.some((r) => !r.skipped && r.relativeError > 0);
    const validation = await validateOnnx(
      model.path,
      written.dataFile ? files.path : files.temp(),
      proto,
      model.summary,
      weightsChanged,
      { settings: context.settings, signal, onOutputs: context.onValidationOutputs },
    );
    signal?.throwIfAborted();
    const report: CompressionReport = {
      source: model.path,
      output: files.path,
      reportPath: files.reportPath,
      ...reportMethods(output),
      fileBytesBefore: model.summary.totalBytes,
      fileBytesAfter: written.modelBytes + (written.dataFile?.bytes ?? 0),
      tensors: results,
      outputs: validation.outputs,
      inputs: validation.inputs,
      validation: [...ctx.notes, ...validation.validation],
      verdict: validation.verdict,
      elapsedMs: performance.now() - started,
    };
    onProgress?.(total, total, 'done');
    return writeReport(files, report, { commitModel: !written.dataFile });
  });
}

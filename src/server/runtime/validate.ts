/**
 * Validation of a written ONNX model: a structural check of the graph, a load in
 * onnxruntime-node (the configured backend, falling back to the CPU), and a run of the
 * original and the compressed model on the same sample inputs, compared output by output.
 */
import type { onnx } from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import type { OutputDeviation, ValidationVerdict } from '../../shared/compress';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../../shared/settings';
import { isDefaultDomain, subgraphsOf, type Scope } from '../onnx';
import { findSampleSet, firstLine, type SampleModel } from './sampleSet';
import { openSession } from './sessions';

/** Problems of the graph structure: names read before they exist, domains not imported. */
export function structureProblems(model: onnx.IModelProto): string[] {
  const problems: string[] = [];
  const imported = new Set(
    (model.opsetImport ?? []).map((e) => (isDefaultDomain(e.domain) ? '' : e.domain!)),
  );
  const visit = (scope: Scope, outer: ReadonlySet<string>): void => {
    const graph = scope.graph;
    const where = scope.path ? ` in graph '${scope.path}'` : '';
    const known = new Set(outer);
    for (const t of graph.initializer ?? []) known.add(t.name ?? '');
    for (const s of graph.sparseInitializer ?? []) known.add(s.values?.name ?? '');
    for (const i of graph.input ?? []) known.add(i.name ?? '');
    (graph.node ?? []).forEach((node, index) => {
      const label = node.name || `${node.opType}_${index}`;
      const domain = isDefaultDomain(node.domain) ? '' : node.domain!;
      if (!imported.has(domain))
        problems.push(
          `node '${label}'${where} uses domain '${domain}', which the model does not import`,
        );
      for (const input of node.input ?? []) {
        if (input && !known.has(input))
          problems.push(`node '${label}'${where} reads '${input}' before anything produces it`);
      }
      for (const sub of subgraphsOf(node, index, scope)) {
        visit({ graph: sub.graph, path: sub.path, depth: scope.depth + 1 }, known);
      }
      for (const output of node.output ?? []) if (output) known.add(output);
    });
    for (const output of graph.output ?? []) {
      if (!known.has(output.name ?? ''))
        problems.push(`graph output '${output.name}'${where} is never produced`);
    }
  };
  visit({ graph: model.graph!, path: '', depth: 0 }, new Set());
  return problems;
}

function asNumbers(tensor: Ort.Tensor): ArrayLike<number> {
  const data = tensor.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array)
    return Array.from(data, Number);
  if (Array.isArray(data)) return data.map(Number);
  return data as ArrayLike<number>;
}

/** Max |a − b|, ‖a − b‖/‖a‖ and cosine of two outputs (float64 sums). */
export function compareOutputs(name: string, a: Ort.Tensor, b: Ort.Tensor): OutputDeviation {
  const x = asNumbers(a);
  const y = asNumbers(b);
  if (x.length !== y.length || a.dims.join() !== b.dims.join()) {
    return { output: name, maxAbsDiff: Infinity, relativeL2: Infinity, cosine: 0 };
  }
  let maxAbsDiff = 0;
  let diff = 0;
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!;
    const q = y[i]!;
    const d = Math.abs(p - q);
    if (d > maxAbsDiff || Number.isNaN(d)) maxAbsDiff = d;
    diff += d * d;
    xx += p * p;
    yy += q * q;
    xy += p * q;
  }
  const relativeL2 = xx > 0 ? Math.sqrt(diff / xx) : diff === 0 ? 0 : Infinity;
  const cosine = xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : xx === yy ? 1 : 0;
  return { output: name, maxAbsDiff, relativeL2, cosine };
}

export interface ValidationResult {
  readonly outputs: OutputDeviation[];
  readonly inputs: string;
  readonly validation: string[];
  /** Validated only when the outputs were compared on inputs that could show a difference. */
  readonly verdict: ValidationVerdict;
}

export interface ValidationOptions {
  readonly settings?: Partial<LayerLensSettings>;
  readonly signal?: AbortSignal;
  readonly seed?: number;
  /** Given both models' outputs on each sample input when the run succeeds. */
  readonly onOutputs?: (
    reference: Ort.InferenceSession.OnnxValueMapType,
    result: Ort.InferenceSession.OnnxValueMapType,
  ) => void;
}

/** The model facts validation reads: its inputs (with their shapes) and metadata. */
export type ValidatedModel = SampleModel;

/** Worst and mean of one output's comparisons over the samples. */
export function summarizeDeviations(
  name: string,
  perSample: readonly OutputDeviation[],
): OutputDeviation {
  const worst = {
    maxAbsDiff: Math.max(...perSample.map((d) => d.maxAbsDiff)),
    relativeL2: Math.max(...perSample.map((d) => d.relativeL2)),
    cosine: Math.min(...perSample.map((d) => d.cosine)),
  };
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    output: name,
    ...worst,
    samples: perSample.length,
    meanRelativeL2: mean(perSample.map((d) => d.relativeL2)),
    meanCosine: mean(perSample.map((d) => d.cosine)),
  };
}

/**
 * The verdict of a comparison: `problems` of the inputs (responsiveness.ts), and whether
 * the compressed weights moved the outputs at all (`weightsChanged`: some tensor's Ŵ
 * differs from W).
 */
export function verdictOf(
  outputs: readonly OutputDeviation[],
  problems: readonly string[],
  weightsChanged: boolean,
): ValidationVerdict {
  const reasons = [...problems];
  if (outputs.length === 0) reasons.unshift('the outputs were not compared');
  else if (weightsChanged && outputs.every((o) => o.maxAbsDiff === 0)) {
    reasons.push(
      'the outputs are identical to the original model’s although weights changed: the sample inputs do not reach the compressed layers',
    );
  }
  const cosines = outputs.map((o) => o.cosine).filter((c) => Number.isFinite(c));
  return {
    validated: reasons.length === 0,
    reasons,
    ...(cosines.length > 0
      ? { worstCosine: Math.min(...cosines), samples: outputs[0]!.samples ?? 1 }
      : {}),
  };
}

/**
 * Check `written` (the edited ModelProto, already saved at `compressedPath`), load it, and
 * run both models on every sample input. Throws when the compressed model is malformed,
 * fails to load, or fails on inputs the original accepts. `weightsChanged` says whether
 * any weight differs, for the verdict.
 */
export async function validateOnnx(
  originalPath: string,
  compressedPath: string,
  written: onnx.IModelProto,
  model: ValidatedModel,
  weightsChanged: boolean,
  options: ValidationOptions = {},
): Promise<ValidationResult> {
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const validation: string[] = [];
  const problems = structureProblems(written);
  if (problems.length > 0) {
    throw new Error(`the compressed model is malformed: ${problems.slice(0, 5).join('; ')}`);
  }
  validation.push('structure');
  let compressed: Ort.InferenceSession;
  try {
    const opened = await openSession(compressedPath, settings['compute.backend']);
    compressed = opened.session;
    validation.push(`onnxruntime load (${opened.provider})`, ...opened.notes);
  } catch (error) {
    throw new Error(`onnxruntime cannot load the compressed model: ${firstLine(error)}`);
  }
  let original: Ort.InferenceSession | undefined;
  try {
    options.signal?.throwIfAborted();
    original = (await openSession(originalPath, settings['compute.backend'])).session;
    const found = await findSampleSet(
      originalPath,
      model,
      settings,
      (feeds) => original!.run(feeds),
      options,
    );
    if ('skipped' in found) {
      validation.push(found.skipped);
      return {
        outputs: [],
        inputs: found.inputs,
        validation,
        verdict: { validated: false, reasons: [found.skipped] },
      };
    }
    const names = original.outputNames;
    const perOutput = new Map<string, OutputDeviation[]>(names.map((n) => [n, []]));
    for (let k = 0; k < found.feeds.length; k++) {
      options.signal?.throwIfAborted();
      let result: Ort.InferenceSession.OnnxValueMapType;
      try {
        result = await compressed.run(found.feeds[k]!);
      } catch (error) {
        throw new Error(
          `the compressed model fails on inputs the original accepts: ${firstLine(error)}`,
        );
      }
      const reference = found.references[k]!;
      options.onOutputs?.(reference, result);
      for (const name of names) {
        perOutput
          .get(name)!
          .push(compareOutputs(name, reference[name] as Ort.Tensor, result[name] as Ort.Tensor));
      }
    }
    const outputs = names.map((name) => summarizeDeviations(name, perOutput.get(name)!));
    validation.push(`run (${outputs.length} outputs compared on ${found.feeds.length} samples)`);
    return {
      outputs,
      inputs: found.description,
      validation,
      verdict: verdictOf(outputs, found.problems, weightsChanged),
    };
  } finally {
    await compressed.release();
    await original?.release();
  }
}

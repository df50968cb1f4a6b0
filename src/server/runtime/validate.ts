/**
 * Validation of a written ONNX model: a structural check of the graph, a load in
 * onnxruntime-node (the configured backend, falling back to the CPU), and a run of the
 * original and the compressed model on the same sample inputs, compared output by output.
 */
import * as path from 'node:path';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { OutputDeviation } from '../../shared/compress';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../../shared/settings';
import { isDefaultDomain, subgraphsOf, type Scope } from '../compress/onnx/graph';
import { readInputFolder } from './inputFiles';
import { generateInputs, type InputSpec, type SampleTensor } from './sampleInputs';

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

export function toOrtTensor(sample: SampleTensor): ort.Tensor {
  return new ort.Tensor(sample.dtype, sample.data, [...sample.shape]);
}

/** onnxruntime's own log level: fatal only (failures come back as errors and are reported). */
const QUIET_LOGS = 4;

/** Open a session on the configured backend, or on the CPU with a note when that fails. */
export async function createSession(
  file: string,
  backend: LayerLensSettings['compute.backend'],
  notes: string[],
): Promise<ort.InferenceSession> {
  if (backend !== 'cpu') {
    try {
      return await ort.InferenceSession.create(file, {
        executionProviders: [backend],
        logSeverityLevel: QUIET_LOGS,
      });
    } catch (error) {
      notes.push(`backend ${backend} unavailable (${firstLine(error)}); ran on cpu`);
    }
  }
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    logSeverityLevel: QUIET_LOGS,
  });
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 300);
}

function asNumbers(tensor: ort.Tensor): ArrayLike<number> {
  const data = tensor.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array)
    return Array.from(data, Number);
  if (Array.isArray(data)) return data.map(Number);
  return data as ArrayLike<number>;
}

/** Max |a − b|, ‖a − b‖/‖a‖ and cosine of two outputs (float64 sums). */
export function compareOutputs(name: string, a: ort.Tensor, b: ort.Tensor): OutputDeviation {
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
}

export interface ValidationOptions {
  readonly settings?: Partial<LayerLensSettings>;
  readonly signal?: AbortSignal;
  readonly seed?: number;
  /** Given both models' outputs on the sample inputs when the run succeeds. */
  readonly onOutputs?: (
    reference: ort.InferenceSession.OnnxValueMapType,
    result: ort.InferenceSession.OnnxValueMapType,
  ) => void;
}

/** Lengths tried for later unknown input dimensions when the model rejects the previous try. */
const UNKNOWN_LENGTH_ATTEMPTS = [1, 512];

export interface SampleFeeds {
  readonly feeds: Record<string, ort.Tensor>;
  /** The original model's outputs on `feeds`. */
  readonly reference: ort.InferenceSession.OnnxValueMapType;
  /** How the inputs were obtained, e.g. "generated (seed 0): x [1, 512]". */
  readonly description: string;
}

/**
 * The sample inputs of the `validation.*` settings for the model at `modelPath`: files
 * from `validation.inputsFolder` where there are some, generated values for the rest,
 * retrying later unknown dimensions with other lengths until `run` (the original model)
 * accepts them. `skipped` says why no inputs could be made.
 */
export async function findSampleFeeds(
  modelPath: string,
  inputs: readonly InputSpec[],
  settings: LayerLensSettings,
  run: (feeds: Record<string, ort.Tensor>) => Promise<ort.InferenceSession.OnnxValueMapType>,
  options: { readonly signal?: AbortSignal; readonly seed?: number } = {},
): Promise<SampleFeeds | { readonly skipped: string; readonly inputs: string }> {
  const folderSetting = settings['validation.inputsFolder'];
  let fromFiles = new Map<string, SampleTensor>();
  let files: string[] = [];
  if (folderSetting) {
    const folder = path.resolve(path.dirname(modelPath), folderSetting);
    ({ feeds: fromFiles, files } = await readInputFolder(folder, inputs));
  }
  const missing = inputs.filter((spec) => !fromFiles.has(spec.name));
  let lastError = '';
  for (const laterUnknown of missing.length > 0 ? UNKNOWN_LENGTH_ATTEMPTS : [1]) {
    options.signal?.throwIfAborted();
    let generated: Map<string, SampleTensor>;
    try {
      generated = generateInputs(missing, {
        dimensions: settings['validation.dimensions'],
        shapes: settings['validation.shapes'],
        values: settings['validation.inputValues'],
        seed: options.seed ?? 0,
        laterUnknown,
      });
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      return {
        skipped: `run skipped: ${error.message}; give it as a file in layerlens.validation.inputsFolder`,
        inputs: 'none',
      };
    }
    const samples = new Map([...fromFiles, ...generated]);
    const feeds = Object.fromEntries(
      [...samples].map(([name, sample]) => [name, toOrtTensor(sample)]),
    );
    let reference: ort.InferenceSession.OnnxValueMapType;
    try {
      reference = await run(feeds);
    } catch (error) {
      lastError = firstLine(error);
      continue;
    }
    const shapes = [...samples].map(([name, s]) => `${name} [${s.shape.join(', ')}]`).join(', ');
    const parts: string[] = [];
    if (files.length > 0) parts.push(`files: ${files.join(', ')}`);
    if (generated.size > 0) parts.push(`generated (seed ${options.seed ?? 0})`);
    return { feeds, reference, description: `${parts.join('; ')}: ${shapes}` };
  }
  return {
    skipped: `run skipped: the original model fails on the sample inputs (${lastError}); set layerlens.validation.shapes, dimensions or inputValues`,
    inputs: 'generated inputs rejected by the original model',
  };
}

/**
 * Check `written` (the edited ModelProto, already saved at `compressedPath`), load it, and
 * run both models. Throws when the compressed model is malformed, fails to load, or fails
 * on inputs the original accepts.
 */
export async function validateOnnx(
  originalPath: string,
  compressedPath: string,
  written: onnx.IModelProto,
  inputs: readonly InputSpec[],
  options: ValidationOptions = {},
): Promise<ValidationResult> {
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const validation: string[] = [];
  const problems = structureProblems(written);
  if (problems.length > 0) {
    throw new Error(`the compressed model is malformed: ${problems.slice(0, 5).join('; ')}`);
  }
  validation.push('structure');
  const notes: string[] = [];
  let compressed: ort.InferenceSession;
  try {
    compressed = await createSession(compressedPath, settings['compute.backend'], notes);
  } catch (error) {
    throw new Error(`onnxruntime cannot load the compressed model: ${firstLine(error)}`);
  }
  let original: ort.InferenceSession | undefined;
  try {
    validation.push(
      `onnxruntime load (${notes.length > 0 ? 'cpu' : settings['compute.backend']})`,
      ...notes,
    );
    options.signal?.throwIfAborted();
    original = await createSession(originalPath, settings['compute.backend'], []);
    const found = await findSampleFeeds(
      originalPath,
      inputs,
      settings,
      (feeds) => original!.run(feeds),
      options,
    );
    if ('skipped' in found) {
      validation.push(found.skipped);
      return { outputs: [], inputs: found.inputs, validation };
    }
    options.signal?.throwIfAborted();
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await compressed.run(found.feeds);
    } catch (error) {
      throw new Error(
        `the compressed model fails on inputs the original accepts: ${firstLine(error)}`,
      );
    }
    options.onOutputs?.(found.reference, result);
    const outputs = original.outputNames.map((name) =>
      compareOutputs(name, found.reference[name] as ort.Tensor, result[name] as ort.Tensor),
    );
    validation.push(`run (${outputs.length} outputs compared)`);
    return { outputs, inputs: found.description, validation };
  } finally {
    await compressed.release();
    await original?.release();
  }
}

/**
 * Compare two models of any format the registry reads: pair their tensors (pairing.ts),
 * compare each pair's values one pair at a time, chunk by chunk (values.ts), diff the
 * graphs where both models have one (structure.ts), and optionally run both ONNX models
 * on the validation's sample inputs (runtime/validate.ts). Shared by the CLI and the server.
 */
import type {
  DeltaSpectrum,
  DiffSide,
  ModelDiff,
  OutputsDiff,
  PairingKind,
  TensorPairDiff,
  UnpairedTensor,
  ValueDiff,
} from '../../shared/diff';
import { DTYPES } from '../../shared/dtypes';
import { formatCount } from '../../shared/format';
import { storedTypeOf, type ModelSummary } from '../../shared/model';
import type { LayerLensSettings } from '../../shared/settings';
import { loadTensorValues, tensorMatrixShape } from '../analysis/tensorMatrix';
import { checkLowRankLimits, multiplyFactors } from '../compress/lowrank';
import { openModelFile } from '../formats/registry';
import type { OpenedModel, TensorEntry } from '../formats/types';
import { onnxModelOf, type OnnxModel } from '../onnx';
import { firstLine } from '../runtime/sampleSet';
import { validateOnnx } from '../runtime/validate';
import { deltaSpectrum } from './finetune';
import { pairTensors, type TensorPair } from './pairing';
import { structureDiff } from './structure';
import {
  compareValues,
  memoryReader,
  valueReader,
  valuesProblem,
  type ValueReader,
} from './values';

export interface DiffOptions {
  /** Run both ONNX models on the sample inputs and compare their outputs. */
  readonly outputs?: boolean;
  readonly settings?: Partial<LayerLensSettings>;
  readonly signal?: AbortSignal;
  /** The spectrum of ΔW of every changed float matrix (fine-tune analysis). */
  readonly deltas?: boolean;
  /** Called after each pair is compared. */
  readonly onProgress?: (done: number, total: number) => void;
}

function side(model: OpenedModel): DiffSide {
  const s = model.summary;
  return {
    path: model.path,
    format: s.format,
    fileBytes: s.fileBytes,
    totalBytes: s.totalBytes,
    parameterCount: s.parameterCount,
    tensorCount: s.tensorCount,
    bytesByDType: s.bytesByDType,
  };
}

function unpaired(entry: TensorEntry): UnpairedTensor {
  const { info } = entry;
  return {
    index: info.index,
    name: info.name,
    shape: info.shape,
    dtype: info.dtype,
    bytes: info.byteLength,
    node: info.node,
  };
}

async function decoded(model: OpenedModel): Promise<OnnxModel | undefined> {
  return model.onnx ? onnxModelOf(model, 'compared') : undefined;
}

/** W's reconstruction from its two factors (first node's tensor, then second's). */
async function factorProduct(pair: TensorPair): Promise<Float32Array> {
  const [first, second] = pair.b as [TensorEntry, TensorEntry];
  const [left, right] = pair.firstTimesSecond ? [first, second] : [second, first];
  const l = tensorMatrixShape(left, true);
  const r = tensorMatrixShape(right, true);
  checkLowRankLimits(l.rows, r.cols);
  const values = async (entry: TensorEntry, shape: typeof l) =>
    Float32Array.from(await loadTensorValues(entry, shape));
  return multiplyFactors(await values(left, l), await values(right, r), l.rows, l.cols, r.cols);
}

/** Why the values of a pair cannot be compared, or null. */
export function pairValuesProblem(pair: TensorPair): string | null {
  const problem = [pair.a, ...pair.b].map(valuesProblem).find((p) => p !== null);
  if (problem) return problem;
  if (pair.kind === 'factors') return null;
  const b = pair.b[0]!;
  const [floatA, floatB] = [DTYPES[pair.a.info.dtype].isFloat, DTYPES[b.info.dtype].isFloat];
  if (floatA !== floatB) {
    return `${floatA ? 'A' : 'B'} holds ${floatA ? pair.a.info.dtype : b.info.dtype} values, ${floatA ? 'B' : 'A'} ${floatA ? b.info.dtype : pair.a.info.dtype} codes without a scale LayerLens applies`;
  }
  if (b.info.parameterCount !== pair.a.info.parameterCount) {
    return `A holds ${formatCount(pair.a.info.parameterCount)} values, B ${formatCount(b.info.parameterCount)}`;
  }
  return null;
}

/** Readers of both sides' values of a pair without a `pairValuesProblem` (B: its factors' product). */
export async function pairReaders(pair: TensorPair): Promise<[ValueReader, ValueReader]> {
  const b =
    pair.kind === 'factors' ? memoryReader(await factorProduct(pair)) : valueReader(pair.b[0]!);
  return [valueReader(pair.a), b];
}

async function pairValues(
  pair: TensorPair,
  signal: AbortSignal | undefined,
): Promise<{ values: ValueDiff } | { valuesSkipped: string }> {
  const problem = pairValuesProblem(pair);
  if (problem) return { valuesSkipped: problem };
  try {
    const [a, b] = await pairReaders(pair);
    return { values: await compareValues(a, b, signal) };
  } catch (error) {
    signal?.throwIfAborted();
    return { valuesSkipped: error instanceof Error ? error.message : String(error) };
  }
}

async function pairDiff(
  pair: TensorPair,
  signal: AbortSignal | undefined,
): Promise<TensorPairDiff> {
  const { a, b, companions } = pair;
  const bytesB = [...b, ...companions].reduce((sum, e) => sum + e.info.byteLength, 0);
  const compared = await pairValues(pair, signal);
  const encodingA = a.info.encoding?.scheme;
  const encodingB = b.length === 1 ? b[0]!.info.encoding?.scheme : undefined;
  const values = 'values' in compared ? compared.values : undefined;
  const changed =
    pair.kind !== 'name' ||
    b.length !== 1 ||
    b[0]!.info.shape.join() !== a.info.shape.join() ||
    storedTypeOf(b[0]!.info) !== storedTypeOf(a.info) ||
    encodingA !== encodingB ||
    bytesB !== a.info.byteLength ||
    (values !== undefined && values.identical < 1);
  return {
    indexA: a.info.index,
    name: a.info.name,
    namesB: b.map((e) => e.info.name),
    indicesB: b.map((e) => e.info.index),
    pairing: pair.kind,
    shapeA: a.info.shape,
    shapeB: b.map((e) => e.info.shape),
    // As stored, the way the overview counts bytes by type (a decoded int8 weight: int8).
    dtypeA: storedTypeOf(a.info),
    dtypeB: b.map((e) => storedTypeOf(e.info)),
    bytesA: a.info.byteLength,
    bytesB,
    companionsB: companions.map((e) => e.info.name),
    ...(encodingA ? { encodingA } : {}),
    ...(encodingB ? { encodingB } : {}),
    ...compared,
    changed,
  };
}

async function outputsDiff(
  a: OpenedModel,
  b: OpenedModel,
  onnxB: OnnxModel,
  options: DiffOptions,
): Promise<OutputsDiff> {
  const namesA = a.summary.outputs.map((o) => o.name);
  const namesB = new Set(b.summary.outputs.map((o) => o.name));
  const missing = namesA.filter((name) => !namesB.has(name));
  if (missing.length > 0) {
    return {
      outputs: [],
      inputs: '',
      notes: [`B has no output named ${missing.join(', ')}, so the outputs were not compared`],
    };
  }
  try {
    const result = await validateOnnx(a.path, b.path, onnxB.proto, a.summary, true, {
      settings: options.settings,
      signal: options.signal,
    });
    return { outputs: result.outputs, inputs: result.inputs, notes: result.validation };
  } catch (error) {
    options.signal?.throwIfAborted();
    return {
      outputs: [],
      inputs: '',
      notes: [`the outputs were not compared: ${firstLine(error)}`],
    };
  }
}

function parameters(entries: readonly TensorEntry[]): number {
  return entries.reduce((sum, e) => sum + e.info.parameterCount, 0);
}

function notesOf(
  a: ModelSummary,
  b: ModelSummary,
  pairing: ReturnType<typeof pairTensors>,
): string[] {
  const notes: string[] = [];
  if (pairing.pairs.length === 0 && (a.tensorCount > 0 || b.tensorCount > 0)) {
    notes.push(
      `no tensor of ${a.fileName} pairs with one of ${b.fileName}: they share no tensor names and no layers (different architectures?)`,
    );
  }
  if (pairing.onlyA.length > 0) {
    notes.push(
      `${formatCount(pairing.onlyA.length)} of ${formatCount(a.tensorCount)} tensors of ${a.fileName} (${formatCount(parameters(pairing.onlyA))} parameters) have no counterpart in ${b.fileName}`,
    );
  }
  if (pairing.onlyB.length > 0) {
    notes.push(
      `${formatCount(pairing.onlyB.length)} of ${formatCount(b.tensorCount)} tensors of ${b.fileName} (${formatCount(parameters(pairing.onlyB))} parameters) have no counterpart in ${a.fileName}`,
    );
  }
  return notes;
}

/** Compare the models at `pathA` (before) and `pathB` (after); the files are only read. */
export async function diffModels(
  pathA: string,
  pathB: string,
  options: DiffOptions = {},
): Promise<ModelDiff> {
  const a = await openModelFile(pathA);
  const b = await openModelFile(pathB);
  const [onnxA, onnxB] = [await decoded(a), await decoded(b)];
  const pairing = pairTensors(a, b, onnxA, onnxB);
  const pairs: TensorPairDiff[] = [];
  const deltas: DeltaSpectrum[] = [];
  for (const pair of pairing.pairs) {
    options.signal?.throwIfAborted();
    const diff = await pairDiff(pair, options.signal);
    pairs.push(diff);
    if (options.deltas && diff.values && diff.values.identical < 1) {
      const spectrum = await deltaSpectrum(pair, options.signal);
      if (typeof spectrum !== 'string') deltas.push(spectrum);
    }
    options.onProgress?.(pairs.length, pairing.pairs.length);
  }
  const pairedBy: Record<PairingKind, number> = { name: 0, node: 0, factors: 0 };
  for (const pair of pairs) pairedBy[pair.pairing]++;
  const notes = notesOf(a.summary, b.summary, pairing);
  const skipped = pairs.filter((p) => p.valuesSkipped !== undefined).length;
  if (skipped > 0) notes.push(`${formatCount(skipped)} pairs' values were not compared (see each)`);
  return {
    a: side(a),
    b: side(b),
    pairs,
    onlyA: pairing.onlyA.map(unpaired),
    onlyB: pairing.onlyB.map(unpaired),
    pairedBy,
    notes,
    ...(onnxA && onnxB ? { structure: structureDiff(onnxA, onnxB, a.summary, b.summary) } : {}),
    ...(options.deltas ? { deltas } : {}),
    ...(options.outputs ? { outputs: await outputsOf(a, b, onnxB, options) } : {}),
  };
}

function outputsOf(
  a: OpenedModel,
  b: OpenedModel,
  onnxB: OnnxModel | undefined,
  options: DiffOptions,
): Promise<OutputsDiff> {
  if (a.summary.capabilities?.run && b.summary.capabilities?.run && onnxB) {
    return outputsDiff(a, b, onnxB, options);
  }
  const notes = ['outputs are compared only when both models run in onnxruntime'];
  return Promise.resolve({ outputs: [], inputs: '', notes });
}

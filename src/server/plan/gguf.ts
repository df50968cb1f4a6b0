/**
 * A llama.cpp quantization plan for an unquantized GGUF: a ggml type per tensor meeting a
 * target in bits per weight, chosen by the knapsack solver (solve.ts) from each type's
 * data-free proxy error (compress/ggml/typeErrors.ts), with the predicted size of the GGUF
 * LayerLens writes for it (metadata and alignment counted: ggufWriter.ts) and the
 * `llama-quantize` arguments that ask llama.cpp for the same types.
 *
 * Bits per weight are counted as llama.cpp reports them: all tensor bytes × 8 over all
 * weights. By llama.cpp's convention the output matrix (and here the token embeddings,
 * which it often shares) stays at Q6_K; vectors (norms, biases) stay as they are. Those
 * rows are shown with their reason, never chosen silently.
 */
import { closeSync, openSync } from 'node:fs';
import { GGML_QUANT_TYPES, type GgmlQuantType } from '../../shared/compressMethods';
import { ggmlByteLength, ggmlType } from '../formats/gguf/ggmlTypes';
import { readGgufHeader, type GgufTensorInfo } from '../formats/gguf/header';
import { ModelFileError } from '../formats/modelFileError';
import { ggufFileBytes, retypeProblem, valuesOf } from '../compress/ggml/ggufWriter';
import {
  importanceMatrixSetting,
  importanceOf,
  readImportanceMatrix,
} from '../compress/ggml/importance';
import type { CompressContext } from '../compress/context';
import { ERROR_SAMPLE_WEIGHTS, sampleRows } from '../compress/ggml/typeErrors';
import { GgmlWorkers } from '../jobs/ggmlJob';
import { VECTOR_KEPT } from '../compress/methods/ggml';
import { describePlanTarget } from '../../shared/planTarget';
import type { Plan, PlanStep, PlanTarget } from '../../shared/plan';
import type { OpenedModel } from '../formats/types';
import { recipeModel } from './recipe';
import { solveKnapsack, type SolveItem } from './solve';

/** Tensors llama.cpp keeps at higher precision by convention, and the type they keep. */
const CONVENTION: Readonly<Record<string, { type: GgmlQuantType; reason: string }>> = {
  'output.weight': {
    type: 'Q6_K',
    reason: 'output matrix: llama.cpp keeps it at Q6_K (--output-tensor-type)',
  },
  'token_embd.weight': {
    type: 'Q6_K',
    reason: 'token embeddings: kept at Q6_K like the output (--token-embedding-type)',
  },
};

export interface GgufPlanRow {
  readonly name: string;
  readonly elements: number;
  /** The type stored now. */
  readonly from: string;
  /** The type planned (`from` when kept). */
  readonly type: string;
  readonly bytes: number;
  /** Proxy ‖W − Ŵ‖/‖W‖ of the planned type (0 when kept as stored). */
  readonly relativeError: number;
  /** Why the row was not chosen by the solver (a convention, a vector); absent when it was. */
  readonly fixed?: string;
}

export interface GgufPlan {
  readonly source: string;
  readonly targetBpw: number;
  /** All tensor bytes × 8 / all weights, as planned. */
  readonly bpw: number;
  readonly weights: number;
  readonly tensorBytes: number;
  readonly fileBytesBefore: number;
  /** The size of the GGUF LayerLens writes for this plan (writeRetypedGguf). */
  readonly predictedFileBytes: number;
  readonly rows: readonly GgufPlanRow[];
  /** Tensor name → planned type, for writeRetypedGguf. */
  readonly choices: ReadonlyMap<string, GgmlQuantType>;
  /** The `llama-quantize` arguments (after the executable) giving the same types. */
  readonly llamaQuantizeArgs: readonly string[];
  /** Whether the target is met. */
  readonly feasible: boolean;
  /** The importance matrix the errors were weighted by (and llama-quantize is given). */
  readonly imatrixPath?: string;
}

interface Candidate {
  readonly info: GgufTensorInfo;
  readonly options: readonly { type: GgmlQuantType; bytes: number; error: number }[];
}

/** A tensor name as an anchored regular expression (llama-quantize matches --tensor-type patterns as regexes). */
function exactPattern(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

/** The base type llama-quantize is given: the planned type holding the most weights. */
function baseType(rows: readonly GgufPlanRow[]): string {
  const weights = new Map<string, number>();
  for (const row of rows) {
    if (row.fixed || !(GGML_QUANT_TYPES as readonly string[]).includes(row.type)) continue;
    weights.set(row.type, (weights.get(row.type) ?? 0) + row.elements);
  }
  return [...weights].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'Q8_0';
}

function llamaQuantizeArgs(
  source: string,
  rows: readonly GgufPlanRow[],
  imatrixPath: string | undefined,
): string[] {
  const base = baseType(rows);
  const args: string[] = imatrixPath === undefined ? [] : ['--imatrix', imatrixPath];
  const fixedType = (name: string) => rows.find((row) => row.name === name && row.fixed)?.type;
  const output = fixedType('output.weight');
  if (output) args.push('--output-tensor-type', output.toLowerCase());
  const embeddings = fixedType('token_embd.weight');
  if (embeddings) args.push('--token-embedding-type', embeddings.toLowerCase());
  for (const row of rows) {
    if (row.fixed || row.type === base) continue;
    args.push('--tensor-type', `${exactPattern(row.name)}=${row.type.toLowerCase()}`);
  }
  const written = source.replace(/\.gguf$/i, '') + `.${base}.gguf`;
  return [...args, source, written, base];
}

/** The bits per weight a size, ratio or bpw target allows the tensors of `model`. */
function targetBpw(model: OpenedModel, target: PlanTarget): number {
  const weights = model.tensors.reduce((sum, entry) => sum + entry.info.parameterCount, 0);
  const tensorBytes = model.tensors.reduce((sum, entry) => sum + entry.info.byteLength, 0);
  const headerBytes = model.summary.fileBytes - tensorBytes;
  switch (target.kind) {
    case 'bpw':
      return target.value;
    case 'sizeMB':
      return ((target.value * 1e6 - headerBytes) * 8) / weights;
    case 'ratio':
      return ((model.summary.fileBytes / target.value - headerBytes) * 8) / weights;
    case 'deviation':
      throw new RangeError(
        'a GGUF plan takes bits per weight ("4.5 bpw"), a size or a ratio; LayerLens does not run GGUF models to measure a deviation',
      );
  }
}

/**
 * The GGUF plan of `target` as the editor's plan panel shows it: one step per tensor with
 * its planned type (conventions and vectors labelled as such), the predicted file size,
 * the recipe (ggml options per changed tensor) and the llama-quantize command.
 */
export async function ggufPlanView(
  model: OpenedModel,
  target: PlanTarget,
  context: CompressContext = {},
): Promise<Plan> {
  const bpw = targetBpw(model, target);
  if (!(bpw > 0)) {
    throw new RangeError(`${describePlanTarget(target)} leaves no room for the tensors`);
  }
  const imatrixPath = importanceMatrixSetting(model.path, context.settings);
  const plan = await planGguf(model.path, bpw, context, imatrixPath);
  const stored = new Map(model.tensors.map((entry) => [entry.info.name, entry.info.byteLength]));
  const steps: PlanStep[] = plan.rows.map((row) => ({
    tensor: row.name,
    ...(row.type !== row.from
      ? { options: { method: 'ggml', ggmlType: row.type, ...(imatrixPath ? { imatrixPath } : {}) } }
      : {}),
    label: row.fixed ? `${row.type} (${row.fixed})` : row.type,
    bytesBefore: stored.get(row.name) ?? row.bytes,
    predictedBytes: row.bytes,
    predictedDeviation: row.relativeError,
  }));
  return {
    source: model.path,
    target,
    metric: 'relativeL2',
    steps,
    fileBytesBefore: plan.fileBytesBefore,
    predictedFileBytes: plan.predictedFileBytes,
    feasible: plan.feasible,
    recipe: {
      format: 'layerlens-recipe',
      version: 1,
      model: await recipeModel(model.path),
      // Applying checks a file size: the bytes the bits per weight allow, header counted.
      target:
        target.kind === 'bpw'
          ? {
              kind: 'sizeMB',
              value:
                (Math.ceil((bpw * plan.weights) / 8) + plan.predictedFileBytes - plan.tensorBytes) /
                1e6,
            }
          : target,
      metric: 'relativeL2',
      steps: steps.flatMap((step) =>
        step.options ? [{ tensor: step.tensor, options: step.options }] : [],
      ),
    },
    warnings: [],
    limits: plan.feasible
      ? []
      : [
          `${plan.bpw.toFixed(3)} bits per weight is the least the llama.cpp types reach (every matrix at Q2_K where its rows allow, conventions and vectors kept)`,
        ],
    llamaQuantize: llamaQuantizeCommand(plan),
  };
}

/** A word as a POSIX shell reads it back (quoted unless plain). */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The plan's `llama-quantize …` command line, quoted for a POSIX shell. */
export function llamaQuantizeCommand(plan: GgufPlan): string {
  return ['llama-quantize', ...plan.llamaQuantizeArgs].map(shellWord).join(' ');
}

/** How planGguf reports and stops. */
export interface GgufPlanContext {
  readonly signal?: AbortSignal;
  /** `done` of `total` tensors measured (or kept), the last one's name. */
  readonly onProgress?: (done: number, total: number, message: string) => void;
}

/**
 * Plan the ggml type of every tensor of the GGUF at `path` for `targetBpw` bits per weight;
 * with `imatrixPath` (llama-imatrix's matrix) the errors are weighted by it. The errors of
 * each tensor are measured in the ggml workers, as many tensors at a time as there are
 * workers; the tensors are read here, one at a time, and only their sampled rows move.
 */
export async function planGguf(
  path: string,
  targetBpw: number,
  context: GgufPlanContext = {},
  imatrixPath?: string,
): Promise<GgufPlan> {
  if (!(Number.isFinite(targetBpw) && targetBpw > 0)) {
    throw new RangeError(`the bits-per-weight target must be a positive number, got ${targetBpw}`);
  }
  const { signal, onProgress } = context;
  const header = readGgufHeader(path);
  const matrix = imatrixPath === undefined ? undefined : readImportanceMatrix(imatrixPath);
  const fixedRows = new Map<string, GgufPlanRow>();
  // By tensor index, so that the solver sees them in the file's order whatever finishes first.
  const measured: (Candidate | undefined)[] = [];
  const total = header.tensors.length;
  let done = 0;
  const report = (name: string): void => onProgress?.(++done, total, name);
  const workers = new GgmlWorkers();
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const fd = openSync(path, 'r');
  try {
    for (const [index, info] of header.tensors.entries()) {
      signal?.throwIfAborted();
      const keep = (fixed: string): void => {
        fixedRows.set(info.name, {
          name: info.name,
          elements: info.elements,
          from: info.type.name,
          type: info.type.name,
          bytes: info.byteLength,
          relativeError: 0,
          fixed,
        });
        report(info.name);
      };
      if (info.ne.length < 2) {
        keep(VECTOR_KEPT);
        continue;
      }
      const unfit = retypeProblem(info, ggmlType('Q8_0'));
      if (unfit) {
        keep(unfit);
        continue;
      }
      const rowLength = info.ne[0]!;
      const importance = importanceOf(matrix, path, info.name, rowLength);
      const sample = sampleRows(valuesOf(fd, path, info), rowLength, ERROR_SAMPLE_WEIGHTS);
      const task: Promise<void> = workers
        .typeErrors(sample, rowLength, GGML_QUANT_TYPES, importance, signal)
        .then((errors) => {
          const convention = CONVENTION[info.name];
          if (convention) {
            const type = errors.has(convention.type) ? convention.type : 'Q8_0';
            fixedRows.set(info.name, {
              name: info.name,
              elements: info.elements,
              from: info.type.name,
              type,
              bytes: ggmlByteLength(ggmlType(type), info.elements),
              relativeError: errors.get(type)!.relativeError,
              fixed: convention.reason,
            });
          } else {
            measured[index] = {
              info,
              options: [...errors].map(([type, point]) => ({
                type,
                bytes: ggmlByteLength(ggmlType(type), info.elements),
                error: point.relativeError,
              })),
            };
          }
          report(info.name);
        })
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => running.delete(task));
      running.add(task);
      if (running.size >= workers.size) await Promise.race(running);
      if (failure) throw failure.error;
    }
    await Promise.all(running);
    if (failure) throw failure.error;
  } finally {
    closeSync(fd);
    workers.dispose();
  }
  const candidates = measured.filter((candidate) => candidate !== undefined);
  if (candidates.length === 0) {
    throw new ModelFileError(path, 'no F32, F16 or BF16 matrix of this GGUF can be re-typed');
  }
  const weights = header.tensors.reduce((sum, info) => sum + info.elements, 0);
  const fixedBytes = [...fixedRows.values()].reduce((sum, row) => sum + row.bytes, 0);
  const maxBytes = Math.floor((targetBpw * weights) / 8) - fixedBytes;
  const items: SolveItem[] = candidates.map((candidate) => ({
    options: [
      // Keeping the stored type is the solver's option 0.
      { bytes: candidate.info.byteLength, deviation: 0 },
      ...candidate.options.map((option) => ({ bytes: option.bytes, deviation: option.error })),
    ],
  }));
  const solution = solveKnapsack(items, { kind: 'bytes', maxBytes });
  const chosen = new Map<string, GgufPlanRow>();
  candidates.forEach((candidate, i) => {
    const pick = solution.picks[i] ?? 0;
    const option = pick === 0 ? undefined : candidate.options[pick - 1]!;
    chosen.set(candidate.info.name, {
      name: candidate.info.name,
      elements: candidate.info.elements,
      from: candidate.info.type.name,
      type: option?.type ?? candidate.info.type.name,
      bytes: option?.bytes ?? candidate.info.byteLength,
      relativeError: option?.error ?? 0,
    });
  });
  const rows = header.tensors.map((info) => chosen.get(info.name) ?? fixedRows.get(info.name)!);
  const choices = new Map<string, GgmlQuantType>();
  for (const row of rows) {
    if (row.type !== row.from) choices.set(row.name, row.type as GgmlQuantType);
  }
  const tensorBytes = rows.reduce((sum, row) => sum + row.bytes, 0);
  const bpw = (tensorBytes * 8) / weights;
  return {
    source: path,
    targetBpw,
    bpw,
    weights,
    tensorBytes,
    fileBytesBefore: header.fileBytes,
    predictedFileBytes: ggufFileBytes(header, choices),
    rows,
    choices,
    llamaQuantizeArgs: llamaQuantizeArgs(path, rows, imatrixPath),
    feasible: bpw <= targetBpw,
    ...(imatrixPath === undefined ? {} : { imatrixPath }),
  };
}

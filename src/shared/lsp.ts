/**
 * The custom LSP requests between the extension and the LayerLens server: one constant
 * per method, with its parameter and result types. Both sides go through the typed
 * helpers (server/lspHandlers.ts, extension/client.ts); no method string is typed elsewhere.
 *
 * Every request names the model by URI and is answered without session state, so a
 * restarted server answers the same request the same way (it reopens the file).
 */
import type { CompressionReport, CompressRequest } from './compress';
import type {
  CompressibilityResult,
  DeltaStatsResult,
  PackParams,
  PackSummary,
  UnpackParams,
  UnpackSummary,
} from './lossless';
import type {
  ModelSummary,
  TensorCodes,
  TensorPage,
  TensorStatsResult,
  ValueInfo,
  WeightTensors,
} from './model';
import type { Spectrum, SpectrumOptions } from './spectrum';
import type { BlockScaleGrid, HeatmapInfo, HeatmapLayer, HeatmapTile } from './heatmap';
import type { SensitivityRequest, SensitivityResult } from './sensitivity';
import type {
  GraphGroupContents,
  GraphMatches,
  GraphOverview,
  GraphQuery,
  ModuleTree,
} from './graph';
import type { GraphStructureDiff, LoraExtraction, ModelDiff, PairDetail } from './diff';
import type { ApplyPlanResult, CompressionRecipe, Plan, PlanRequest } from './plan';

export interface LspMethod<P, R> {
  readonly method: string;
  /**
   * The model editor's webview may send this request, without the parameters the
   * extension supplies (see `WebviewParams`).
   */
  readonly webview?: boolean;
  /** The extension adds the sample inputs chosen for the model (`inputsFolder`). */
  readonly sampleInputs?: boolean;
  /** Phantom field: carries the types, never set. */
  readonly _types?: { params: P; result: R };
}

interface MethodOptions {
  readonly sampleInputs?: boolean;
}

function lspMethod<P, R>(method: `layerlens/${string}`, options?: MethodOptions): LspMethod<P, R> {
  return { method, ...options };
}

/** A method the webview may ask for too (see `WebviewRequests` in protocol.ts). */
function webviewLspMethod<P, R>(
  method: `layerlens/${string}`,
  options?: MethodOptions,
): LspMethod<P, R> & { readonly webview: true } {
  return { method, ...options, webview: true };
}

export interface ModelParams {
  /** `file:` URI of the model. */
  readonly uri: string;
}

export interface TensorsParams extends ModelParams {
  readonly offset: number;
  readonly limit: number;
}

export interface TensorStatsParams extends ModelParams {
  /** Indices into the model's tensor list. */
  readonly indices: readonly number[];
}

export interface SpectrumParams extends ModelParams {
  readonly index: number;
  readonly options?: SpectrumOptions;
}

export interface TensorCodesParams extends ModelParams {
  readonly index: number;
}

export interface HeatmapInfoParams extends ModelParams {
  readonly index: number;
  readonly layer: HeatmapLayer;
}

export interface HeatmapTileParams extends HeatmapInfoParams {
  readonly level: number;
  readonly tileX: number;
  readonly tileY: number;
}

/**
 * The sample inputs chosen for this model in the editor (LayerLens: Choose Sample
 * Inputs…, remembered per model file). When set, the server validates and measures on
 * this folder instead of the setting `validation.inputsFolder`, for this request only.
 */
export interface SampleInputsParams {
  /** Absolute path of the folder (arrays named after inputs, images, WAV audio). */
  readonly inputsFolder?: string;
}

/** Where a model's sample inputs come from, as the validation would read them now. */
export interface SampleInputsInfo {
  /** The folder read for sample inputs; null when every input is generated. */
  readonly folder: string | null;
  /** Whether the folder was chosen for this model (Choose Sample Inputs…), not the setting's. */
  readonly chosen: boolean;
  /** The model's inputs the samples feed. */
  readonly inputs: readonly ValueInfo[];
  /** Samples per check (`validation.samples`, within its limit). */
  readonly samples: number;
}

export interface CompressParams extends ModelParams, SampleInputsParams {
  readonly request: CompressRequest;
}

export interface CompressibilityParams extends ModelParams {
  /** Indices into the model's tensor list. */
  readonly indices: readonly number[];
}

export interface SensitivityParams extends ModelParams, SampleInputsParams {
  readonly request: SensitivityRequest;
}

export interface PlanParams extends ModelParams, SampleInputsParams {
  readonly request: PlanRequest;
}

export interface ApplyPlanParams extends ModelParams, SampleInputsParams {
  /** A recipe from `plan` (possibly edited by the user). */
  readonly recipe: CompressionRecipe;
  /** Refine and re-apply when the whole-model deviation misses the recipe's target. */
  readonly refine: boolean;
  /** Output path; default next to the original, `<name>.plan.<ext>`, never overwriting. */
  readonly outPath?: string;
}

/** Compare the model `uri` (A, before) with `other` (B, after): layerlens diff. */
export interface DiffParams extends ModelParams, SampleInputsParams {
  /** `file:` URI of model B. */
  readonly other: string;
  /** Also run both ONNX models on A's sample inputs and compare the outputs. */
  readonly outputs?: boolean;
  /** Also the spectrum of ΔW of every changed matrix (fine-tune analysis). */
  readonly deltas?: boolean;
}

/** One pair of a diff (`uri` A, `other` B): the pair A's tensor `indexA` belongs to. */
export interface PairDetailParams extends ModelParams {
  /** `file:` URI of model B. */
  readonly other: string;
  /** Index of the pair's tensor in model A's list. */
  readonly indexA: number;
}

/** Extract a fine-tune's update (`other`) from its base (`uri`) as a PEFT LoRA adapter. */
export interface ExtractLoraParams extends ModelParams {
  /** `file:` URI of the fine-tuned model. */
  readonly other: string;
  /** `file:` URI of the folder the adapter is written to (created; files never overwritten). */
  readonly outUri: string;
  /** One rank for every matrix; or `energy` (0…1] per matrix, capped at `maxRank`. */
  readonly rank?: number;
  readonly energy?: number;
  readonly maxRank?: number;
}

/** The client's work-done progress token (LSP `WorkDoneProgressParams`). */
export interface WorkDoneParams {
  readonly workDoneToken?: string | number;
}

export interface ServerInfo {
  readonly version: string;
  readonly workerCount: number;
  readonly nodeVersion: string;
}

export const LspMethods = {
  /** Read the model's structure (headers only) and summarise it. */
  openModel: webviewLspMethod<ModelParams, ModelSummary>('layerlens/openModel'),
  /** One page of the model's tensor list. */
  tensors: webviewLspMethod<TensorsParams, TensorPage>('layerlens/tensors'),
  /** The tensors compression methods act on: the table's Weights view. */
  weightTensors: webviewLspMethod<ModelParams, WeightTensors>('layerlens/weightTensors'),
  /** Statistics of some tensors, computed in workers (cached). */
  tensorStats: webviewLspMethod<TensorStatsParams, TensorStatsResult[]>('layerlens/tensorStats'),
  /** Forget a model (the editor closed); its cached results are dropped. */
  closeModel: lspMethod<ModelParams, void>('layerlens/closeModel'),
  serverInfo: lspMethod<void, ServerInfo>('layerlens/serverInfo'),
  /** Singular values and spectral metrics of one weight matrix (cached per options). */
  spectrum: webviewLspMethod<SpectrumParams, Spectrum>('layerlens/spectrum'),
  /** The integer codes of a quantized tensor (its encoding's raw grid): levels used, histogram. */
  tensorCodes: webviewLspMethod<TensorCodesParams, TensorCodes>('layerlens/tensorCodes'),
  /** The quantization grid of a GGUF block-quantized tensor: one scale per block. */
  blockScales: webviewLspMethod<TensorCodesParams, BlockScaleGrid>('layerlens/blockScales'),
  /** Write a compressed copy of the model next to it, validate it, and report. */
  compress: lspMethod<CompressParams, CompressionReport>('layerlens/compress', {
    sampleInputs: true,
  }),
  /**
   * Size, zoom levels and value range of one tensor's heatmap layer, and the tensor's
   * structured sparsity; builds (and caches) the pooled pyramid the tiles come from.
   */
  heatmapInfo: webviewLspMethod<HeatmapInfoParams, HeatmapInfo>('layerlens/heatmapInfo'),
  /** One tile of a heatmap layer at a zoom level. */
  heatmapTile: webviewLspMethod<HeatmapTileParams, HeatmapTile>('layerlens/heatmapTile'),
  /** Lossless compressibility of some tensors: exponent entropy and packed ratio (cached). */
  compressibility: webviewLspMethod<CompressibilityParams, CompressibilityResult[]>(
    'layerlens/compressibility',
  ),
  /** Pack a model file into a `.llz` container (work-done progress, cancellable). */
  pack: lspMethod<PackParams & WorkDoneParams, PackSummary>('layerlens/pack'),
  /** Restore the original file of a `.llz` container (work-done progress, cancellable). */
  unpack: lspMethod<UnpackParams & WorkDoneParams, UnpackSummary>('layerlens/unpack'),
  /** For a fine-tune delta container: each tensor's difference from its base model. */
  deltaStats: webviewLspMethod<CompressibilityParams, DeltaStatsResult[]>('layerlens/deltaStats'),
  /**
   * Per-layer sensitivity: the data-free proxy, and (ONNX) the measured output deviation of
   * compressing each layer alone at each level (cached; work-done progress, cancellable).
   */
  sensitivity: webviewLspMethod<SensitivityParams & WorkDoneParams, SensitivityResult>(
    'layerlens/sensitivity',
    { sampleInputs: true },
  ),
  /** Where the model's sample inputs come from, and the inputs they feed. */
  sampleInputs: webviewLspMethod<ModelParams & SampleInputsParams, SampleInputsInfo>(
    'layerlens/sampleInputs',
    { sampleInputs: true },
  ),
  /**
   * The operator graph of a model whose format stores one, as the graph view opens it: the
   * top level (name-scope groups and nodes, with their node counts and stored tensors).
   */
  graph: webviewLspMethod<ModelParams, GraphOverview>('layerlens/graph'),
  /** The items of one group of the graph and the edges between them (the group was opened). */
  graphGroup: webviewLspMethod<ModelParams & { readonly group: number }, GraphGroupContents>(
    'layerlens/graphGroup',
  ),
  /** The graph's nodes a search finds, with the groups around each (closed groups included). */
  graphFind: webviewLspMethod<ModelParams & { readonly query: GraphQuery }, GraphMatches>(
    'layerlens/graphFind',
  ),
  /**
   * The structure diff of the model (B) against `other` (A), laid onto B's graph; without
   * `other`, against the model B was last compared with (null when there is none).
   */
  graphStructureDiff: webviewLspMethod<
    ModelParams & { readonly other?: string },
    GraphStructureDiff | null
  >('layerlens/graphStructureDiff'),
  /** Every model's tensors grouped by the dotted prefixes of their names, with bytes and parameters. */
  moduleTree: webviewLspMethod<ModelParams, ModuleTree>('layerlens/moduleTree'),
  /** Propose a per-tensor compression plan meeting a size, ratio or deviation target. */
  plan: lspMethod<PlanParams & WorkDoneParams, Plan>('layerlens/plan', { sampleInputs: true }),
  /** Apply a recipe, validate the whole model, refine when the target is missed. */
  applyPlan: lspMethod<ApplyPlanParams & WorkDoneParams, ApplyPlanResult>('layerlens/applyPlan', {
    sampleInputs: true,
  }),
  /** Compare two models: paired tensors, structure, outputs (work-done progress, cancellable). */
  diff: lspMethod<DiffParams & WorkDoneParams, ModelDiff>('layerlens/diff', { sampleInputs: true }),
  /**
   * A diff's selected pair: both spectra, the heatmap of ΔW and its fine-tune analysis
   * (work-done progress, cancellable).
   */
  pairDetail: lspMethod<PairDetailParams & WorkDoneParams, PairDetail>('layerlens/pairDetail'),
  /** Write a fine-tune's update as a PEFT LoRA adapter (work-done progress, cancellable). */
  extractLora: lspMethod<ExtractLoraParams & WorkDoneParams, LoraExtraction>(
    'layerlens/extractLora',
  ),
} as const;

export type LspMethodName = keyof typeof LspMethods;

/** The parameters and the result of a method of `LspMethods`. */
export type LspParams<M> = M extends LspMethod<infer P, unknown> ? P : never;
export type LspResult<M> = M extends LspMethod<unknown, infer R> ? R : never;

/** The methods the webview may ask for: those declared with `webview: true`. */
export type WebviewMethodName = {
  [K in LspMethodName]: (typeof LspMethods)[K] extends { readonly webview: true } ? K : never;
}[LspMethodName];

/** What the extension fills in for the webview: the editor's model, its sample inputs, progress. */
type HostSuppliedParams = keyof ModelParams | keyof SampleInputsParams | keyof WorkDoneParams;

/** A webview request's parameters: the method's, less what the extension supplies. */
export type WebviewParams<K extends WebviewMethodName> = Omit<
  LspParams<(typeof LspMethods)[K]>,
  HostSuppliedParams
>;

/** The method of a webview request by name; undefined when the webview may not send it. */
export function webviewMethodNamed(name: string): LspMethod<unknown, unknown> | undefined {
  if (!Object.hasOwn(LspMethods, name)) return undefined;
  const method: LspMethod<unknown, unknown> = LspMethods[name as LspMethodName];
  return method.webview ? method : undefined;
}

/** JSON-RPC error code the server uses for a file it cannot read (data: ModelErrorData). */
export const MODEL_ERROR_CODE = -32001;

export interface ModelErrorData {
  /** The file at fault (may be an external-data file or shard, not the model itself). */
  readonly file: string;
  readonly problem: string;
}

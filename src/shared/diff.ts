/**
 * What a comparison of two models (`layerlens diff`, the diff editor) reports: the two
 * summaries, the tensors paired between them with how they differ, what could not be
 * paired, the structure diff of graph formats, and optionally the outputs on sample inputs.
 */
import type { OutputDeviation } from './compress';
import type { DType } from './dtypes';
import type { HeatmapInfo, HeatmapTile } from './heatmap';
import type { ModelFormat, StoredType } from './model';
import type { Spectrum } from './spectrum';

/** One side's totals. */
export interface DiffSide {
  readonly path: string;
  readonly format: ModelFormat;
  readonly fileBytes: number;
  readonly totalBytes: number;
  readonly parameterCount: number;
  readonly tensorCount: number;
  readonly bytesByDType: Readonly<Partial<Record<DType, number>>>;
}

/**
 * How a pair was found: the same name; the same consuming node under another name (a
 * weight renamed by compression, `fc1.weight` → `fc1.weight_quantized`); or a weight split
 * into two factors whose nodes compute what its node did (low rank: `A·B` ≈ W).
 */
export type PairingKind = 'name' | 'node' | 'factors';

/** How the values of the two sides differ (absent when they cannot be compared). */
export interface ValueDiff {
  /** ‖B − A‖_F / ‖A‖_F (Infinity when A is zero and B is not). */
  readonly relativeError: number;
  readonly cosine: number;
  readonly maxAbsDiff: number;
  /** Share of positions where both values are equal (bit for bit as numbers). */
  readonly identical: number;
  readonly normA: number;
  readonly normB: number;
}

export interface TensorPairDiff {
  /** Index of the tensor in model A's list. */
  readonly indexA: number;
  readonly name: string;
  /** Name(s) on side B: one, or the two factors (first node's, then second node's). */
  readonly namesB: readonly string[];
  readonly indicesB: readonly number[];
  readonly pairing: PairingKind;
  readonly shapeA: readonly number[];
  readonly shapeB: readonly (readonly number[])[];
  /** The types the tensors are stored as (storedTypeOf: a quantized weight's codes or blocks). */
  readonly dtypeA: StoredType;
  readonly dtypeB: readonly StoredType[];
  /** Stored bytes (B: the tensors paired plus companions such as scales). */
  readonly bytesA: number;
  readonly bytesB: number;
  /** Tensors of B that only serve the paired one (a scale, a zero point). */
  readonly companionsB: readonly string[];
  /** The quantization of the stored values on each side, where there is one. */
  readonly encodingA?: string;
  readonly encodingB?: string;
  readonly values?: ValueDiff;
  /** Why the values were not compared. */
  readonly valuesSkipped?: string;
  /** Whether anything differs: shape, dtype, encoding, bytes or a value. */
  readonly changed: boolean;
}

/** A tensor only one side has. */
export interface UnpairedTensor {
  readonly index: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly bytes: number;
  /** The layer the format names for it (ONNX: its consuming node). */
  readonly node: string;
}

export type StructureChangeKind = 'added' | 'removed' | 'changed' | 'split';

/** One node of a graph as the structure diff shows it. */
export interface DiffNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** The (sub)graph path, `""` for the main graph. */
  readonly graph: string;
}

export interface StructureChange {
  readonly kind: StructureChangeKind;
  /** A's node (removed, changed, split). */
  readonly before?: DiffNode;
  /** B's node(s) (added, changed: one; split: the nodes that now compute it, in order). */
  readonly after?: readonly DiffNode[];
  /** For `changed`: what differs (`op`, `inputs`, `attributes`, `name`). */
  readonly differences?: readonly string[];
}

export interface StructureDiff {
  readonly nodesA: number;
  readonly nodesB: number;
  /** Operator count differences (B − A), zeros left out. */
  readonly opCountChanges: Readonly<Record<string, number>>;
  readonly counts: Readonly<Record<StructureChangeKind, number>>;
  /** The changes, at most MAX_LISTED_STRUCTURE_CHANGES of them. */
  readonly changes: readonly StructureChange[];
  /** Changes counted but not listed. */
  readonly unlisted: number;
}

export interface OutputsDiff {
  readonly outputs: readonly OutputDeviation[];
  /** The sample inputs, as validation describes them. */
  readonly inputs: string;
  /** Notes on the run (onnxruntime load, backend, samples); or why it did not run. */
  readonly notes: readonly string[];
}

export interface ModelDiff {
  readonly a: DiffSide;
  readonly b: DiffSide;
  readonly pairs: readonly TensorPairDiff[];
  readonly onlyA: readonly UnpairedTensor[];
  readonly onlyB: readonly UnpairedTensor[];
  /** How many pairs were found each way. */
  readonly pairedBy: Readonly<Record<PairingKind, number>>;
  /** One sentence per problem that keeps the diff partial (nothing paired, values not compared…). */
  readonly notes: readonly string[];
  /** Graph formats on both sides. */
  readonly structure?: StructureDiff;
  /** `--outputs`: both models run on the validation's sample inputs. */
  readonly outputs?: OutputsDiff;
  /** Fine-tune analysis (`--delta`): the spectrum of ΔW of every changed float matrix. */
  readonly deltas?: readonly DeltaSpectrum[];
}

/** Ranks at which a diff reports the energy of ΔW a rank-r approximation keeps. */
export const DELTA_ENERGY_RANKS = [4, 8, 16, 32, 64] as const;

/** The spectrum of one changed matrix's update ΔW = B − A (fine-tune analysis). */
export interface DeltaSpectrum {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  /** ‖ΔW‖_F / ‖A‖_F. */
  readonly relativeChange: number;
  /** The largest singular values of ΔW, descending (at most MAX_DELTA_SPECTRUM_VALUES). */
  readonly singularValues: readonly number[];
  /** ‖ΔW‖_F² / σ₁². */
  readonly stableRank: number;
  /** exp of the entropy of σ_i / Σσ. */
  readonly effectiveRank: number;
  /** Share of ‖ΔW‖_F² the best rank-r approximation keeps, for r in DELTA_ENERGY_RANKS (≤ min side). */
  readonly energyAt: readonly { readonly rank: number; readonly energy: number }[];
}

/** One matrix of an extracted LoRA adapter and how well base + B·A reproduces the fine-tune. */
export interface LoraModule {
  /** The tensor's name in the models. */
  readonly name: string;
  /** The module name in the adapter (`base_model.model.<module>.lora_A.weight`). */
  readonly module: string;
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
  /** Share of ‖ΔW‖_F² the rank keeps. */
  readonly energy: number;
  /** ‖ΔW − B·A‖_F / ‖ΔW‖_F: how much of the update the adapter misses. */
  readonly updateError: number;
  /** ‖(base + B·A) − tuned‖_F / ‖tuned‖_F. */
  readonly tunedError: number;
}

export interface LoraExtraction {
  readonly base: string;
  readonly tuned: string;
  readonly adapterPath: string;
  readonly configPath: string;
  /**
   * The adapter's `r`: the rank asked for (matrices smaller than it get their full rank),
   * or with an energy target the rank most matrices got (the others are in rank_pattern).
   */
  readonly rank: number;
  /** The energy target each matrix's rank was chosen for, and its cap. */
  readonly energy?: number;
  readonly maxRank?: number;
  readonly modules: readonly LoraModule[];
  /** Changed tensors the adapter does not hold, with why. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * What the Compare panel shows for a selected pair beyond its histograms
 * (layerlens/pairDetail): both spectra, the heatmap of |ΔW| and the fine-tune analysis of
 * ΔW = B − A. B's values are its decoded weights, or the product of its two factors.
 */
export interface PairDetail {
  readonly indexA: number;
  /** The singular values of A's and of B's matrix (null, with `spectraSkipped`, when there are none). */
  readonly spectrumA: Spectrum | null;
  readonly spectrumB: Spectrum | null;
  readonly spectraSkipped?: string;
  /**
   * |ΔW| pooled to the heatmap's coarsest level (the whole matrix in one tile; the
   * magnitude layer's log colour scale), or null with `deltaSkipped`.
   */
  readonly heatmap: { readonly info: HeatmapInfo; readonly tile: HeatmapTile } | null;
  /** The spectrum of ΔW, its stable and effective rank, the energy kept at a few ranks. */
  readonly delta: DeltaSpectrum | null;
  /** Why there is no ΔW (values not comparable, identical, not a matrix). */
  readonly deltaSkipped?: string;
}

/**
 * The kinds of node the graph's "Compare: structure" overlay colours, in its legend's order:
 * B's nodes that A has unchanged, that B added, that changed, that compute a node of A split
 * in two. A's removed nodes are not in B's graph: the legend only counts them.
 */
export const GRAPH_DIFF_KINDS = ['unchanged', 'added', 'changed', 'split'] as const;
export type GraphDiffKind = (typeof GRAPH_DIFF_KINDS)[number];

/** A group whose nodes changed in more than one way. */
export const GRAPH_DIFF_MIXED = -1;

/**
 * The structure diff of a model (B) against another (A), laid onto B's graph
 * (layerlens/graphStructureDiff): a kind (an index in GRAPH_DIFF_KINDS) per node and per
 * group, so that a closed group is coloured without its contents.
 */
export interface GraphStructureDiff {
  /** A's `file:` URI. */
  readonly other: string;
  /** Per node of B's graph, by id. */
  readonly nodes: readonly number[];
  /** Per group, by id: the one kind of change inside it, GRAPH_DIFF_MIXED, or unchanged (0). */
  readonly groups: readonly number[];
  /** B's graph nodes of each kind. */
  readonly counts: Readonly<Record<GraphDiffKind, number>>;
  /** A's nodes that B no longer has. */
  readonly removed: number;
}

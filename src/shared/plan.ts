/**
 * Whole-model compression plans: a target, a per-tensor choice of method that meets it,
 * and the JSON recipe that records the choice so the CLI can apply it again.
 */
import type { CompressionOptions, CompressionReport, ValidationVerdict } from './compress';
import type { DeviationMetric } from './sensitivity';

export type PlanTarget =
  /** Output file size in megabytes (10^6 bytes). */
  | { readonly kind: 'sizeMB'; readonly value: number }
  /** Original size ÷ compressed size, e.g. 4. */
  | { readonly kind: 'ratio'; readonly value: number }
  /** Largest output deviation allowed (in the metric); the plan then minimises size. */
  | { readonly kind: 'deviation'; readonly value: number }
  /** Bits per weight over all tensors (formats that store llama.cpp types: GGUF). */
  | { readonly kind: 'bpw'; readonly value: number };

/** One tensor's part in a plan; `options` absent = keep the tensor as it is. */
export interface PlanStep {
  readonly tensor: string;
  readonly options?: CompressionOptions;
  /** Label of the chosen level (as in SweepLevel.label), or "keep". */
  readonly label: string;
  readonly bytesBefore: number;
  readonly predictedBytes: number;
  /** The one-layer-alone deviation this choice had in the sweep (or its proxy). */
  readonly predictedDeviation: number;
}

/** The file a plan is saved as (`<model>.recipe.json`), re-applied by `layerlens apply`. */
export interface CompressionRecipe {
  readonly format: 'layerlens-recipe';
  readonly version: 1;
  /** The model the recipe was made for: base name, size and SHA-256, checked on apply. */
  readonly model: { readonly file: string; readonly bytes: number; readonly sha256: string };
  readonly target: PlanTarget;
  readonly metric: DeviationMetric;
  /** Only the tensors that change; every other tensor is kept. */
  readonly steps: readonly { readonly tensor: string; readonly options: CompressionOptions }[];
  /** Whether the plan used measured sensitivity (refinement on apply measures it again). */
  readonly measured?: boolean;
}

export interface Plan {
  readonly source: string;
  readonly target: PlanTarget;
  readonly metric: DeviationMetric;
  readonly steps: readonly PlanStep[];
  readonly fileBytesBefore: number;
  readonly predictedFileBytes: number;
  /** Whether the predicted size / deviation meets the target. */
  readonly feasible: boolean;
  readonly recipe: CompressionRecipe;
  /**
   * What is wrong with the measured sensitivities the plan rests on: every one measured 0
   * (the data-free proxy stood in), or sample inputs that cannot fully show a deviation
   * (the measurements were used, and may understate it). Empty when nothing is wrong.
   */
  readonly warnings: readonly string[];
  /**
   * Why options were left out, one line per reason with how many tensors it holds for
   * ("12 tensors could not take int4:32 because …"): what stops a plan that misses its
   * target from going further. Only options the methods can write are ever planned.
   */
  readonly limits: readonly string[];
  /**
   * The `llama-quantize` command giving the planned types (`--tensor-type NAME=TYPE` …),
   * for plans of llama.cpp types.
   */
  readonly llamaQuantize?: string;
}

export interface PlanRequest {
  readonly target: PlanTarget;
  /** Absent = the `sensitivity.metric` setting. */
  readonly metric?: DeviationMetric;
  /** Use measured sensitivity (ONNX) rather than the data-free proxy alone. */
  readonly measured: boolean;
}

/** One application of a plan: the file written and the deviation measured on it. */
export interface PlanAttempt {
  readonly output: string;
  readonly fileBytes: number;
  /** Whole-model deviation of the compressed file on the sample inputs (NaN when not runnable). */
  readonly deviation: number;
  /** What was changed before the next attempt, e.g. "kept lstm.weight_ih (int4:32 → int8)". */
  readonly refinement?: string;
}

export interface ApplyPlanResult {
  /** The validated report of the file that was kept (the last attempt). */
  readonly report: CompressionReport;
  readonly attempts: readonly PlanAttempt[];
  /** The recipe actually applied after refinement, and where it was saved. */
  readonly recipe: CompressionRecipe;
  readonly recipePath: string;
  readonly targetMet: boolean;
  /** The kept file's verdict, with the plan's own warnings among the reasons. */
  readonly verdict: ValidationVerdict;
  /** Why the target was not met (empty when it was): by how much, and what held the methods back. */
  readonly missedBecause: readonly string[];
}

/** What the model editor shows of a plan: the plan, and once applied, the result. */
export interface PlanView {
  readonly plan: Plan;
  /** True while the plan is being applied. */
  readonly applying?: boolean;
  readonly result?: ApplyPlanResult;
  /** Why applying failed. */
  readonly error?: string;
}

/** A button of the plan panel. */
export type PlanAction = 'apply' | 'dismiss';

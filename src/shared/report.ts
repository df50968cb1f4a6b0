/**
 * The data a shared HTML report (`layerlens report`) embeds: what the model editor's
 * webview would ask the server for, answered ahead of time by the CLI
 * (src/server/report/), and answered again in the page by the static host
 * (webview-ui/src/report/staticHost.ts).
 */
import type { ModelDiff } from './diff';
import type { ModuleTree } from './graph';
import type {
  Histogram,
  ModelSummary,
  TensorInfo,
  TensorStatsResult,
  WeightTensors,
} from './model';
import type { Spectrum } from './spectrum';

/** The id of the `<script type="application/json">` element that holds the ReportData. */
export const REPORT_DATA_ELEMENT_ID = 'layerlens-report-data';

/** One model as the report shows it in the editor's view. */
export interface ReportModel {
  /** Absolute path of the model file when the report was written. */
  readonly file: string;
  readonly summary: ModelSummary;
  /** Every tensor, in the model's order (index = position). */
  readonly tensors: readonly TensorInfo[];
  readonly weights: WeightTensors;
  /** Statistics of every tensor, by index; histograms only for REPORT_MAX_HISTOGRAMS of them. */
  readonly stats: readonly TensorStatsResult[];
  /** Spectra with the default options of up to REPORT_MAX_SPECTRA weight matrices. */
  readonly spectra: readonly Spectrum[];
  readonly moduleTree: ModuleTree;
}

/** Both histograms of a compared pair, for the diff view's overlay. */
export interface ReportPairHistograms {
  readonly indexA: number;
  readonly a: Histogram | null;
  readonly b: Histogram | null;
}

export interface ReportComparison {
  readonly diff: ModelDiff;
  /** Pairs whose A histogram is in the report (the others say so when selected). */
  readonly histograms: readonly ReportPairHistograms[];
}

export interface ReportData {
  /** Bumped when the shape changes. */
  readonly version: 1;
  /** ISO time the report was written. */
  readonly createdAt: string;
  readonly model: ReportModel;
  readonly comparison: ReportComparison | null;
  /** What the report leaves out and why, one sentence each (shown at its top). */
  readonly omitted: readonly string[];
}

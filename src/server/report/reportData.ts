/**
 * Everything a shared HTML report embeds, computed ahead of time by the same services that
 * answer the model editor (ModelService, AnalysisService, diffModels): the summary, every
 * tensor with its statistics, the weights, the module tree, the spectra of the largest
 * weight matrices and, with a second model, the diff with both histograms of its pairs.
 */
import { resolve } from 'node:path';
import {
  MAX_PAGE_SIZE,
  MAX_STATS_BATCH,
  REPORT_MAX_HISTOGRAMS,
  REPORT_MAX_SPECTRA,
} from '../../shared/limits';
import { isStatsError, type TensorInfo, type TensorStatsResult } from '../../shared/model';
import type {
  ReportComparison,
  ReportData,
  ReportModel,
  ReportPairHistograms,
} from '../../shared/report';
import { hasSpectralMetrics, type Spectrum } from '../../shared/spectrum';
import type { LayerLensSettings } from '../../shared/settings';
import { formatCount } from '../../shared/format';
import type { AnalysisService } from '../analysisService';
import { diffModels } from '../diff';
import { buildModuleTree } from '../graph/moduleTree';
import { ModelFileError } from '../formats/modelFileError';
import type { ModelService } from '../modelService';

export interface ReportOptions {
  /** A second model to compare the first with (the diff view). */
  readonly compare?: string;
  readonly settings?: Partial<LayerLensSettings>;
  /** When the report is written (ISO); now by default. */
  readonly createdAt?: string;
}

/** Indices of the tensors ordered by bytes, largest first (ties: the model's order). */
function largestFirst(tensors: readonly TensorInfo[]): number[] {
  return tensors
    .map((tensor) => tensor.index)
    .sort((x, y) => tensors[y]!.byteLength - tensors[x]!.byteLength || x - y);
}

async function allTensors(
  service: ModelService,
  path: string,
  count: number,
): Promise<TensorInfo[]> {
  const tensors: TensorInfo[] = [];
  while (tensors.length < count) {
    const page = await service.tensors(path, tensors.length, MAX_PAGE_SIZE);
    if (page.tensors.length === 0) break;
    tensors.push(...page.tensors);
  }
  return tensors;
}

async function statsOf(
  service: ModelService,
  path: string,
  indices: readonly number[],
): Promise<Map<number, TensorStatsResult>> {
  const stats = new Map<number, TensorStatsResult>();
  for (let start = 0; start < indices.length; start += MAX_STATS_BATCH) {
    for (const result of await service.tensorStats(
      path,
      indices.slice(start, start + MAX_STATS_BATCH),
    ))
      stats.set(result.index, result);
  }
  return stats;
}

/** Keeps the histograms of the `keep` tensors only. */
function withoutHistogram(result: TensorStatsResult, keep: ReadonlySet<number>): TensorStatsResult {
  if (isStatsError(result) || keep.has(result.index)) return result;
  return { ...result, histogram: null };
}

async function reportModel(
  service: ModelService,
  analysis: AnalysisService,
  path: string,
  omitted: string[],
): Promise<{ model: ReportModel; histogramIndices: ReadonlySet<number> }> {
  const summary = await service.openModel(path);
  const tensors = await allTensors(service, path, summary.tensorCount);
  const weights = await service.weightTensors(path);
  const stats = await statsOf(
    service,
    path,
    tensors.map((tensor) => tensor.index),
  );
  const histogramIndices = new Set(largestFirst(tensors).slice(0, REPORT_MAX_HISTOGRAMS));
  if (tensors.length > REPORT_MAX_HISTOGRAMS)
    omitted.push(
      `Value histograms of ${formatCount(tensors.length - REPORT_MAX_HISTOGRAMS)} tensors: the report keeps those of the ${formatCount(REPORT_MAX_HISTOGRAMS)} largest.`,
    );
  const weightSet = new Set(weights.indices);
  const matrices = largestFirst(tensors).filter((index) =>
    hasSpectralMetrics(tensors[index]!, weightSet.has(index)),
  );
  const spectra: Spectrum[] = [];
  for (const index of matrices.slice(0, REPORT_MAX_SPECTRA)) {
    try {
      spectra.push(await analysis.spectrum(path, index));
    } catch (error) {
      if (error instanceof ModelFileError) throw error;
      omitted.push(
        `The spectrum of ${tensors[index]!.name}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  if (matrices.length > REPORT_MAX_SPECTRA)
    omitted.push(
      `Spectra of ${formatCount(matrices.length - REPORT_MAX_SPECTRA)} weight matrices: the report keeps those of the ${formatCount(REPORT_MAX_SPECTRA)} largest.`,
    );
  return {
    model: {
      file: path,
      summary,
      tensors,
      weights,
      stats: tensors.map((tensor) =>
        withoutHistogram(
          stats.get(tensor.index) ?? { index: tensor.index, error: 'no statistics' },
          histogramIndices,
        ),
      ),
      spectra,
      moduleTree: buildModuleTree(tensors),
    },
    histogramIndices,
  };
}

async function comparison(
  service: ModelService,
  model: ReportModel,
  histogramIndices: ReadonlySet<number>,
  other: string,
  settings: Partial<LayerLensSettings> | undefined,
): Promise<ReportComparison> {
  const diff = await diffModels(model.file, other, { settings });
  const shown = diff.pairs.filter((pair) => histogramIndices.has(pair.indexA));
  // A pair stored as low-rank factors shows A's histogram alone (the factors' values are not W's).
  const indicesB = shown.flatMap((pair) => (pair.pairing === 'factors' ? [] : [pair.indicesB[0]!]));
  const statsB = await statsOf(service, other, indicesB);
  const histogram = (result: TensorStatsResult | undefined) =>
    result && !isStatsError(result) ? result.histogram : null;
  const histograms: ReportPairHistograms[] = shown.map((pair) => ({
    indexA: pair.indexA,
    a: histogram(model.stats[pair.indexA]),
    b: pair.pairing === 'factors' ? null : histogram(statsB.get(pair.indicesB[0]!)),
  }));
  return { diff, histograms };
}

/** The report's data for `file` (and, with `compare`, its diff against that model). */
export async function reportData(
  service: ModelService,
  analysis: AnalysisService,
  file: string,
  options: ReportOptions = {},
): Promise<ReportData> {
  const omitted: string[] = [
    'Heatmaps, the operator graph, sensitivity and lossless compressibility: they need the LayerLens server; open the model in VS Code for them.',
  ];
  const { model, histogramIndices } = await reportModel(service, analysis, resolve(file), omitted);
  const compared =
    options.compare === undefined
      ? null
      : await comparison(
          service,
          model,
          histogramIndices,
          resolve(options.compare),
          options.settings,
        );
  if (compared && compared.histograms.length < compared.diff.pairs.length)
    omitted.push(
      `Overlaid histograms of ${formatCount(compared.diff.pairs.length - compared.histograms.length)} compared pairs whose tensor in ${model.summary.fileName} has no histogram in the report.`,
    );
  return {
    version: 1,
    createdAt: options.createdAt ?? new Date().toISOString(),
    model,
    comparison: compared,
    omitted,
  };
}

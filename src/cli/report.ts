/**
 * `layerlens report MODEL [--compare OTHER] --html OUT.html`: one self-contained HTML file
 * to share (a CI artifact, an attachment to a review), built from the model editor's own
 * view (src/server/report/).
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { formatBytes } from '../shared/format';
import { REPORT_MAX_HISTOGRAMS, REPORT_MAX_SPECTRA } from '../shared/limits';
import { AnalysisService } from '../server/analysisService';
import { ModelService } from '../server/modelService';
import {
  defaultReportAssets,
  htmlReport,
  ReportAssetsMissingError,
  type ReportAssets,
} from '../server/report/htmlReport';
import { reportData } from '../server/report/reportData';
import { UsageError } from './compress';

export const REPORT_USAGE = `Usage: layerlens report MODEL [--compare OTHER] --html OUT.html

  report     Write one self-contained HTML file that opens offline in any browser: the
             model's overview, its tensor table with statistics, value histograms and
             spectra, as the LayerLens editor shows them; with --compare also the diff
             against OTHER (paired tensors, overlaid histograms, structure changes).
             Histograms of the ${REPORT_MAX_HISTOGRAMS} largest tensors and spectra of the ${REPORT_MAX_SPECTRA}
             largest weight matrices are kept; the file lists what it leaves out
  --compare  A second model to compare MODEL with (as layerlens diff MODEL OTHER)
  --html     Where to write the report`;

interface ReportArgs {
  readonly model: string;
  readonly compare?: string;
  readonly out: string;
}

export function parseReportArgs(args: readonly string[]): ReportArgs {
  const files: string[] = [];
  let compare: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      files.push(arg);
      continue;
    }
    if (arg !== '--compare' && arg !== '--html') throw new UsageError(`unknown option ${arg}`);
    const value = args[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a file`);
    if (arg === '--compare') compare = resolve(value);
    else out = resolve(value);
  }
  if (files.length !== 1) throw new UsageError('report takes one model file');
  if (out === undefined) throw new UsageError('report needs --html OUT.html');
  const model = resolve(files[0]!);
  if (out === model || out === compare)
    throw new UsageError(`--html ${out} would overwrite a model; choose another file`);
  return { model, compare, out };
}

/** Run `layerlens report …`; returns the exit code. `assets`: the page's bundle and CSS. */
export async function reportCommand(
  args: readonly string[],
  assetsOf: () => ReportAssets = defaultReportAssets,
): Promise<number> {
  let parsed: ReportArgs;
  try {
    parsed = parseReportArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`layerlens: ${error.message}\n\n${REPORT_USAGE}`);
    return 2;
  }
  let assets: ReportAssets;
  try {
    assets = assetsOf();
  } catch (error) {
    if (!(error instanceof ReportAssetsMissingError)) throw error;
    console.error(`layerlens: ${error.message}`);
    return 1;
  }
  const service = new ModelService();
  const analysis = new AnalysisService(service);
  try {
    const data = await reportData(service, analysis, parsed.model, { compare: parsed.compare });
    const html = htmlReport(data, assets);
    await writeFile(parsed.out, html);
    console.log(`Wrote ${parsed.out} (${formatBytes(Buffer.byteLength(html))})`);
    for (const note of data.omitted) console.log(`  not in the report: ${note}`);
    return 0;
  } finally {
    analysis.dispose();
    service.dispose();
  }
}

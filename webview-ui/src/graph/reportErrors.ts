/**
 * The relative error ‖W − Ŵ‖/‖W‖ of each tensor that the last compression report of this
 * model measured, by tensor name (a page shows one model): the overlays' "Report: relative
 * error". Empty without a report.
 */
import type { CompressionReport } from '../../../src/shared/compress';

const reportErrors = new Map<string, number>();

/** A compression report arrived (null: it was dismissed). Skipped tensors have no error. */
export function setReportErrors(report: CompressionReport | null): void {
  reportErrors.clear();
  for (const tensor of report?.tensors ?? [])
    if (!tensor.skipped) reportErrors.set(tensor.name, tensor.relativeError);
}

export function reportErrorOf(tensorName: string): number | undefined {
  return reportErrors.get(tensorName);
}

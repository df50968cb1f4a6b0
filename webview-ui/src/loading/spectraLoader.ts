/**
 * Fills the table's spectral-metric columns: once the statistics are in, the spectra of
 * weight matrices (hasSpectralMetrics: no shape constants, scales or vectors) up to
 * AUTO_SPECTRUM_MAX_ELEMENTS values are fetched one at a time. Larger
 * ones wait for the user to open their Spectrum tab (the cell says so).
 */
import { formatCount } from '../../../src/shared/format';
import { matrixShape } from '../../../src/shared/heatmap';
import {
  AUTO_SPECTRUM_MAX_ELEMENTS,
  hasSpectralMetrics,
  type Spectrum,
} from '../../../src/shared/spectrum';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import type { TensorRow } from '../table/tensorRows';

export class SpectraLoader {
  private readonly controller = new AbortController();

  constructor(
    private readonly api: ModelApi,
    /** Rows whose spectral cells changed. */
    private readonly updated: (rows: readonly TensorRow[]) => void,
  ) {}

  abort(): void {
    this.controller.abort();
  }

  /** A spectrum with the default options arrived from elsewhere (the Spectrum tab). */
  static apply(row: TensorRow, spectrum: Spectrum): void {
    row.spectrum = spectrum.metrics;
    row.spectrumNote = undefined;
  }

  async run(rows: readonly TensorRow[]): Promise<void> {
    const queue: TensorRow[] = [];
    const marked: TensorRow[] = [];
    for (const row of rows) {
      if (row.spectrum || !hasSpectralMetrics(row.info, row.weight ?? true)) continue;
      const matrix = matrixShape(row.info.shape)!;
      if (matrix.rows * matrix.cols > AUTO_SPECTRUM_MAX_ELEMENTS) {
        row.spectrumNote = {
          state: 'skipped',
          text: `A ${formatCount(matrix.rows)} × ${formatCount(matrix.cols)} matrix: select the row and open its Spectrum tab to compute the metrics.`,
        };
      } else {
        row.spectrumNote = { state: 'pending', text: 'Computing the spectrum…' };
        queue.push(row);
      }
      marked.push(row);
    }
    if (marked.length > 0) this.updated(marked);
    const signal = this.controller.signal;
    for (const row of queue) {
      if (signal.aborted) return;
      if (row.spectrum) continue;
      try {
        SpectraLoader.apply(
          row,
          await this.api.request('spectrum', { index: row.info.index, options: {} }, signal),
        );
      } catch (error) {
        if (signal.aborted || isCancellation(error)) return;
        row.spectrumNote = {
          state: 'error',
          text: `No spectrum: ${requestErrorOf(error).message}`,
        };
      }
      this.updated([row]);
    }
  }
}

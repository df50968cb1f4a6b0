/**
 * Fetches the lossless compressibility of every tensor (exponent entropy, packed ratio)
 * once the statistics are in, in batches, and hands the updated rows back for redrawing.
 */
import { isCompressibilityError } from '../../src/shared/lossless';
import { isCancellation, requestErrorOf, type ModelApi } from './api';
import type { TensorRow } from './tensorRows';

/** Tensors per `compressibility` request. */
const BATCH_SIZE = 64;

export async function loadCompressibility(
  api: ModelApi,
  rows: readonly (TensorRow | undefined)[],
  signal: AbortSignal,
  updated: (rows: readonly TensorRow[]) => void,
): Promise<void> {
  const waiting = rows.filter((row): row is TensorRow => row !== undefined && !row.compressibility);
  for (let start = 0; start < waiting.length && !signal.aborted; start += BATCH_SIZE) {
    const batch = waiting.slice(start, start + BATCH_SIZE);
    try {
      const results = await api.compressibility(
        batch.map((row) => row.info.index),
        signal,
      );
      const byIndex = new Map(results.map((result) => [result.index, result]));
      for (const row of batch) {
        const result = byIndex.get(row.info.index);
        if (!result) row.compressibilityError = 'The server returned nothing for this tensor.';
        else if (isCompressibilityError(result)) row.compressibilityError = result.error;
        else row.compressibility = result;
      }
    } catch (error) {
      if (signal.aborted || isCancellation(error)) return;
      const { message } = requestErrorOf(error);
      for (const row of batch) row.compressibilityError = message;
    }
    if (!signal.aborted) updated(batch);
  }
}

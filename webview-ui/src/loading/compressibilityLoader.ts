/**
 * Fetches the lossless columns once the statistics are in, in batches: every tensor's
 * compressibility (exponent entropy, packed ratio), and for a fine-tune delta its
 * difference from the base model. Updated rows are handed back for redrawing.
 */
import type { TensorCompressibility, TensorDeltaStats } from '../../../src/shared/lossless';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import type { TensorRow } from '../table/tensorRows';

/** Tensors per request. */
const BATCH_SIZE = 64;

type Result<T> = T | { readonly index: number; readonly error: string };

async function loadInBatches<T extends { readonly index: number }>(
  rows: readonly (TensorRow | undefined)[],
  signal: AbortSignal,
  fetch: (indices: number[]) => Promise<Result<T>[]>,
  apply: (row: TensorRow, result: T | null, error: string | null) => void,
  updated: (rows: readonly TensorRow[]) => void,
): Promise<void> {
  const waiting = rows.filter((row): row is TensorRow => row !== undefined);
  for (let start = 0; start < waiting.length && !signal.aborted; start += BATCH_SIZE) {
    const batch = waiting.slice(start, start + BATCH_SIZE);
    try {
      const results = await fetch(batch.map((row) => row.info.index));
      const byIndex = new Map(results.map((result) => [result.index, result]));
      for (const row of batch) {
        const result = byIndex.get(row.info.index);
        if (!result) apply(row, null, 'The server returned nothing for this tensor.');
        else if ('error' in result) apply(row, null, result.error);
        else apply(row, result, null);
      }
    } catch (error) {
      if (signal.aborted || isCancellation(error)) return;
      const { message } = requestErrorOf(error);
      for (const row of batch) apply(row, null, message);
    }
    if (!signal.aborted) updated(batch);
  }
}

export function loadCompressibility(
  api: ModelApi,
  rows: readonly (TensorRow | undefined)[],
  signal: AbortSignal,
  updated: (rows: readonly TensorRow[]) => void,
): Promise<void> {
  return loadInBatches<TensorCompressibility>(
    rows,
    signal,
    (indices) => api.request('compressibility', { indices }, signal),
    (row, result, error) => {
      row.compressibility = result;
      row.compressibilityError = error;
    },
    updated,
  );
}

export function loadDeltaStats(
  api: ModelApi,
  rows: readonly (TensorRow | undefined)[],
  signal: AbortSignal,
  updated: (rows: readonly TensorRow[]) => void,
): Promise<void> {
  return loadInBatches<TensorDeltaStats>(
    rows,
    signal,
    (indices) => api.request('deltaStats', { indices }, signal),
    (row, result, error) => {
      row.delta = result;
      row.deltaError = error;
    },
    updated,
  );
}

/** Whether the summary is of a packed fine-tune delta (its overview names the base model). */
export function isDeltaModel(metadata: readonly { key: string }[]): boolean {
  return metadata.some((entry) => entry.key === 'delta against');
}

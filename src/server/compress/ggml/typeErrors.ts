/**
 * The proxy error of each ggml type on one weight, estimated from a sample of its rows:
 * ‖W − Ŵ‖/‖W‖ and SQNR over evenly spaced rows (all rows of a small tensor), Ŵ made by the
 * reference quantizers. Rows are independent in every ggml type (blocks never cross a
 * row), so the sample's error is the error of those rows exactly.
 */
import type { ProxyPoint } from '../../../shared/sensitivity';
import type { GgmlQuantType } from '../../../shared/compressMethods';
import { ggmlType } from '../../formats/gguf/ggmlTypes';
import { proxyPoint } from '../../sensitivity/proxy';
import { roundTripGgml } from './index';

/** Weights quantized per type and tensor when estimating its error (whole rows, at least one). */
export const ERROR_SAMPLE_WEIGHTS = 1 << 18;

/** Evenly spaced whole rows of `values` (rows of `rowLength`), at most `limit` weights. */
export function sampleRows(values: Float32Array, rowLength: number, limit: number): Float32Array {
  const rows = values.length / rowLength;
  const taken = Math.min(rows, Math.max(1, Math.floor(limit / rowLength)));
  if (taken === rows) return values;
  const out = new Float32Array(taken * rowLength);
  for (let i = 0; i < taken; i++) {
    const row = Math.floor((i * rows) / taken);
    out.set(values.subarray(row * rowLength, (row + 1) * rowLength), i * rowLength);
  }
  return out;
}

/** Each column of rows of `weights.length` values scaled by √weight. */
function scaleColumns(values: Float32Array, weights: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  const roots = weights.map(Math.sqrt);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! * roots[i % roots.length]!;
  return out;
}

/**
 * The proxy point of every type of `types` whose blocks fit rows of `rowLength`, keyed by
 * type; types that do not fit are left out. With `importance` (one value per input
 * column, an importance matrix's), Ŵ is quantized weighted by it and the error is
 * weighted too: ‖(W − Ŵ)·√importance‖/‖W·√importance‖.
 */
export function ggmlTypeErrors(
  values: Float32Array,
  rowLength: number,
  types: readonly GgmlQuantType[],
  limit = ERROR_SAMPLE_WEIGHTS,
  importance?: Float32Array,
): Map<GgmlQuantType, ProxyPoint> {
  if (importance && importance.length !== rowLength) {
    throw new RangeError(`${importance.length} importance values for rows of ${rowLength}`);
  }
  const sample = sampleRows(values, rowLength, limit);
  const weighted = importance ? scaleColumns(sample, importance) : sample;
  const out = new Map<GgmlQuantType, ProxyPoint>();
  for (const type of types) {
    if (rowLength % ggmlType(type).blockElements !== 0) continue;
    const restored = roundTripGgml(type, sample, importance);
    const compared = importance ? scaleColumns(restored, importance) : restored;
    out.set(type, proxyPoint(`ggml:${type}`, weighted, compared));
  }
  return out;
}

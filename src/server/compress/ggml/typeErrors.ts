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
export const ERROR_SAMPLE_WEIGHTS = 1 << 16;

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

/**
 * The proxy point of every type of `types` whose blocks fit rows of `rowLength`, keyed by
 * type; types that do not fit are left out.
 */
export function ggmlTypeErrors(
  values: Float32Array,
  rowLength: number,
  types: readonly GgmlQuantType[],
  limit = ERROR_SAMPLE_WEIGHTS,
): Map<GgmlQuantType, ProxyPoint> {
  const sample = sampleRows(values, rowLength, limit);
  const out = new Map<GgmlQuantType, ProxyPoint>();
  for (const type of types) {
    if (rowLength % ggmlType(type).blockElements !== 0) continue;
    out.set(type, proxyPoint(`ggml:${type}`, sample, roundTripGgml(type, sample)));
  }
  return out;
}

/**
 * The work of a ggml job (ggmlJob.ts), run in a ggml worker thread (ggmlWorker.ts): the
 * WebAssembly quantizers (compress/ggml/, wasm/ggml.ts) over pieces of whole rows, with a
 * check for a cancel between pieces and between types.
 */
import type { TransferListItem } from 'node:worker_threads';
import type { GgmlQuantType } from '../../shared/compressMethods';
import type { ProxyPoint } from '../../shared/sensitivity';
import { dequantizeBlocks } from '../analysis/ggmlValues';
import { quantizeGgml } from '../compress/ggml';
import { ggmlTypeErrors } from '../compress/ggml/typeErrors';
import { relativeFrobeniusError } from '../compress/kernels';
import { ggmlType } from '../formats/gguf/ggmlTypes';
import { GGML_PIECE_WEIGHTS, type GgmlJob, type GgmlJobResult } from './ggmlJob';
import { JobAbortedError } from './workerPool';

/** `values` of `type` quantized piece by piece (pieces of whole rows), and ‖W − Ŵ‖/‖W‖. */
function quantizeJob(
  typeName: string,
  values: Float32Array,
  importance: Float32Array | undefined,
  isCancelled: () => boolean,
): GgmlJobResult {
  const type = ggmlType(typeName);
  const rowLength = importance?.length ?? type.blockElements;
  const piece = rowLength * Math.max(1, Math.floor(GGML_PIECE_WEIGHTS / rowLength));
  const bytes = new Uint8Array((values.length / type.blockElements) * type.blockBytes);
  const restored = new Float32Array(values.length);
  for (let from = 0; from < values.length; from += piece) {
    if (isCancelled()) throw new JobAbortedError();
    const part = values.subarray(from, Math.min(values.length, from + piece));
    const quantized = quantizeGgml(typeName, part, importance);
    const at = (from / type.blockElements) * type.blockBytes;
    bytes.set(quantized, at);
    dequantizeBlocks(type, quantized, part.length / type.blockElements, restored.subarray(from));
  }
  return { kind: 'quantize', bytes, relativeError: relativeFrobeniusError(values, restored) };
}

/** A job's result, computed in this thread (the worker's handler). */
export function runGgmlJob(job: GgmlJob, isCancelled: () => boolean): GgmlJobResult {
  if (job.kind === 'quantize')
    return quantizeJob(job.type, job.values, job.importance, isCancelled);
  const points: [GgmlQuantType, ProxyPoint][] = [];
  for (const type of job.types) {
    if (isCancelled()) throw new JobAbortedError();
    const errors = ggmlTypeErrors(job.values, job.rowLength, [type], Infinity, job.importance);
    const point = errors.get(type);
    if (point) points.push([type, point]);
  }
  return { kind: 'errors', points };
}

export function ggmlResultBuffers(result: GgmlJobResult): readonly TransferListItem[] {
  return result.kind === 'quantize' ? [result.bytes.buffer as ArrayBuffer] : [];
}

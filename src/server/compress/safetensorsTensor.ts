/**
 * One tensor of a safetensors compression, as a pure function of its bytes: what the new
 * file stores in its place and how far that is from the original. It runs in a worker
 * thread (jobs/compressWorker.ts) so that long work (an SVD) never blocks the server, and
 * a cancelled job stops at once (the worker is terminated).
 */
import * as path from 'node:path';
import type { CompressionOptions } from '../../shared/compress';
import type { DType } from '../../shared/dtypes';
import { decodeValues, type NumericDType } from '../analysis/decode';
import { relativeFrobeniusError } from './kernels';
import { methodFor } from './methods';
import { matrixLayout, type SafetensorsOutcome, type WrittenTensor } from './safetensorsValues';

export { INT8_SCALE_SUFFIX, type WrittenTensor } from './safetensorsValues';

export interface TensorJob {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** The tensor's little-endian bytes (moved to the worker). */
  readonly bytes: Uint8Array;
  readonly options: CompressionOptions;
}

export type TensorJobResult =
  | { readonly kind: 'skipped'; readonly reason: string }
  | {
      readonly kind: 'done';
      readonly tensors: readonly WrittenTensor[];
      /** ‖W − Ŵ‖_F / ‖W‖_F of what the new file means against the original. */
      readonly relativeError: number;
      readonly detail: string;
    };

/**
 * Compress one floating-point tensor. A level the tensor cannot take (a rank that saves
 * nothing, a matrix beyond the SVD limits) is a skip with the reason, not a failure.
 */
export async function compressTensorJob(
  job: TensorJob,
  isCancelled: () => boolean = () => false,
): Promise<TensorJobResult> {
  const original = decodeValues(job.dtype as NumericDType, job.bytes, job.elementCount);
  let outcome: SafetensorsOutcome | string;
  const { name, dtype, shape } = job;
  const layout = matrixLayout(shape);
  try {
    outcome = await methodFor(job.options.method, 'safetensors').apply(
      {
        name,
        dtype,
        shape,
        bytes: job.bytes,
        original,
        layout,
        needMatrix: `${shape.length === 1 ? 'a 1-D tensor (bias or norm)' : 'an empty tensor'} is kept as it is`,
        isCancelled,
      },
      job.options,
    );
  } catch (error) {
    if (
      !(error instanceof RangeError) &&
      !(error instanceof Error && error.name === 'LowRankRefusal')
    )
      throw error;
    outcome = error.message;
  }
  if (typeof outcome === 'string') return { kind: 'skipped', reason: outcome };
  return {
    kind: 'done',
    tensors: outcome.tensors,
    relativeError: relativeFrobeniusError(original, outcome.values),
    detail: outcome.detail,
  };
}

/** The buffers of a result, each once, to move back from the worker instead of copying. */
export function resultBuffers(result: TensorJobResult): ArrayBuffer[] {
  if (result.kind !== 'done') return [];
  return [...new Set(result.tensors.map((tensor) => tensor.bytes.buffer as ArrayBuffer))];
}

/**
 * The worker script. Bundled, this module is inside dist/server.js (or dist/cli.js) and
 * the worker is dist/compressWorker.js beside it; from source (tests), the .ts file.
 */
export function compressWorkerScript(): string {
  return __filename.endsWith('.ts')
    ? path.join(__dirname, '..', 'jobs', 'compressWorker.ts')
    : path.join(__dirname, 'compressWorker.js');
}

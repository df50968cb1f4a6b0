/**
 * Magnitude pruning: the smallest |w| set to zero, to a target sparsity. The zeros are
 * stored in the dense tensor, so the file is as large as before (it shrinks only after
 * lossless packing): plans leave pruning out.
 */
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_DEFAULTS, METHOD_INFO, type FileSizeEffect } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { pruneMagnitude, relativeFrobeniusError } from '../kernels';
import { countZeros, replaceWeight, weightTensor } from '../onnx/methods';
import { asFloat32, percent, sameTensor, zeroPruned } from '../safetensorsValues';
import { DTYPES } from '../../../shared/dtypes';
import { quantizedProblem, type CompressionMethodModule } from './types';

/** Dense zeros take as many bytes as the values they replace. */
const NO_SMALLER_ONNX = 'stores the zeros in the dense tensor: no smaller on disk';
const NO_SMALLER_SAFETENSORS =
  'stored as dense values of the original dtype in safetensors: no smaller on disk';
/** Neither writer has a sparse storage: the zeros are written as values. */
export const DENSE_ZEROS: FileSizeEffect = {
  kind: 'same',
  why: 'zeros stored densely (no sparse storage; smaller only after lossless packing)',
};

export function pruneLevel(sparsity: number): SweepLevel {
  return {
    key: `prune:${sparsity}`,
    label: `prune ${percent(sparsity)}`,
    method: 'prune',
    options: { method: 'prune', sparsity },
    x: sparsity,
  };
}

function sparsityOf(options: CompressionOptions): number {
  return options.sparsity ?? METHOD_DEFAULTS.sparsity;
}

export const prune: CompressionMethodModule = {
  ...METHOD_INFO.prune,
  sweepLevels: [pruneLevel(0.25), pruneLevel(0.5), pruneLevel(0.75), pruneLevel(0.9)],
  planLevels: [],
  sweepProblem: () => undefined,
  reconstruct: async (values, _layout, level) => pruneMagnitude(values, sparsityOf(level.options)),
  formats: {
    onnx: {
      fileSize: DENSE_ZEROS,
      feasible: (weight) => quantizedProblem(weight.encoding),
      async apply(ctx, job, options) {
        const pruned = pruneMagnitude(job.values, sparsityOf(options));
        replaceWeight(
          ctx,
          job.slot,
          [weightTensor(job, job.slot.name, job.entry.info.shape, pruned)],
          [],
        );
        const zeros = countZeros(pruned);
        return {
          bytesAfter: job.entry.info.byteLength,
          relativeError: relativeFrobeniusError(job.values, pruned),
          detail: `magnitude pruning: ${zeros} of ${pruned.length} values zero (${((100 * zeros) / pruned.length).toFixed(1)}%)`,
        };
      },
      predictBytes: async () => NO_SMALLER_ONNX,
    },
    safetensors: {
      fileSize: DENSE_ZEROS,
      feasible: () => null,
      async apply(tensor, options) {
        const sparsity = sparsityOf(options);
        const pruned = pruneMagnitude(asFloat32(tensor.original), sparsity);
        const width = DTYPES[tensor.dtype].bits / 8;
        return sameTensor(
          tensor,
          zeroPruned(tensor.bytes, tensor.original, pruned, width),
          `magnitude pruning to ${percent(sparsity)} zeros`,
        );
      },
      predictBytes: () => NO_SMALLER_SAFETENSORS,
    },
  },
};

/**
 * N:M semi-structured pruning: keep the N largest of every M consecutive weights along the
 * input dimension (2:4 by default). Like magnitude pruning, the zeros are stored densely.
 */
import type { CompressionOptions } from '../../../shared/compress';
import { DTYPES } from '../../../shared/dtypes';
import { METHOD_DEFAULTS, METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { layoutDims, pruneNM, relativeFrobeniusError } from '../kernels';
import { layoutOrSkip, replaceWeight, weightTensor } from '../onnx/methods';
import { asFloat32, sameTensor, zeroPruned } from '../safetensorsValues';
import { DENSE_ZEROS } from './prune';
import { needLayout, quantizedProblem, type CompressionMethodModule } from './types';

const NO_SMALLER_ONNX = 'stores the zeros in the dense tensor: no smaller on disk';
const NO_SMALLER_SAFETENSORS =
  'stored as dense values of the original dtype in safetensors: no smaller on disk';

export function nmLevel(n: number, m: number): SweepLevel {
  return {
    key: `nm:${n}:${m}`,
    label: `${n}:${m}`,
    method: 'nm',
    options: { method: 'nm', n, m },
    x: 1 - n / m,
  };
}

function nmOf(options: CompressionOptions): { n: number; m: number } {
  return { n: options.n ?? METHOD_DEFAULTS.n, m: options.m ?? METHOD_DEFAULTS.m };
}

export const nm: CompressionMethodModule = {
  ...METHOD_INFO.nm,
  sweepLevels: [nmLevel(2, 4)],
  planLevels: [],
  sweepProblem(level, traits) {
    if (!traits.layout) return `${level.label} needs an input axis: ${traits.layoutProblem}`;
    const { n, m } = nmOf(level.options);
    const inputs = traits.layout.inputAxis === 0 ? traits.layout.rows : traits.layout.cols;
    if (inputs <= n)
      return `${level.label}: rows of ${inputs} inputs are too short for groups of ${m}`;
    return undefined;
  },
  async reconstruct(values, layout, level) {
    const { n, m } = nmOf(level.options);
    return pruneNM(values, needLayout(layout, level), n, m);
  },
  formats: {
    onnx: {
      fileSize: DENSE_ZEROS,
      feasible: (weight) => quantizedProblem(weight.encoding),
      async apply(ctx, job, options) {
        const { n, m } = nmOf(options);
        const layout = layoutOrSkip(job, `${n}:${m} pruning`);
        const pruned = pruneNM(job.values, layout, n, m);
        replaceWeight(
          ctx,
          job.slot,
          [weightTensor(job, job.slot.name, job.entry.info.shape, pruned)],
          [],
        );
        const inputs = layoutDims(layout).inputs;
        return {
          bytesAfter: job.entry.info.byteLength,
          relativeError: relativeFrobeniusError(job.values, pruned),
          detail: `${n}:${m} pruning along the input dimension (${layout.kind}, ${inputs} inputs per output)`,
        };
      },
      predictBytes: async () => NO_SMALLER_ONNX,
    },
    safetensors: {
      fileSize: DENSE_ZEROS,
      feasible: () => null,
      async apply(tensor, options) {
        if (!tensor.layout) return tensor.needMatrix;
        const { n, m } = nmOf(options);
        const pruned = pruneNM(asFloat32(tensor.original), tensor.layout, n, m);
        const width = DTYPES[tensor.dtype].bits / 8;
        return sameTensor(
          tensor,
          zeroPruned(tensor.bytes, tensor.original, pruned, width),
          `${n}:${m} pruning along the input dimension`,
        );
      },
      predictBytes: () => NO_SMALLER_SAFETENSORS,
    },
  },
};

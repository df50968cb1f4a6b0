/**
 * safetensors as a compressible format (FormatCompression, attached to the safetensors
 * format module): the writer, the sweep's traits ([out, in·…] matrices) and the size
 * predictor. There is no graph to run, so no measured sweep.
 */
import type { FormatCompression } from '../formats/capabilities';
import { safetensorsSweepTraits } from '../sensitivity/traits';
import { methodFor } from './methods';
import { quantizedProblem } from './methods/types';
import {
  compressSafetensorsChoices,
  INT8_CONVENTION,
  safetensorsWriteProblem,
} from './safetensors';
import { FLOAT_DTYPES } from './safetensorsValues';

export const safetensorsCompression: FormatCompression = {
  methods: 'safetensors',
  // A sharded model counts its index and every shard.
  modelBytes: (summary) => summary.totalBytes,
  compress: (model, choices, context, output) =>
    compressSafetensorsChoices(
      model.path,
      model,
      new Map(choices.map((choice) => [choice.entry.info.index, choice.options])),
      context,
      output,
    ),
  decode: async () => undefined,
  sweepTraits: () => safetensorsSweepTraits,
  sizer: (model) => ({
    // The metadata a compressed file gains (the int8 note counted whether used or not).
    fileOverhead:
      JSON.stringify({
        'layerlens.compression': JSON.stringify({ source: model.path, options: {}, tensors: 0 }),
        'layerlens.int8': INT8_CONVENTION,
      }).length + 64,
    async size(entry, options) {
      const refused = safetensorsWriteProblem(model.path);
      if (refused) return refused;
      const { info } = entry;
      const quantized = quantizedProblem(info.encoding);
      if (quantized) return quantized;
      if (!FLOAT_DTYPES.has(info.dtype)) return `${info.dtype} is not a floating-point type`;
      const method = methodFor(options.method, 'safetensors');
      return (
        method.feasible(entry, options) ??
        method.predictBytes(entry, options, model.summary.fileBytes)
      );
    },
  }),
};

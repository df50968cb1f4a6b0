/**
 * ONNX as a compressible format (FormatCompression, attached to the ONNX format module):
 * the writer, the decoded model the sweep and the predictor share, the sweep's traits,
 * the measured sweep in onnxruntime, and the size predictor.
 */
import { onnx } from 'onnx-proto';
import type { FormatCompression, FormatSizer } from '../../formats/capabilities';
import type { OpenedModel } from '../../formats/types';
import { onnxModelOf, onnxStructureOf, type OnnxModel } from '../../onnx';
import { MeasuredSweep } from '../../sensitivity/sweep';
import { onnxSweepTraits } from '../../sensitivity/traits';
import { methodFor } from '../methods';
import { compressOnnxChoices } from './index';
import { onnxWeights, text } from './sizes';

function onnxSizer(model: OpenedModel, decoded: OnnxModel | undefined): FormatSizer {
  if (!decoded) throw new Error('the decoded ONNX model is needed');
  const weights = onnxWeights(model, decoded);
  return {
    // Writing re-encodes the whole model (field order, packing): measured on the original.
    fileOverhead:
      onnx.ModelProto.encode(decoded.proto).finish().length -
      model.summary.fileBytes +
      text('com.microsoft') +
      8,
    async size(entry, options, values) {
      const weight = weights.get(entry.info.index);
      if (!weight) return 'not a weight of the graph';
      if (weight.problem) return weight.problem;
      const method = methodFor(options.method, 'onnx');
      return (
        method.feasible(weight, options) ??
        (await method.predictBytes(entry, weight, options, values))
      );
    },
  };
}

export const onnxCompression: FormatCompression = {
  methods: 'onnx',
  modelBytes: (summary) => summary.totalBytes,
  compress: (model, choices, context, output) =>
    compressOnnxChoices(model, choices, context, output),
  // The reader's decoded model (shared: the measured sweep edits its own copy).
  decode: (model) => onnxModelOf(model, 'read'),
  structure: (model) => onnxStructureOf(model, 'read'),
  sweepTraits: (model, decoded) => onnxSweepTraits(model, decoded),
  measure(model, decoded, tensors, values, settings, signal) {
    if (!decoded) throw new Error('the decoded ONNX model is needed');
    return MeasuredSweep.open(model, decoded, tensors, values, settings, signal);
  },
  sizer: (model, decoded) => onnxSizer(model, decoded),
};

/**
 * int8: symmetric, one float32 scale per output channel. ONNX stores the int8 values and
 * scales with a DequantizeLinear (opset 13, per axis) computing W; safetensors stores the
 * round-tripped values in the original dtype, or with `storeQuantized` the I8 values and
 * a `<name>.scale` F32 tensor (the convention written into the file's metadata).
 */
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import { attr, makeNode } from '../../onnx';
import {
  dequantizeBlocks,
  layoutDims,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
} from '../kernels';
import {
  bytesOf,
  floatTensor,
  layoutOrSkip,
  needOpset,
  replaceWeight,
  requireFinite,
  reshapeTo,
  type EditContext,
  type NewTensor,
  type OnnxOutcome,
  type WeightJob,
} from '../onnx/methods';
import { intAttr, node, reshapeBytes, tensorProto } from '../onnx/sizes';
import {
  asFloat32,
  encodeFloats,
  headerEntry,
  INT8_SCALE_SUFFIX,
  sameTensor,
} from '../safetensorsValues';
import { inputAxisProblem, needFinite, needLayout, type CompressionMethodModule } from './types';

export const INT8_LEVEL: SweepLevel = {
  key: 'int8',
  label: 'int8',
  method: 'int8',
  options: { method: 'int8' },
  x: 8,
};

/** The opset int8's per-axis DequantizeLinear needs, and what it is named in reasons. */
const INT8_OPSET = 13;
const INT8_NODE = 'per-axis DequantizeLinear';

async function int8Onnx(ctx: EditContext, job: WeightJob): Promise<OnnxOutcome> {
  const layout = layoutOrSkip(job, 'int8 per-channel');
  requireFinite(job);
  needOpset(ctx, INT8_OPSET, INT8_NODE);
  const quantized = quantizeInt8PerChannel(job.values, layout);
  const name = job.slot.name;
  const qName = ctx.names.fresh(`${name}_quantized`);
  const scaleName = ctx.names.fresh(`${name}_scale`);
  const axis = layout.inputAxis === 0 ? 1 : 0;
  const made = reshapeTo(ctx, job, (output) =>
    makeNode(
      'DequantizeLinear',
      [qName, scaleName],
      [output],
      ctx.names.fresh(`${name}_DequantizeLinear`),
      [attr.int('axis', axis)],
    ),
  );
  const tensors: NewTensor[] = [
    {
      name: qName,
      dataType: ONNX_DATA_TYPE.INT8,
      dims: [layout.rows, layout.cols],
      bytes: bytesOf(quantized.q),
    },
    floatTensor(scaleName, [quantized.scales.length], quantized.scales),
    ...made.tensors,
  ];
  replaceWeight(ctx, job.slot, tensors, made.nodes);
  const restored = dequantizeBlocks(quantized, layout);
  return {
    bytesAfter: tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError: relativeFrobeniusError(job.values, restored),
    detail: `int8 per output channel, symmetric (DequantizeLinear axis ${axis}, ${quantized.scales.length} scales)`,
  };
}

export const int8: CompressionMethodModule = {
  ...METHOD_INFO.int8,
  sweepLevels: [INT8_LEVEL],
  planLevels: [INT8_LEVEL],
  sweepProblem: inputAxisProblem,
  async reconstruct(values, layout, level) {
    const matrix = needLayout(layout, level);
    needFinite(values, level);
    return dequantizeBlocks(quantizeInt8PerChannel(values, matrix), matrix);
  },
  formats: {
    onnx: {
      feasible: (weight) =>
        weight.layout
          ? weight.opsetProblem(INT8_OPSET, INT8_NODE)
          : `int8 needs an input axis: ${weight.layoutProblem}`,
      apply: (ctx, job) => int8Onnx(ctx, job),
      async predictBytes(entry, weight, options) {
        const { info } = entry;
        const layout = weight.layout!;
        const slotName = weight.slot.name;
        const constant = weight.slot.kind !== 'initializer';
        const { channels } = layoutDims(layout);
        const q = `${slotName}_quantized`;
        const scale = `${slotName}_scale`;
        const out = info.shape.length === 2 ? slotName : `${slotName}_2d`;
        return {
          options,
          bytes:
            tensorProto(q, [layout.rows, layout.cols], info.parameterCount, constant) +
            tensorProto(scale, [channels], channels * 4, constant) +
            node(
              'DequantizeLinear',
              `${slotName}_DequantizeLinear`,
              [q, scale],
              [out],
              intAttr('axis', 1),
            ) +
            reshapeBytes(slotName, info.shape.length, constant) -
            tensorProto(slotName, info.shape, info.byteLength, constant) +
            info.byteLength,
        };
      },
    },
    safetensors: {
      feasible: (entry) =>
        entry.info.shape.length < 2 ? 'int8 keeps biases and vectors as they are' : null,
      async apply(tensor, options: CompressionOptions) {
        const { name, shape, dtype, layout } = tensor;
        if (!layout) return tensor.needMatrix;
        const quantized = quantizeInt8PerChannel(asFloat32(tensor.original), layout);
        const dequantized = dequantizeBlocks(quantized, layout);
        if (options.storeQuantized) {
          return {
            tensors: [
              {
                name,
                dtype: 'int8',
                shape,
                bytes: new Uint8Array(
                  quantized.q.buffer,
                  quantized.q.byteOffset,
                  quantized.q.byteLength,
                ),
              },
              {
                name: `${name}${INT8_SCALE_SUFFIX}`,
                dtype: 'float32',
                shape: [layout.rows],
                bytes: new Uint8Array(quantized.scales.buffer),
              },
            ],
            values: dequantized,
            detail: `int8 per channel, stored as I8 + ${name}${INT8_SCALE_SUFFIX} (F32)`,
          };
        }
        return sameTensor(
          tensor,
          encodeFloats(dequantized, dtype),
          `int8 per channel round trip, stored as ${dtype}`,
        );
      },
      // Plans always store int8 with its scales: the round trip alone saves nothing.
      predictBytes(entry, _options, fileBytes) {
        const { info } = entry;
        const rows = info.shape[0]!;
        return {
          options: { method: 'int8', storeQuantized: true },
          bytes:
            info.parameterCount +
            rows * 4 +
            headerEntry(`${info.name}${INT8_SCALE_SUFFIX}`, 'F32', [rows], fileBytes),
        };
      },
    },
  },
};

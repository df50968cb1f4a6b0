/**
 * int8: symmetric, one scale per output channel. ONNX stores the int8 values and scales
 * with a DequantizeLinear (opset 13, per axis) computing W where the model's opset allows
 * it, else with a Cast and a Mul (onnx/dequantize.ts); a float16/bfloat16 W is computed in
 * its dtype (scales of that dtype from opset 19, else a Cast after); safetensors stores the
 * round-tripped values in the original dtype, or with `storeQuantized` the I8 values and
 * a `<name>.scale` F32 tensor (the convention written into the file's metadata).
 */
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import type { DType } from '../../../shared/dtypes';
import { attr } from '../../onnx';
import {
  dequantizeBlocks,
  layoutDims,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  type MatrixLayout,
  type QuantizedBlocks,
} from '../kernels';
import {
  bytesOf,
  dequantizeLinearWeight,
  layoutOrSkip,
  needOpset,
  PER_AXIS_OPSET,
  replaceWeight,
  requireFinite,
  roundedTo,
  type EditContext,
  type OnnxOutcome,
  type WeightJob,
  type WrittenWeight,
  dequantizeOutput,
} from '../onnx/methods';
import { int8WithCastAndMul } from '../onnx/dequantize';
import { measureWritten, zeroBlocks } from '../onnx/sizes';
import {
  asFloat32,
  encodeFloats,
  headerEntry,
  INT8_SCALE_SUFFIX,
  sameTensor,
} from '../safetensorsValues';
import {
  inputAxisProblem,
  needFinite,
  needLayout,
  quantizedProblem,
  type CompressionMethodModule,
} from './types';

export const INT8_LEVEL: SweepLevel = {
  key: 'int8',
  label: 'int8',
  method: 'int8',
  options: { method: 'int8' },
  x: 8,
};

/** The tensors and nodes computing W from int8 codes (see the module comment), with words for the report. */
function int8Written(
  ctx: EditContext,
  job: WeightJob,
  layout: MatrixLayout,
  quantized: QuantizedBlocks,
): WrittenWeight & { form: string; scaleDtype: DType } {
  const dtype = job.entry.info.dtype;
  if (!ctx.opsetAllows(PER_AXIS_OPSET)) {
    return {
      ...int8WithCastAndMul(ctx, job, layout, quantized),
      form: `Cast and Mul, opset ${ctx.sourceOpset} kept`,
      scaleDtype: 'float32',
    };
  }
  const scaleDtype: DType = dequantizeOutput(dtype, ctx.sourceOpset);
  const axis = layout.inputAxis === 0 ? 1 : 0;
  quantized.scales.set(roundedTo(quantized.scales, scaleDtype));
  return {
    ...dequantizeLinearWeight(ctx, job, layout, {
      codes: { dataType: ONNX_DATA_TYPE.INT8, bytes: bytesOf(quantized.q) },
      scales: { dtype: scaleDtype, dims: [quantized.scales.length], values: quantized.scales },
      attributes: [attr.int('axis', axis)],
    }),
    form: `DequantizeLinear axis ${axis}`,
    scaleDtype,
  };
}

async function int8Onnx(ctx: EditContext, job: WeightJob): Promise<OnnxOutcome> {
  const layout = layoutOrSkip(job, 'int8 per-channel');
  requireFinite(job);
  const dtype = job.entry.info.dtype;
  const quantized = quantizeInt8PerChannel(job.values, layout);
  if (ctx.opsetAllows(PER_AXIS_OPSET)) needOpset(ctx, PER_AXIS_OPSET, 'per-axis DequantizeLinear');
  const written = int8Written(ctx, job, layout, quantized);
  replaceWeight(ctx, job.slot, written.tensors, written.nodes);
  const restored = roundedTo(dequantizeBlocks(quantized, layout), dtype);
  const cast = dtype === written.scaleDtype ? '' : `, Cast to ${dtype}`;
  return {
    bytesAfter: written.tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError: relativeFrobeniusError(job.values, restored),
    detail: `int8 per output channel, symmetric (${written.form}, ${quantized.scales.length} scales${written.scaleDtype === 'float32' ? '' : ` in ${written.scaleDtype}`}${cast})`,
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
      storage: [{ label: 'Int8 per channel (DequantizeLinear)', options: {} }],
      fileSize: { kind: 'bits', bits: 8, extra: 'a scale per output channel' },
      feasible: (weight) =>
        quantizedProblem(weight.encoding) ??
        (weight.layout ? null : `int8 needs an input axis: ${weight.layoutProblem}`),
      apply: (ctx, job) => int8Onnx(ctx, job),
      async predictBytes(entry, weight, options) {
        const layout = weight.layout!;
        return {
          options,
          bytes: measureWritten(entry, weight, (ctx, job) =>
            int8Written(ctx, job, layout, zeroBlocks(layout, layoutDims(layout).inputs)),
          ),
        };
      },
    },
    safetensors: {
      storage: [
        {
          label: 'Fake-quant',
          description: 'int8 round trip, stored back in the original dtype',
          options: {},
        },
        {
          label: 'Int8 + scales',
          description: '<name> as I8 and <name>.scale as F32, per output channel',
          options: { storeQuantized: true },
          fileSize: { kind: 'bits', bits: 8, extra: 'a float32 scale per output channel' },
        },
      ],
      // The default way (fake-quant) rounds the values and stores them back as they were.
      fileSize: { kind: 'same', why: 'int8 rounding only, stored back in the original dtype' },
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

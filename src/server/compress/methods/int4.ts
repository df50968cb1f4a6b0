/**
 * int4: symmetric, one scale per block of `blockSize` inputs (INT4_BLOCK_SIZES). ONNX
 * MatMul weights read directly become com.microsoft MatMulNBits (the default `int4Format`;
 * float32 and float16 weights, scales in W's dtype); other weights, or `int4Format:
 * 'dequantizelinear'`, store INT4 values with an opset-21 DequantizeLinear (block_size)
 * where the model's opset can be raised to 21, else two codes per byte unpacked with
 * standard operators (onnx/dequantize.ts). safetensors stores the round-tripped values
 * in the original dtype, which saves nothing on disk: plans leave it out there.
 */
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_DEFAULTS, METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { ONNX_DATA_TYPE, onnxCodeOf } from '../../formats/onnxDataTypes';
import { DTYPES, type DType } from '../../../shared/dtypes';
import { int4WithStandardOps } from '../onnx/dequantize';
import {
  dequantizeBlocks,
  layoutDims,
  packNibbles,
  quantizeInt4Blocks,
  relativeFrobeniusError,
  type MatrixLayout,
  type QuantizedBlocks,
} from '../kernels';
import { attr, ensureDomain, isGraphOutput, onlyDirectMatMul, raiseIrVersion } from '../../onnx';
import {
  BLOCKED_OPSET,
  dequantizeLinearWeight,
  dequantizeOutput,
  layoutOrSkip,
  needOpset,
  replaceWeight,
  requireFinite,
  roundedTo,
  type EditContext,
  type NewTensor,
  type OnnxOutcome,
  type WeightJob,
  type WrittenWeight,
} from '../onnx/methods';
import { intAttr, measureWritten, tensorProto, text, zeroBlocks } from '../onnx/sizes';
import { asFloat32, encodeFloats, sameTensor } from '../safetensorsValues';
import {
  inputAxisProblem,
  needFinite,
  needLayout,
  quantizedProblem,
  type CompressionMethodModule,
} from './types';

export function int4Level(blockSize: number): SweepLevel {
  return {
    key: `int4:${blockSize}`,
    label: `int4 b${blockSize}`,
    method: 'int4',
    options: { method: 'int4', blockSize },
    x: 4 + 32 / blockSize,
  };
}

function blockSizeOf(options: CompressionOptions): number {
  return options.blockSize ?? METHOD_DEFAULTS.blockSize;
}

/** Whether MatMulNBits computes W's consumers: MatMuls reading it directly, in float32 or float16. */
export function takesMatMulNBits(
  options: CompressionOptions,
  direct: boolean,
  kind: string,
  dtype: DType,
): boolean {
  const format = options.int4Format ?? METHOD_DEFAULTS.int4Format;
  return (
    format === 'matmulnbits' &&
    direct &&
    kind === 'matmul' &&
    (dtype === 'float32' || dtype === 'float16')
  );
}

/**
 * The tensors and nodes computing W from int4 codes without MatMulNBits: DequantizeLinear
 * (opset 21; float16 scales for float16 W) where the opset allows it, else standard operators.
 */
function int4Written(
  ctx: EditContext,
  job: WeightJob,
  layout: MatrixLayout,
  quantized: QuantizedBlocks,
): WrittenWeight & { form: string; scaleDtype: DType } {
  const dtype = job.entry.info.dtype;
  const blockSize = quantized.blockSize;
  if (!ctx.opsetAllows(BLOCKED_OPSET)) {
    return {
      ...int4WithStandardOps(ctx, job, layout, quantized),
      form: `two per byte, unpacked with Cast, Div, Floor, Mul and Sub; opset ${ctx.sourceOpset} kept`,
      scaleDtype: 'float32',
    };
  }
  const scaleDtype = dequantizeOutput(dtype, BLOCKED_OPSET);
  quantized.scales.set(roundedTo(quantized.scales, scaleDtype));
  const { channels } = layoutDims(layout);
  const blocks = quantized.blocks;
  let scales = quantized.scales;
  let scaleDims: number[];
  if (layout.inputAxis === 1) {
    scaleDims = [layout.rows, blocks];
  } else {
    // Blocks run down the rows: the scale tensor is [blocks, cols].
    scales = new Float32Array(blocks * channels);
    for (let c = 0; c < channels; c++) {
      for (let b = 0; b < blocks; b++) scales[b * channels + c] = quantized.scales[c * blocks + b]!;
    }
    scaleDims = [blocks, layout.cols];
  }
  return {
    ...dequantizeLinearWeight(ctx, job, layout, {
      codes: { dataType: ONNX_DATA_TYPE.INT4, bytes: packNibbles(quantized.q) },
      scales: { dtype: scaleDtype, dims: scaleDims, values: scales },
      attributes: [attr.int('axis', layout.inputAxis), attr.int('block_size', blockSize)],
    }),
    form: `DequantizeLinear opset 21, axis ${layout.inputAxis}`,
    scaleDtype,
  };
}

async function int4Onnx(
  ctx: EditContext,
  job: WeightJob,
  options: CompressionOptions,
): Promise<OnnxOutcome> {
  const blockSize = blockSizeOf(options);
  const layout = layoutOrSkip(job, 'int4 block-wise');
  requireFinite(job);
  const name = job.slot.name;
  const dtype = job.entry.info.dtype;
  const quantized = quantizeInt4Blocks(job.values, layout, blockSize);
  const direct = onlyDirectMatMul(job.uses) && !isGraphOutput(name, job.slot.scope);
  if (takesMatMulNBits(options, direct, layout.kind, dtype)) {
    // MatMulNBits computes in A's type: its scales are of W's dtype.
    quantized.scales.set(roundedTo(quantized.scales, dtype));
    const relativeError = relativeFrobeniusError(
      job.values,
      roundedTo(dequantizeBlocks(quantized, layout), dtype),
    );
    const k = layout.rows;
    const n = layout.cols;
    const blocks = quantized.blocks;
    const blob = blockSize / 2;
    // B as MatMulNBits stores it: [N, blocks, blockSize/2] bytes, value + 8, low nibble first.
    const packed = new Uint8Array(n * blocks * blob).fill(0x88);
    for (let col = 0; col < n; col++) {
      for (let row = 0; row < k; row++) {
        const nibble = (quantized.q[row * n + col]! + 8) & 0x0f;
        const at = (col * blocks + Math.floor(row / blockSize)) * blob + ((row % blockSize) >> 1);
        packed[at] = row & 1 ? (packed[at]! & 0x0f) | (nibble << 4) : (packed[at]! & 0xf0) | nibble;
      }
    }
    const bName = ctx.names.fresh(`${name}_nbits`);
    const scaleName = ctx.names.fresh(`${name}_scale`);
    const scaleBytes = encodeFloats(quantized.scales, dtype);
    const tensors: NewTensor[] = [
      { name: bName, dataType: ONNX_DATA_TYPE.UINT8, dims: [n, blocks, blob], bytes: packed },
      { name: scaleName, dataType: onnxCodeOf(dtype), dims: [n * blocks], bytes: scaleBytes },
    ];
    const note = ensureDomain(ctx.model, 'com.microsoft', 1);
    if (note) ctx.notes.push(`${note} (MatMulNBits)`);
    for (const use of job.uses) {
      use.node.opType = 'MatMulNBits';
      use.node.domain = 'com.microsoft';
      use.node.input = [use.node.input![0]!, bName, scaleName];
      use.node.attribute = [
        attr.int('K', k),
        attr.int('N', n),
        attr.int('bits', 4),
        attr.int('block_size', blockSize),
      ];
    }
    replaceWeight(ctx, job.slot, tensors, []);
    return {
      bytesAfter: packed.length + scaleBytes.length,
      relativeError,
      detail: `int4 block ${blockSize}, symmetric (com.microsoft MatMulNBits, K=${k}, N=${n}${dtype === 'float32' ? '' : `, ${dtype} scales`})`,
    };
  }
  if (ctx.opsetAllows(BLOCKED_OPSET)) {
    needOpset(ctx, BLOCKED_OPSET, 'int4 block-wise DequantizeLinear');
    const ir = raiseIrVersion(ctx.model, 10);
    if (ir) ctx.notes.push(`${ir} (INT4 tensors)`);
  }
  const written = int4Written(ctx, job, layout, quantized);
  replaceWeight(ctx, job.slot, written.tensors, written.nodes);
  const restored = roundedTo(dequantizeBlocks(quantized, layout), dtype);
  const cast = dtype === written.scaleDtype ? '' : `, Cast to ${dtype}`;
  return {
    bytesAfter: written.tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError: relativeFrobeniusError(job.values, restored),
    detail: `int4 block ${blockSize}, symmetric (${written.form}${cast})`,
  };
}

const INT4_LEVELS = [int4Level(32), int4Level(128)];

export const int4: CompressionMethodModule = {
  ...METHOD_INFO.int4,
  sweepLevels: INT4_LEVELS,
  planLevels: INT4_LEVELS,
  sweepProblem: inputAxisProblem,
  async reconstruct(values, layout, level) {
    const matrix = needLayout(layout, level);
    needFinite(values, level);
    return dequantizeBlocks(quantizeInt4Blocks(values, matrix, blockSizeOf(level.options)), matrix);
  },
  formats: {
    onnx: {
      storage: [
        {
          label: 'MatMulNBits',
          description: 'com.microsoft operator for MatMul weights',
          options: { int4Format: 'matmulnbits' },
        },
        {
          label: 'DequantizeLinear',
          description: 'opset 21 INT4 with block_size',
          options: { int4Format: 'dequantizelinear' },
        },
      ],
      fileSize: { kind: 'bits', bits: 4, extra: 'a scale per block' },
      feasible: (weight) =>
        quantizedProblem(weight.encoding) ??
        (weight.layout ? null : `int4 needs an input axis: ${weight.layoutProblem}`),
      apply: int4Onnx,
      async predictBytes(entry, weight, options) {
        const { info } = entry;
        const layout = weight.layout!;
        const slotName = weight.slot.name;
        const constant = weight.slot.kind !== 'initializer';
        const removed = tensorProto(slotName, info.shape, info.byteLength, constant);
        const blockSize = blockSizeOf(options);
        const { inputs, channels } = layoutDims(layout);
        const blocks = Math.ceil(inputs / blockSize);
        const scale = `${slotName}_scale`;
        if (takesMatMulNBits(options, weight.directMatMul, layout.kind, weight.dtype)) {
          const scaleWidth = DTYPES[weight.dtype].bits / 8;
          const b = `${slotName}_nbits`;
          const data = channels * blocks * (blockSize / 2);
          const perUse =
            text('MatMulNBits') -
            text('MatMul') +
            text('com.microsoft') +
            text(b) +
            text(scale) -
            text(slotName) +
            intAttr('K', layout.rows) +
            intAttr('N', layout.cols) +
            intAttr('bits', 4) +
            intAttr('block_size', blockSize);
          return {
            options,
            bytes:
              tensorProto(b, [channels, blocks, blockSize / 2], data, constant) +
              tensorProto(scale, [channels * blocks], channels * blocks * scaleWidth, constant) +
              weight.consumers * perUse -
              removed +
              info.byteLength,
          };
        }
        return {
          options,
          bytes: measureWritten(entry, weight, (ctx, job) =>
            int4Written(ctx, job, layout, zeroBlocks(layout, blockSize)),
          ),
        };
      },
    },
    safetensors: {
      storage: [
        {
          label: '',
          description: 'int4 round trip, stored back in the original dtype',
          options: {},
        },
      ],
      fileSize: { kind: 'same', why: 'int4 rounding only, stored back in the original dtype' },
      feasible: () => null,
      async apply(tensor, options) {
        if (!tensor.layout) return tensor.needMatrix;
        const blockSize = blockSizeOf(options);
        const quantized = quantizeInt4Blocks(asFloat32(tensor.original), tensor.layout, blockSize);
        return sameTensor(
          tensor,
          encodeFloats(dequantizeBlocks(quantized, tensor.layout), tensor.dtype),
          `int4 block ${blockSize} round trip, stored as ${tensor.dtype}`,
        );
      },
      predictBytes: () =>
        'stored as dense values of the original dtype in safetensors: no smaller on disk',
    },
  },
};

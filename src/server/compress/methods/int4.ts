/**
 * int4: symmetric, one float32 scale per block of `blockSize` inputs (INT4_BLOCK_SIZES).
 * ONNX MatMul weights read directly become com.microsoft MatMulNBits (the default
 * `int4Format`); other weights, or `int4Format: 'dequantizelinear'`, store INT4 values with
 * an opset-21 DequantizeLinear (block_size). safetensors stores the round-tripped values
 * in the original dtype, which saves nothing on disk: plans leave it out there.
 */
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_DEFAULTS, METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import {
  dequantizeBlocks,
  layoutDims,
  packNibbles,
  quantizeInt4Blocks,
  relativeFrobeniusError,
} from '../kernels';
import {
  attr,
  ensureDomain,
  isGraphOutput,
  makeNode,
  onlyDirectMatMul,
  raiseIrVersion,
} from '../../onnx';
import {
  floatTensor,
  layoutOrSkip,
  needOpset,
  replaceWeight,
  requireFinite,
  reshapeTo,
  Skip,
  type EditContext,
  type NewTensor,
  type OnnxOutcome,
  type WeightJob,
} from '../onnx/methods';
import { intAttr, node, reshapeBytes, tensorProto, text } from '../onnx/sizes';
import { asFloat32, encodeFloats, sameTensor } from '../safetensorsValues';
import { inputAxisProblem, needFinite, needLayout, type CompressionMethodModule } from './types';

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

/** The opset int4's block-wise DequantizeLinear needs, and what it is named in reasons. */
const INT4_OPSET = 21;
const INT4_NODE = 'int4 block-wise DequantizeLinear';

/** Whether `options` write this weight as MatMulNBits (no opset needed) rather than DequantizeLinear. */
function writesMatMulNBits(
  options: CompressionOptions,
  directMatMul: boolean,
  layout: { kind: string },
): boolean {
  const format = options.int4Format ?? METHOD_DEFAULTS.int4Format;
  return format === 'matmulnbits' && directMatMul && layout.kind === 'matmul';
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
  const quantized = quantizeInt4Blocks(job.values, layout, blockSize);
  const restored = dequantizeBlocks(quantized, layout);
  const relativeError = relativeFrobeniusError(job.values, restored);
  if (writesMatMulNBits(options, onlyDirectMatMul(job.uses), layout)) {
    if (isGraphOutput(name, job.slot.scope)) throw new Skip('is also a graph output');
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
    const tensors: NewTensor[] = [
      { name: bName, dataType: ONNX_DATA_TYPE.UINT8, dims: [n, blocks, blob], bytes: packed },
      floatTensor(scaleName, [n * blocks], quantized.scales),
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
      bytesAfter: packed.length + quantized.scales.byteLength,
      relativeError,
      detail: `int4 block ${blockSize}, symmetric (com.microsoft MatMulNBits, K=${k}, N=${n})`,
    };
  }
  needOpset(ctx, INT4_OPSET, INT4_NODE);
  const ir = raiseIrVersion(ctx.model, 10);
  if (ir) ctx.notes.push(`${ir} (INT4 tensors)`);
  const qName = ctx.names.fresh(`${name}_quantized`);
  const scaleName = ctx.names.fresh(`${name}_scale`);
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
  const made = reshapeTo(ctx, job, (output) =>
    makeNode(
      'DequantizeLinear',
      [qName, scaleName],
      [output],
      ctx.names.fresh(`${name}_DequantizeLinear`),
      [attr.int('axis', layout.inputAxis), attr.int('block_size', blockSize)],
    ),
  );
  const tensors: NewTensor[] = [
    {
      name: qName,
      dataType: ONNX_DATA_TYPE.INT4,
      dims: [layout.rows, layout.cols],
      bytes: packNibbles(quantized.q),
    },
    floatTensor(scaleName, scaleDims, scales),
    ...made.tensors,
  ];
  replaceWeight(ctx, job.slot, tensors, made.nodes);
  return {
    bytesAfter: tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError,
    detail: `int4 block ${blockSize}, symmetric (DequantizeLinear opset 21, axis ${layout.inputAxis})`,
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
      feasible: (weight, options) => {
        if (!weight.layout) return `int4 needs an input axis: ${weight.layoutProblem}`;
        if (writesMatMulNBits(options, weight.directMatMul, weight.layout)) return null;
        return weight.opsetProblem(INT4_OPSET, INT4_NODE);
      },
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
        if (writesMatMulNBits(options, weight.directMatMul, layout)) {
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
              tensorProto(scale, [channels * blocks], channels * blocks * 4, constant) +
              weight.consumers * perUse -
              removed +
              info.byteLength,
          };
        }
        const q = `${slotName}_quantized`;
        const out = info.shape.length === 2 ? slotName : `${slotName}_2d`;
        return {
          options,
          bytes:
            tensorProto(
              q,
              [layout.rows, layout.cols],
              Math.ceil(info.parameterCount / 2),
              constant,
            ) +
            tensorProto(scale, [blocks, channels], channels * blocks * 4, constant) +
            node(
              'DequantizeLinear',
              `${slotName}_DequantizeLinear`,
              [q, scale],
              [out],
              intAttr('axis', 1) + intAttr('block_size', blockSize),
            ) +
            reshapeBytes(slotName, info.shape.length, constant) -
            removed +
            info.byteLength,
        };
      },
    },
    safetensors: {
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

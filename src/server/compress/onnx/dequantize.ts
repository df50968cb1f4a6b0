/**
 * Quantized weights written with operators every opset from 7 has, for models whose opset
 * has no DequantizeLinear of the kind needed and cannot be raised to one (see methods.ts):
 *
 * - int8: the int8 codes, a Cast to float32 and a Mul by the per-channel scales (shaped to
 *   broadcast along the channel axis).
 * - int4: two codes per byte, unpacked with float arithmetic (BitShift needs opset 11):
 *   byte j holds code j + 8 in its low nibble and code j + P/2 + 8 in its high nibble, over
 *   the codes of the matrix with its input axis padded to whole blocks (P of them). The
 *   nodes: Cast, Div by 16, Floor (high nibbles), Mul and Sub (low nibbles), Concat, Sub 8,
 *   Reshape to [channels, blocks, block] (or [blocks, block, channels]), Mul by the block
 *   scales, Reshape back, and a Slice dropping the padding when there is any (Slice in the
 *   form of the model's opset: attributes before 10, inputs from 10).
 *
 * `computeWeight` then adds the Reshape to W's shape and the Cast to W's dtype.
 */
import type { onnx } from 'onnx-proto';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import { attr, defaultOpset, makeNode } from '../../onnx';
import { layoutDims, type MatrixLayout, type QuantizedBlocks } from '../kernels';
import {
  bytesOf,
  computeWeight,
  floatTensor,
  int64Bytes,
  type EditContext,
  type NewTensor,
  type WeightJob,
  type WrittenWeight,
} from './methods';

/** First opset whose Slice takes starts, ends and axes as inputs. */
const SLICE_INPUTS_OPSET = 10;

function scalar(name: string, value: number): NewTensor {
  return floatTensor(name, [], Float32Array.of(value));
}

function int64Tensor(name: string, values: readonly number[]): NewTensor {
  return { name, dataType: ONNX_DATA_TYPE.INT64, dims: [values.length], bytes: int64Bytes(values) };
}

/** int8 codes [rows, cols], Cast to float32, times the per-channel scales. */
export function int8WithCastAndMul(
  ctx: EditContext,
  job: WeightJob,
  layout: MatrixLayout,
  quantized: QuantizedBlocks,
): WrittenWeight {
  const name = job.slot.name;
  const qName = ctx.names.fresh(`${name}_quantized`);
  const scaleName = ctx.names.fresh(`${name}_scale`);
  const castName = ctx.names.fresh(`${name}_codes`);
  const { channels } = layoutDims(layout);
  // Channels along rows: [rows, 1]; along columns: [cols] broadcasts over the last axis.
  const scaleDims = layout.inputAxis === 1 ? [channels, 1] : [channels];
  const made = computeWeight(ctx, job, [layout.rows, layout.cols], ONNX_DATA_TYPE.FLOAT, (out) => [
    makeNode('Cast', [qName], [castName], ctx.names.fresh(`${name}_Cast_codes`), [
      attr.int('to', ONNX_DATA_TYPE.FLOAT),
    ]),
    makeNode('Mul', [castName, scaleName], [out], ctx.names.fresh(`${name}_Mul_scale`)),
  ]);
  return {
    tensors: [
      {
        name: qName,
        dataType: ONNX_DATA_TYPE.INT8,
        dims: [layout.rows, layout.cols],
        bytes: bytesOf(quantized.q),
      },
      floatTensor(scaleName, scaleDims, quantized.scales),
      ...made.tensors,
    ],
    nodes: made.nodes,
  };
}

/** The padded code grid (see the module comment) packed two codes per byte, halves apart. */
function packHalves(quantized: QuantizedBlocks, layout: MatrixLayout): Uint8Array {
  const { inputs, channels } = layoutDims(layout);
  const { q, blocks, blockSize } = quantized;
  const span = blocks * blockSize;
  const padded = channels * span;
  const codes = new Int8Array(padded);
  if (layout.inputAxis === 0) {
    codes.set(q); // padding adds rows at the end
  } else {
    for (let c = 0; c < channels; c++)
      codes.set(q.subarray(c * inputs, (c + 1) * inputs), c * span);
  }
  const half = padded >> 1;
  const packed = new Uint8Array(half);
  for (let j = 0; j < half; j++) {
    packed[j] = ((codes[j]! + 8) & 0x0f) | (((codes[j + half]! + 8) & 0x0f) << 4);
  }
  return packed;
}

/** int4 codes packed two per uint8 and unpacked with Cast, Div, Floor, Mul, Sub and Concat. */
export function int4WithStandardOps(
  ctx: EditContext,
  job: WeightJob,
  layout: MatrixLayout,
  quantized: QuantizedBlocks,
): WrittenWeight {
  const name = job.slot.name;
  const { inputs, channels } = layoutDims(layout);
  const { blocks, blockSize } = quantized;
  const span = blocks * blockSize;
  const packed = packHalves(quantized, layout);
  const fresh = (suffix: string): string => ctx.names.fresh(`${name}_${suffix}`);
  const packedName = fresh('int4_packed');
  const sixteen = fresh('sixteen');
  const eight = fresh('eight');
  const scaleName = fresh('scale');
  const blockShape = fresh('block_shape');
  const gridShape = fresh('grid_shape');
  const tensors: NewTensor[] = [
    { name: packedName, dataType: ONNX_DATA_TYPE.UINT8, dims: [packed.length], bytes: packed },
    scalar(sixteen, 16),
    scalar(eight, 8),
  ];
  let scales = quantized.scales;
  let scaleDims: number[];
  let blockDims: number[];
  let gridDims: number[];
  if (layout.inputAxis === 1) {
    scaleDims = [channels, blocks, 1];
    blockDims = [channels, blocks, blockSize];
    gridDims = [channels, span];
  } else {
    // Blocks run down the rows: scales [blocks, 1, channels].
    scales = new Float32Array(blocks * channels);
    for (let c = 0; c < channels; c++) {
      for (let b = 0; b < blocks; b++) scales[b * channels + c] = quantized.scales[c * blocks + b]!;
    }
    scaleDims = [blocks, 1, channels];
    blockDims = [blocks, blockSize, channels];
    gridDims = [span, channels];
  }
  tensors.push(floatTensor(scaleName, scaleDims, scales));
  tensors.push(int64Tensor(blockShape, blockDims));
  const paddedInputs = span !== inputs;
  const opset = defaultOpset(ctx.model);
  const v = {
    bytes: fresh('int4_bytes'),
    div: fresh('int4_div'),
    high: fresh('int4_high'),
    high16: fresh('int4_high16'),
    low: fresh('int4_low'),
    joined: fresh('int4_joined'),
    codes: fresh('int4_codes'),
    blocked: fresh('int4_blocked'),
    scaled: fresh('int4_scaled'),
  };
  const grid = paddedInputs ? fresh('int4_grid') : undefined;
  if (grid) tensors.push(int64Tensor(gridShape, gridDims));
  const node = (op: string, ins: string[], out: string, attrs: onnx.IAttributeProto[] = []) =>
    makeNode(op, ins, [out], fresh(`${op}`), attrs);
  const made = computeWeight(
    ctx,
    job,
    paddedInputs ? [layout.rows, layout.cols] : blockDims,
    ONNX_DATA_TYPE.FLOAT,
    (out) => {
      const nodes = [
        node('Cast', [packedName], v.bytes, [attr.int('to', ONNX_DATA_TYPE.FLOAT)]),
        node('Div', [v.bytes, sixteen], v.div),
        node('Floor', [v.div], v.high),
        node('Mul', [v.high, sixteen], v.high16),
        node('Sub', [v.bytes, v.high16], v.low),
        node('Concat', [v.low, v.high], v.joined, [attr.int('axis', 0)]),
        node('Sub', [v.joined, eight], v.codes),
        node('Reshape', [v.codes, blockShape], v.blocked),
        node('Mul', [v.blocked, scaleName], paddedInputs ? v.scaled : out),
      ];
      if (!grid) return nodes;
      nodes.push(node('Reshape', [v.scaled, gridShape], grid));
      const axis = layout.inputAxis;
      if (opset < SLICE_INPUTS_OPSET) {
        nodes.push(
          node('Slice', [grid], out, [
            attr.ints('starts', [0]),
            attr.ints('ends', [inputs]),
            attr.ints('axes', [axis]),
          ]),
        );
      } else {
        const [starts, ends, axes] = [
          fresh('slice_starts'),
          fresh('slice_ends'),
          fresh('slice_axes'),
        ];
        tensors.push(
          int64Tensor(starts, [0]),
          int64Tensor(ends, [inputs]),
          int64Tensor(axes, [axis]),
        );
        nodes.push(node('Slice', [grid, starts, ends, axes], out));
      }
      return nodes;
    },
  );
  return { tensors: [...tensors, ...made.tensors], nodes: made.nodes };
}

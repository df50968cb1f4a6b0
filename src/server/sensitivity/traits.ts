/**
 * What a sensitivity sweep can compress each tensor with, following the compressor's own
 * rules: for ONNX the layout the consuming layers fix (src/server/onnx/weights.ts), for
 * safetensors the [out, in·…] matrix with its inputs along each row (as
 * compress/safetensorsTensor.ts sees it). The formats' compression capabilities
 * (FormatCompression.sweepTraits) hand these out; tensors.ts picks the swept tensors.
 */
import { checkLowRankLimits } from '../compress/lowrank';
import { quantizedProblem, type TensorTraits } from '../compress/methods/types';
import { dtypeProblem } from '../compress/onnx/methods';
import type { OpenedModel, TensorEntry } from '../formats/types';
import {
  intAttribute,
  isGraphOutput,
  lowRankReadProblem,
  weightLayout,
  type OnnxModel,
  type TensorSlot,
} from '../onnx';

/** A tensor the sweep compresses, with its traits (see levels.ts). */
export interface SweepTensor extends TensorTraits {
  readonly entry: TensorEntry;
  /** ONNX: where the tensor is stored in the opened model's decoded model. */
  readonly slot?: TensorSlot;
}

/** A tensor that was asked for but that no method applies to, with the reason. */
export interface LeftOutTensor {
  readonly entry: TensorEntry;
  readonly note: string;
}

const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64']);

function lowRankLimitProblem(rows: number, cols: number): string | undefined {
  try {
    checkLowRankLimits(rows, cols);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** ONNX: why the tensor is no weight (undefined when it is) and its traits. */
function onnxTraits(model: OnnxModel, slot: TensorSlot, entry: TensorEntry): TensorTraits | string {
  const info = entry.info;
  if (slot.kind === 'sparse-initializer') return 'sparse initializer (left as stored)';
  if (!slot.proto) return 'Constant given by value_* attributes (left as is)';
  const quantized = quantizedProblem(info.encoding);
  if (quantized) return quantized;
  const dtypeSkip = dtypeProblem(info.dtype);
  if (dtypeSkip) return dtypeSkip;
  if (info.shape.length < 2) {
    return `${info.shape.length === 0 ? 'scalar' : '1-D'} tensor (biases and vectors are left as they are)`;
  }
  const { uses, problem } = model.weightUses(slot.name, slot.scope);
  if (problem) return problem;
  const layout = weightLayout(uses, info.shape);
  if (typeof layout === 'string') return { layoutProblem: layout };
  let lowRankProblem: string | undefined;
  if (layout.kind === 'recurrent' || layout.kind === 'embedding') {
    lowRankProblem = 'low-rank applies to MatMul, Gemm and Conv weights';
  } else if (lowRankReadProblem(uses)) {
    lowRankProblem = lowRankReadProblem(uses);
  } else if (uses.some((u) => u.node.opType === 'Conv' && intAttribute(u.node, 'group', 1) !== 1)) {
    lowRankProblem = 'low-rank of grouped convolutions is not supported (group ≠ 1)';
  } else if (isGraphOutput(slot.name, slot.scope)) {
    lowRankProblem = 'is also a graph output';
  } else {
    lowRankProblem = lowRankLimitProblem(layout.rows, layout.cols);
  }
  return { layout, ...(lowRankProblem ? { lowRankProblem } : {}) };
}

/**
 * ONNX: the traits of each tensor of `model` from its decoded model (onnxModelOf: the
 * layout its consumers fix), or why it is no weight.
 */
export function onnxSweepTraits(
  model: OpenedModel,
  decoded: OnnxModel | undefined,
): (entry: TensorEntry) => SweepTensor | string {
  if (!decoded) throw new Error('the decoded ONNX model is needed');
  decoded.checkSameTensors(model, 'read');
  return (entry) => {
    const slot = decoded.slots[entry.info.index]!;
    const traits = onnxTraits(decoded, slot, entry);
    return typeof traits === 'string' ? traits : { entry, ...traits, slot };
  };
}

/**
 * safetensors: the traits of a tensor seen as [out, in·…], or why it is no weight. Weights
 * it stores quantized (int8 codes with their scales) are left as they are.
 */
export function safetensorsSweepTraits(entry: TensorEntry): SweepTensor | string {
  return quantizedProblem(entry.info.encoding) ?? floatMatrixSweepTraits(entry);
}

/**
 * A float tensor of two or more dimensions as [out, in·…], whatever its encoding: for
 * formats whose methods start from the decoded values (GGUF re-types dequantized blocks).
 */
export function floatMatrixSweepTraits(entry: TensorEntry): SweepTensor | string {
  const traits = floatMatrixTraits(entry);
  return typeof traits === 'string' ? traits : { entry, ...traits };
}

function floatMatrixTraits(entry: TensorEntry): TensorTraits | string {
  const { dtype, shape } = entry.info;
  if (!FLOAT_DTYPES.has(dtype))
    return `${dtype} tensor (only floating-point weights are compressed)`;
  if (shape.length < 2) {
    return `${shape.length === 0 ? 'scalar' : '1-D'} tensor (biases and vectors are left as they are)`;
  }
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  if (rows === 0 || cols === 0) return 'empty tensor';
  const lowRankProblem = lowRankLimitProblem(rows, cols);
  return { layout: { rows, cols, inputAxis: 1 }, ...(lowRankProblem ? { lowRankProblem } : {}) };
}

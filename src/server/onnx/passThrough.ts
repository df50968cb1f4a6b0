/**
 * The one table of ops that only move or re-type a value on its way from a stored tensor
 * to the layer that computes with it. The reader follows them to name a tensor's layer
 * (formats/onnx.ts); compression, sensitivity and planning follow them to find the
 * layers that read a tensor as a weight (weights.ts).
 */
import type { onnx } from 'onnx-proto';
import { isDefaultDomain } from './scopes';

/** Who may look through an op, and which of its inputs carry the value. */
export interface PassThroughOp {
  /** The reader attributes a tensor feeding it to the first other op downstream. */
  readonly reader: boolean;
  /**
   * Compression treats the op's output as the same weight. False for DequantizeLinear:
   * a tensor feeding it is already quantized (or is a scale or zero point), so it is
   * not a weight to compress again, although it belongs to the same layer.
   */
  readonly compress: boolean;
  /** Every input carries part of the value (else only input 0 does; a Reshape's shape or a Slice's bounds do not). */
  readonly anyInput: boolean;
  /** Changes which axis is which: a layout read through it is unknown. */
  readonly rearranges: boolean;
}

const MOVE: PassThroughOp = { reader: true, compress: true, anyInput: false, rearranges: false };
const REARRANGE: PassThroughOp = { ...MOVE, rearranges: true };

export const PASS_THROUGH_OPS: ReadonlyMap<string, PassThroughOp> = new Map([
  ['Identity', MOVE],
  ['Cast', MOVE],
  ['CastLike', MOVE],
  ['Transpose', REARRANGE],
  ['Reshape', REARRANGE],
  ['Flatten', REARRANGE],
  ['Squeeze', MOVE],
  ['Unsqueeze', MOVE],
  // Exporters split fused weights (an LSTM's four gates) and join them again.
  ['Slice', MOVE],
  ['Split', MOVE],
  ['Concat', { ...MOVE, anyInput: true }],
  // Its scale and zero point belong to the weight too.
  ['DequantizeLinear', { reader: true, compress: false, anyInput: true, rearranges: false }],
]);

/** Steps followed through pass-through ops from a tensor towards its layers. */
export const MAX_PASS_THROUGH_STEPS = 16;

/**
 * The table's entry when `node` passes the value it reads at `inputIndex` on to its
 * outputs for `who`; undefined when it does not.
 */
export function passesThrough(
  node: onnx.INodeProto,
  inputIndex: number,
  who: 'reader' | 'compress',
): PassThroughOp | undefined {
  if (!isDefaultDomain(node.domain)) return undefined;
  const entry = PASS_THROUGH_OPS.get(node.opType ?? '');
  if (!entry?.[who]) return undefined;
  return entry.anyInput || inputIndex === 0 ? entry : undefined;
}

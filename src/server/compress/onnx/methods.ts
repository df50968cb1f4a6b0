/**
 * What the method modules (compress/methods/) share to edit the decoded ONNX model, one
 * weight at a time.
 *
 * A weight `W` keeps its name wherever its consumers stay as they are: pruning rewrites
 * its values; int8, int4 (DequantizeLinear) and float16/bfloat16 store a smaller tensor
 * and add the nodes that compute `W` from it (DequantizeLinear or Cast, then a Reshape
 * back to W's shape when the quantized form is 2-D), placed where W was defined. Methods
 * that change the consumers rewrite them: MatMulNBits replaces each MatMul reading W;
 * low-rank replaces each MatMul/Gemm/Conv by two.
 *
 * float16 and bfloat16 weights are compressed from their float32 values and W keeps its
 * dtype: pruned values and low-rank factors are stored in it, and the nodes computing W end
 * with a Cast to it where they compute in float32 (see `computeWeight`).
 *
 * Newer operators (per-axis DequantizeLinear at 13, block-wise at 21) are used where the
 * model's opset has them or can be raised to it (opset.ts); where it cannot, the methods
 * write forms every opset from 7 has (dequantize.ts). No weight is refused for its opset.
 */
import type { onnx } from 'onnx-proto';
import type { TensorCompressionResult } from '../../../shared/compress';
import { ONNX_DATA_TYPE, onnxCodeOf } from '../../formats/onnxDataTypes';
import type { TensorEntry } from '../../formats/types';
import { decodeValues, type NumericDType } from '../../analysis/decode';
import type { DType } from '../../../shared/dtypes';
import { allFinite, type MatrixLayout } from '../kernels';
import { encodeFloats } from '../safetensorsValues';
import {
  attr,
  defaultOpset,
  irVersionOf,
  makeNode,
  opsetRaiseBlocker,
  raiseOpset,
  weightLayout,
  type NameAllocator,
  type TensorSlot,
  type WeightUse,
} from '../../onnx';

/** First opset with per-axis DequantizeLinear. */
export const PER_AXIS_OPSET = 13;
/** First opset with block-wise (and INT4) DequantizeLinear. */
export const BLOCKED_OPSET = 21;

/** First opset whose DequantizeLinear takes float16 scales (and outputs float16). */
export const HALF_SCALE_OPSET = 19;

/**
 * The type DequantizeLinear outputs (that of its scales) for a weight of `dtype` at
 * `opset`: float16 itself from opset 19, float32 otherwise (then a Cast follows).
 * bfloat16 weights get float32 scales: onnxruntime's CPU DequantizeLinear has no
 * bfloat16 output.
 */
export function dequantizeOutput(dtype: DType, opset: number): DType {
  return dtype === 'float16' && opset >= HALF_SCALE_OPSET ? dtype : 'float32';
}

/** `TensorProto.DataLocation.EXTERNAL`. */
export const DATA_LOCATION_EXTERNAL = 1;

/** IR version from which initializers need not be graph inputs. */
const IR_VERSION_INITIALIZERS_NOT_INPUTS = 4;

/** New tensors derived from an external weight go to the external data file from this size on. */
const EXTERNAL_MIN_BYTES = 1024;

/** The model being edited and what the edits need to share. */
export interface EditContext {
  readonly model: onnx.IModelProto;
  readonly modelPath: string;
  readonly names: NameAllocator;
  /** Tensors whose bytes go to the output's external data file. */
  readonly externalize: Set<onnx.ITensorProto>;
  /** Lines for the report: opset raises, imported domains. */
  readonly notes: string[];
  /** Why the opset could not be raised, per target opset (so that it is tried once). */
  readonly raiseFailures: Map<number, string>;
  /**
   * Whether the source model has opset `target` or can be raised to it, judged on the
   * model as read (so that edits cannot change the choice, and the predictor sees the same).
   */
  readonly opsetAllows: (target: number) => boolean;
  /** The default-domain opset of the model as read. */
  readonly sourceOpset: number;
  /** Checked between the steps of long work (the low-rank SVD). */
  readonly signal?: AbortSignal;
}

/** A weight chosen for compression, with its values and how layers use it. */
export interface WeightJob {
  readonly slot: TensorSlot;
  readonly entry: TensorEntry;
  readonly values: Float32Array;
  readonly uses: readonly WeightUse[];
}

/** A skip with its reason: the tensor stays as it was. */
export class Skip extends Error {
  override readonly name = 'Skip';
}

export interface NewTensor {
  readonly name: string;
  readonly dataType: number;
  readonly dims: readonly number[];
  readonly bytes: Uint8Array;
}

/** What one weight's edit reports. */
export type OnnxOutcome = Pick<TensorCompressionResult, 'bytesAfter' | 'relativeError' | 'detail'>;

export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export function int64Bytes(values: readonly number[]): Uint8Array {
  return bytesOf(BigInt64Array.from(values, (v) => BigInt(v)));
}

function isExternal(slot: TensorSlot): boolean {
  return slot.proto?.dataLocation === DATA_LOCATION_EXTERNAL;
}

function toProto(ctx: EditContext, tensor: NewTensor, external: boolean): onnx.ITensorProto {
  const proto: onnx.ITensorProto = {
    name: tensor.name,
    dataType: tensor.dataType,
    dims: [...tensor.dims],
    rawData: tensor.bytes,
  };
  if (external && tensor.bytes.length >= EXTERNAL_MIN_BYTES) ctx.externalize.add(proto);
  return proto;
}

/**
 * Put `tensors` where the weight was stored (initializers of its graph, or Constant nodes
 * at the Constant's position) and `nodes` right after them; the weight itself goes away.
 */
export function replaceWeight(
  ctx: EditContext,
  slot: TensorSlot,
  tensors: readonly NewTensor[],
  nodes: readonly onnx.INodeProto[],
): void {
  const graph = slot.scope.graph;
  const external = isExternal(slot);
  const protos = tensors.map((t) => toProto(ctx, t, external));
  if (slot.kind === 'initializer') {
    graph.initializer = [...(graph.initializer ?? []).filter((p) => p !== slot.proto), ...protos];
    const stillInitializer = tensors.some((t) => t.name === slot.name);
    if (!stillInitializer) {
      // W is now computed by a node: a graph input of that name would clash with it.
      graph.input = (graph.input ?? []).filter((input) => input.name !== slot.name);
    }
    if (irVersionOf(ctx.model) < IR_VERSION_INITIALIZERS_NOT_INPUTS && slot.scope.depth === 0) {
      // Before IR 4 every initializer of the main graph is also listed as a graph input.
      const listed = new Set((graph.input ?? []).map((input) => input.name));
      const added = tensors
        .filter((t) => !listed.has(t.name))
        .map((t) => ({
          name: t.name,
          type: {
            tensorType: {
              elemType: t.dataType,
              shape: { dim: t.dims.map((d) => ({ dimValue: d })) },
            },
          },
        }));
      graph.input = [...(graph.input ?? []), ...added];
    }
    graph.node = [...nodes, ...(graph.node ?? [])];
    return;
  }
  const list = graph.node ?? [];
  const at = list.indexOf(slot.node!);
  const constants = protos.map((proto) =>
    makeNode('Constant', [], [proto.name!], ctx.names.fresh(`${proto.name}_Constant`), [
      attr.tensor('value', proto),
    ]),
  );
  list.splice(at, 1, ...constants, ...nodes);
  graph.node = list;
}

/** The float dtypes whose weights the methods compress (W keeps its dtype). */
export const COMPRESSED_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16']);

/** Why a tensor of `dtype` is not compressed, or undefined when it is. */
export function dtypeProblem(dtype: DType): string | undefined {
  return COMPRESSED_DTYPES.has(dtype)
    ? undefined
    : `${dtype} tensor (only float32, float16 and bfloat16 weights are compressed)`;
}

/** A weight's values as float32, from any of COMPRESSED_DTYPES. */
export function weightValues(dtype: DType, bytes: Uint8Array, count: number): Float32Array {
  const values = decodeValues(dtype as NumericDType, bytes, count);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** `values` rounded to `dtype` (as stored in a tensor of that dtype). */
export function roundedTo(values: Float32Array, dtype: DType): Float32Array {
  if (dtype === 'float32') return values;
  return weightValues(dtype, encodeFloats(values, dtype), values.length);
}

/** A tensor holding `values` in the weight's own dtype. */
export function weightTensor(
  job: WeightJob,
  name: string,
  dims: readonly number[],
  values: Float32Array,
): NewTensor {
  const dtype = job.entry.info.dtype;
  return { name, dataType: onnxCodeOf(dtype), dims, bytes: encodeFloats(values, dtype) };
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The nodes computing W from a `dims`-shaped tensor of ONNX type `dataType` that
 * `producer` writes to the name it is given: a Reshape to W's shape and a Cast to W's
 * dtype follow where they differ (with the Reshape's shape tensor).
 */
export function computeWeight(
  ctx: EditContext,
  job: WeightJob,
  dims: readonly number[],
  dataType: number,
  producer: (output: string) => onnx.INodeProto[],
): { nodes: onnx.INodeProto[]; tensors: NewTensor[] } {
  const name = job.slot.name;
  const shape = job.entry.info.shape;
  const target = onnxCodeOf(job.entry.info.dtype);
  const reshape = !sameDims(dims, shape);
  const cast = dataType !== target;
  const nodes: onnx.INodeProto[] = [];
  const tensors: NewTensor[] = [];
  let current = reshape || cast ? ctx.names.fresh(reshape ? `${name}_2d` : `${name}_float`) : name;
  nodes.push(...producer(current));
  if (reshape) {
    const shapeName = ctx.names.fresh(`${name}_shape`);
    tensors.push({
      name: shapeName,
      dataType: ONNX_DATA_TYPE.INT64,
      dims: [shape.length],
      bytes: int64Bytes(shape),
    });
    const out = cast ? ctx.names.fresh(`${name}_float`) : name;
    nodes.push(
      makeNode('Reshape', [current, shapeName], [out], ctx.names.fresh(`${name}_Reshape`)),
    );
    current = out;
  }
  if (cast) {
    nodes.push(
      makeNode('Cast', [current], [name], ctx.names.fresh(`${name}_Cast`), [
        attr.int('to', target),
      ]),
    );
  }
  return { nodes, tensors };
}

/** The new tensors and the nodes computing W. */
export interface WrittenWeight {
  readonly tensors: NewTensor[];
  readonly nodes: onnx.INodeProto[];
}

/** The codes and scales a DequantizeLinear reads, with its attributes. */
export interface DequantizeLinearParts {
  codes: { dataType: number; bytes: Uint8Array };
  scales: { dtype: DType; dims: readonly number[]; values: Float32Array };
  attributes: onnx.IAttributeProto[];
}

/**
 * W computed by a DequantizeLinear over `[rows, cols]` codes and their scales (then
 * `computeWeight`'s Reshape and Cast): the new tensors and nodes, under fresh names.
 */
export function dequantizeLinearWeight(
  ctx: EditContext,
  job: WeightJob,
  layout: { rows: number; cols: number },
  parts: DequantizeLinearParts,
): WrittenWeight {
  const name = job.slot.name;
  const qName = ctx.names.fresh(`${name}_quantized`);
  const scaleName = ctx.names.fresh(`${name}_scale`);
  const dims = [layout.rows, layout.cols];
  const made = computeWeight(ctx, job, dims, onnxCodeOf(parts.scales.dtype), (output) => [
    makeNode(
      'DequantizeLinear',
      [qName, scaleName],
      [output],
      ctx.names.fresh(`${name}_DequantizeLinear`),
      parts.attributes,
    ),
  ]);
  return {
    tensors: [
      { name: qName, dataType: parts.codes.dataType, dims, bytes: parts.codes.bytes },
      {
        name: scaleName,
        dataType: onnxCodeOf(parts.scales.dtype),
        dims: parts.scales.dims,
        bytes: encodeFloats(parts.scales.values, parts.scales.dtype),
      },
      ...made.tensors,
    ],
    nodes: made.nodes,
  };
}

/** `EditContext.opsetAllows` for a model as read (memoised per target). */
export function opsetJudge(
  model: onnx.IModelProto,
  modelPath: string,
): (target: number) => boolean {
  const verdicts = new Map<number, boolean>();
  return (target) => {
    let allowed = verdicts.get(target);
    if (allowed === undefined) {
      allowed =
        defaultOpset(model) >= target || opsetRaiseBlocker(model, modelPath, target) === undefined;
      verdicts.set(target, allowed);
    }
    return allowed;
  };
}

/** Why a weight cannot be written with a node that needs opset `target` (`why`): the skip reason. */
export function opsetSkipReason(why: string, target: number, blocker: string): string {
  return `${why} needs opset ${target}: ${blocker}`;
}

/** Raise the default opset to `target` once; a failure skips the tensor with the reason. */
export function needOpset(ctx: EditContext, target: number, why: string): void {
  if (defaultOpset(ctx.model) >= target) return;
  const failure = ctx.raiseFailures.get(target);
  if (failure) throw new Skip(opsetSkipReason(why, target, failure));
  try {
    const note = raiseOpset(ctx.model, ctx.modelPath, target, ctx.names);
    if (note) ctx.notes.push(`${note} (${why})`);
  } catch (error) {
    const reason = (error as Error).message;
    ctx.raiseFailures.set(target, reason);
    throw new Skip(opsetSkipReason(why, target, reason));
  }
}

export function layoutOrSkip(job: WeightJob, method: string): MatrixLayout & { kind: string } {
  const layout = weightLayout(job.uses, job.entry.info.shape);
  if (typeof layout === 'string') throw new Skip(`${method} needs an input axis: ${layout}`);
  return layout;
}

export function requireFinite(job: WeightJob): void {
  if (!allFinite(job.values)) throw new Skip('holds non-finite values (inf or NaN)');
}

export function floatTensor(
  name: string,
  dims: readonly number[],
  values: Float32Array,
): NewTensor {
  return { name, dataType: ONNX_DATA_TYPE.FLOAT, dims, bytes: bytesOf(values) };
}

export function countZeros(values: Float32Array): number {
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
  return zeros;
}

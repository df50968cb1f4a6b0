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
 */
import type { onnx } from 'onnx-proto';
import type { TensorCompressionResult } from '../../../shared/compress';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import type { TensorEntry } from '../../formats/types';
import { allFinite, type MatrixLayout } from '../kernels';
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

function int64Bytes(values: readonly number[]): Uint8Array {
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

/** Make W from a 2-D tensor named `flat` (Reshape when W is not 2-D): nodes producing W. */
export function reshapeTo(
  ctx: EditContext,
  job: WeightJob,
  producer: (output: string) => onnx.INodeProto,
): { nodes: onnx.INodeProto[]; tensors: NewTensor[] } {
  const shape = job.entry.info.shape;
  if (shape.length === 2) return { nodes: [producer(job.slot.name)], tensors: [] };
  const flat = ctx.names.fresh(`${job.slot.name}_2d`);
  const shapeName = ctx.names.fresh(`${job.slot.name}_shape`);
  return {
    tensors: [
      {
        name: shapeName,
        dataType: ONNX_DATA_TYPE.INT64,
        dims: [shape.length],
        bytes: int64Bytes(shape),
      },
    ],
    nodes: [
      producer(flat),
      makeNode(
        'Reshape',
        [flat, shapeName],
        [job.slot.name],
        ctx.names.fresh(`${job.slot.name}_Reshape`),
      ),
    ],
  };
}

/** Why a weight cannot be written with a node that needs opset `target` (`why`): the skip reason. */
export function opsetSkipReason(why: string, target: number, blocker: string): string {
  return `${why} needs opset ${target}: ${blocker}`;
}

/**
 * Why `model` cannot be raised to opset `target` for `why`, or null when it can (or is
 * there): what a method's `feasible` says before anything is written, in the words
 * `needOpset` skips with when writing.
 */
export function opsetProblem(
  model: onnx.IModelProto,
  modelPath: string,
  target: number,
  why: string,
): string | null {
  const blocker = opsetRaiseBlocker(model, modelPath, target);
  return blocker ? opsetSkipReason(why, target, blocker) : null;
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

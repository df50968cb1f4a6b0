/**
 * What a compressed ONNX model's protobuf takes, counted before anything is written: the
 * bytes of new tensors, nodes and attributes, and what the predictor knows of each weight
 * (its layout and consumers). The method modules' `predictBytes` add these up.
 */
import { onnx } from 'onnx-proto';
import { computeSpectrumInThread } from '../../analysis/spectrum';
import { rankForEnergy } from '../../../shared/spectrum';
import type { TensorEncoding } from '../../../shared/model';
import type { OpenedModel, TensorEntry } from '../../formats/types';
import { layoutDims, type MatrixLayout, type QuantizedBlocks } from '../kernels';
import type { DType } from '../../../shared/dtypes';
import {
  dtypeProblem,
  opsetJudge,
  type EditContext,
  type WeightJob,
  type WrittenWeight,
} from './methods';
import {
  intAttribute,
  isGraphOutput,
  lowRankReadProblem,
  NameAllocator,
  onlyDirectMatMul,
  weightLayout,
  type OnnxModel,
  type TensorSlot,
  type WeightLayout,
} from '../../onnx';

/** Bytes of a protobuf varint. */
export function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

/** A length-delimited protobuf field (tag, length, payload). */
export function field(payload: number): number {
  return 1 + varintBytes(payload) + payload;
}

export function text(value: string): number {
  return field(Buffer.byteLength(value));
}

/** An int attribute `name = value` (as a field of a node). */
export function intAttr(name: string, value: number): number {
  return field(text(name) + 2 + 1 + varintBytes(value));
}

/** A new TensorProto with raw data, as an initializer (or a Constant node's value). */
export function tensorProto(
  name: string,
  dims: readonly number[],
  dataBytes: number,
  constant: boolean,
): number {
  const body =
    text(name) + dims.reduce((sum, d) => sum + 1 + varintBytes(d), 0) + 2 + field(dataBytes);
  if (!constant) return field(body);
  const valueAttr = field(text('value') + 2 + field(body));
  return field(text(`${name}_Constant`) + text('Constant') + text(name) + valueAttr);
}

/** A node with its strings and attribute bytes. */
export function node(
  op: string,
  name: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs = 0,
  domain = '',
): number {
  return field(
    text(op) +
      text(name) +
      inputs.reduce((sum, s) => sum + text(s), 0) +
      outputs.reduce((sum, s) => sum + text(s), 0) +
      attrs +
      (domain ? text(domain) : 0),
  );
}

/** What the ONNX predictor knows of one weight: its layout and how it is used. */
export interface OnnxWeight {
  readonly slot: TensorSlot;
  /** How the weight is already quantized (every method's `feasible` refuses it). */
  readonly encoding?: TensorEncoding;
  /** The tensor's dtype (the methods take float32, float16 and bfloat16). */
  readonly dtype: DType;
  /** The model's opset as read, and whether it has or can be raised to a newer one (EditContext's). */
  readonly sourceOpset: number;
  readonly opsetAllows: (target: number) => boolean;
  readonly layout?: WeightLayout;
  /** Why no method needing an input axis applies. */
  readonly layoutProblem?: string;
  /** Why no method applies at all. */
  readonly problem?: string;
  readonly directMatMul: boolean;
  /** Why low rank does not apply (beyond the layout). */
  readonly lowRankProblem?: string;
  /** Number of consumer nodes. */
  readonly consumers: number;
  readonly consumerLabels: readonly string[];
}

export function onnxWeights(model: OpenedModel, decoded: OnnxModel): Map<number, OnnxWeight> {
  const slots = decoded.slots;
  const weights = new Map<number, OnnxWeight>();
  const shared = {
    sourceOpset: decoded.opset,
    opsetAllows: opsetJudge(decoded.proto, model.path),
  };
  for (const slot of slots) {
    const info = model.tensors[slot.index]?.info;
    if (!info) continue;
    if (info.encoding) {
      weights.set(slot.index, {
        slot,
        dtype: info.dtype,
        ...shared,
        encoding: info.encoding,
        layoutProblem: 'already quantized',
        directMatMul: false,
        consumers: 0,
        consumerLabels: [],
      });
      continue;
    }
    let problem: string | undefined;
    if (slot.kind === 'sparse-initializer') problem = 'sparse initializer';
    else if (!slot.proto) problem = 'Constant given by value_* attributes';
    else problem = dtypeProblem(info.dtype);
    if (!problem && info.shape.length < 2) problem = 'a bias or vector';
    const { uses, problem: useProblem } = decoded.weightUses(slot.name, slot.scope);
    problem ??= useProblem;
    if (problem) {
      weights.set(slot.index, {
        slot,
        dtype: info.dtype,
        ...shared,
        problem,
        directMatMul: false,
        consumers: 0,
        consumerLabels: [],
      });
      continue;
    }
    const layout = weightLayout(uses, info.shape);
    let lowRankProblem: string | undefined;
    if (typeof layout !== 'string') {
      if (layout.kind === 'recurrent' || layout.kind === 'embedding')
        lowRankProblem = 'low rank applies to MatMul, Gemm and Conv weights';
      else if (lowRankReadProblem(uses)) lowRankProblem = lowRankReadProblem(uses);
      else if (
        uses.some((use) => use.node.opType === 'Conv' && intAttribute(use.node, 'group', 1) !== 1)
      )
        lowRankProblem = 'grouped convolution';
      else if (isGraphOutput(slot.name, slot.scope)) lowRankProblem = 'also a graph output';
    }
    weights.set(slot.index, {
      slot,
      dtype: info.dtype,
      ...shared,
      ...(typeof layout === 'string' ? { layoutProblem: layout } : { layout }),
      ...(lowRankProblem ? { lowRankProblem } : {}),
      directMatMul: onlyDirectMatMul(uses) && !isGraphOutput(slot.name, slot.scope),
      consumers: uses.length,
      consumerLabels: uses.map((use) => use.node.name || use.node.opType || 'node'),
    });
  }
  return weights;
}

/** The smallest rank keeping `energy` of Σσ² of the row-major `rows` × `cols` matrix. */
export async function rankForEnergyOf(
  values: Float32Array,
  rows: number,
  cols: number,
  energy: number,
): Promise<number> {
  const spectrum = await computeSpectrumInThread(values, [rows, cols], { method: 'full' });
  const sigma = Array.from(spectrum.singularValues);
  const total = sigma.reduce((sum, s) => sum + s * s, 0);
  return rankForEnergy(sigma, total, energy);
}

/**
 * Bytes a weight takes in the written model when `build` writes it (its new tensors and
 * nodes, less the tensor it replaces, plus the tensor's own bytes as the predictor counts
 * them): `build` runs on a stand-in edit context with zero codes of the right sizes, so
 * the prediction measures the very nodes the writer makes.
 */
export function measureWritten(
  entry: TensorEntry,
  weight: OnnxWeight,
  build: (ctx: EditContext, job: WeightJob) => WrittenWeight,
): number {
  const ctx: EditContext = {
    model: { opsetImport: [{ domain: '', version: weight.sourceOpset }] },
    modelPath: '',
    names: new NameAllocator(new Set()),
    externalize: new Set(),
    notes: [],
    raiseFailures: new Map(),
    opsetAllows: weight.opsetAllows,
    sourceOpset: weight.sourceOpset,
  };
  const job: WeightJob = { slot: weight.slot, entry, values: new Float32Array(0), uses: [] };
  const { info } = entry;
  const constant = weight.slot.kind !== 'initializer';
  const written = build(ctx, job);
  let bytes =
    info.byteLength - tensorProto(weight.slot.name, info.shape, info.byteLength, constant);
  for (const t of written.tensors) bytes += tensorProto(t.name, t.dims, t.bytes.length, constant);
  for (const n of written.nodes) bytes += field(onnx.NodeProto.encode(n).finish().length);
  return bytes;
}

/** Zero codes and scales shaped as the quantizer would return them (for measureWritten). */
export function zeroBlocks(layout: MatrixLayout, blockSize: number): QuantizedBlocks {
  const { inputs, channels } = layoutDims(layout);
  const blocks = Math.max(1, Math.ceil(inputs / blockSize));
  return {
    q: new Int8Array(layout.rows * layout.cols),
    scales: new Float32Array(channels * blocks),
    blocks,
    blockSize,
  };
}

/**
 * How many bytes a tensor takes in the written file for each compression option, before
 * anything is written: the stored data of each method (as onnx/methods.ts and
 * safetensorsTensor.ts write it) plus the protobuf or JSON-header bytes of the tensors and
 * nodes it adds, less those of the tensor it replaces.
 *
 * - int8: one byte per weight and one float32 scale per output channel (symmetric, no zero
 *   point), a DequantizeLinear node (and a Reshape with its shape when W is not 2-D).
 * - int4: half a byte per weight and one float32 scale per block of the input dimension
 *   (MatMulNBits for direct MatMul weights, else DequantizeLinear with block_size).
 * - lowrank: the two float32 factors at the rank the energy gives (rank·(rows + cols)),
 *   one more node per consumer.
 * - fp16 / bf16: two bytes per weight and a Cast node.
 * - prune and N:M store the zeros in the dense tensor: the file is as large as before (they
 *   save only after lossless packing), so size plans leave them out; the same holds on
 *   safetensors for int4 and low rank (stored as reconstructed dense values) and for int8
 *   unless stored with its scales (`storeQuantized`, which plans always use).
 */
import { onnx } from 'onnx-proto';
import type { CompressionOptions } from '../../shared/compress';
import { maxSavingRank, rankForEnergy } from '../../shared/spectrum';
import { computeSpectrumInThread } from '../analysis/spectrum';
import { decodeValues, type NumericDType } from '../analysis/decode';
import { layoutDims } from '../compress/kernels';
import { METHOD_DEFAULTS } from '../compress/onnx/methods';
import {
  intAttribute,
  isGraphOutput,
  onlyDirectMatMul,
  onnxModelOf,
  weightLayout,
  type OnnxModel,
  type TensorSlot,
  type WeightLayout,
} from '../onnx';
import { loadTensorData } from '../formats/onnxTensors';
import type { OpenedModel, TensorEntry } from '../formats/types';
import { INT8_CONVENTION } from '../compress/safetensors';
import { INT8_SCALE_SUFFIX } from '../compress/safetensorsTensor';

/** A compression option on one tensor and what it is predicted to take in the file. */
export interface SizedOption {
  /** The sweep level's key this option comes from. */
  readonly key: string;
  readonly label: string;
  /** As written into the recipe (low rank by an explicit rank, safetensors int8 with scales). */
  readonly options: CompressionOptions;
  /** The tensor's predicted bytes in the file with this option, its overhead included. */
  readonly bytes: number;
}

/** One option that was left out for a tensor, and why. */
export interface DroppedOption {
  readonly key: string;
  readonly reason: string;
}

export interface TensorPrediction {
  readonly index: number;
  readonly name: string;
  /** The tensor's stored bytes now. */
  readonly bytesBefore: number;
  readonly options: readonly SizedOption[];
  readonly dropped: readonly DroppedOption[];
}

/** A level of a sweep as the predictor needs it (SweepLevel's key, label and options). */
export interface LevelOption {
  readonly key: string;
  readonly label: string;
  readonly options: CompressionOptions;
}

export interface SizePrediction {
  readonly fileBytesBefore: number;
  readonly tensors: readonly TensorPrediction[];
  /** Bytes a compressed file adds once whatever is changed (metadata, opset imports). */
  readonly fileOverhead: number;
}

/** Bytes of a protobuf varint. */
function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

/** A length-delimited protobuf field (tag, length, payload). */
function field(payload: number): number {
  return 1 + varintBytes(payload) + payload;
}

function text(value: string): number {
  return field(Buffer.byteLength(value));
}

/** An int attribute `name = value` (as a field of a node). */
function intAttr(name: string, value: number): number {
  return field(text(name) + 2 + 1 + varintBytes(value));
}

/** A new TensorProto with raw data, as an initializer (or a Constant node's value). */
function tensorProto(
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
function node(
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
interface OnnxWeight {
  readonly slot: TensorSlot;
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

function onnxWeights(model: OpenedModel, decoded: OnnxModel): Map<number, OnnxWeight> {
  const slots = decoded.slots;
  const weights = new Map<number, OnnxWeight>();
  for (const slot of slots) {
    const info = model.tensors[slot.index]?.info;
    if (!info) continue;
    let problem: string | undefined;
    if (slot.kind === 'sparse-initializer') problem = 'sparse initializer';
    else if (!slot.proto) problem = 'Constant given by value_* attributes';
    else if (info.dtype !== 'float32') problem = `${info.dtype} tensor`;
    else if (info.shape.length < 2) problem = 'a bias or vector';
    const { uses, problem: useProblem } = decoded.weightUses(slot.name, slot.scope);
    problem ??= useProblem;
    if (problem) {
      weights.set(slot.index, {
        slot,
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
      else if (uses.some((use) => use.chain.length > 0))
        lowRankProblem = 'low rank needs the weight read directly';
      else if (
        uses.some((use) => use.node.opType === 'Conv' && intAttribute(use.node, 'group', 1) !== 1)
      )
        lowRankProblem = 'grouped convolution';
      else if (isGraphOutput(slot.name, slot.scope)) lowRankProblem = 'also a graph output';
    }
    weights.set(slot.index, {
      slot,
      ...(typeof layout === 'string' ? { layoutProblem: layout } : { layout }),
      ...(lowRankProblem ? { lowRankProblem } : {}),
      directMatMul: onlyDirectMatMul(uses) && !isGraphOutput(slot.name, slot.scope),
      consumers: uses.length,
      consumerLabels: uses.map((use) => use.node.name || use.node.opType || 'node'),
    });
  }
  return weights;
}

/** The nodes (and shape tensor) that turn a 2-D form back into W's shape. */
function reshapeBytes(name: string, rank: number, constant: boolean): number {
  if (rank === 2) return 0;
  return (
    tensorProto(`${name}_shape`, [rank], 8 * rank, constant) +
    node('Reshape', `${name}_Reshape`, [`${name}_2d`, `${name}_shape`], [name])
  );
}

/** The smallest rank keeping `energy` of Σσ² of the row-major `rows` × `cols` matrix. */
async function rankForEnergyOf(
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

type Sized = { options: CompressionOptions; bytes: number } | string;

async function sizeOnnxOption(
  entry: TensorEntry,
  weight: OnnxWeight,
  level: LevelOption,
  values: () => Float32Array,
): Promise<Sized> {
  const { info } = entry;
  const slotName = weight.slot.name;
  const constant = weight.slot.kind !== 'initializer';
  const options = level.options;
  const removed = tensorProto(slotName, info.shape, info.byteLength, constant);
  const elements = info.parameterCount;
  const layout = weight.layout;
  switch (options.method) {
    case 'prune':
    case 'nm':
      return 'stores the zeros in the dense tensor: no smaller on disk';
    case 'fp16':
    case 'bf16': {
      const half = `${slotName}_${options.method}`;
      return {
        options,
        bytes:
          tensorProto(half, info.shape, elements * 2, constant) +
          node('Cast', `${slotName}_Cast`, [half], [slotName], intAttr('to', 1)) -
          removed +
          info.byteLength,
      };
    }
    case 'int8': {
      if (!layout) return `int8 needs an input axis: ${weight.layoutProblem}`;
      const { channels } = layoutDims(layout);
      const q = `${slotName}_quantized`;
      const scale = `${slotName}_scale`;
      const out = info.shape.length === 2 ? slotName : `${slotName}_2d`;
      return {
        options,
        bytes:
          tensorProto(q, [layout.rows, layout.cols], elements, constant) +
          tensorProto(scale, [channels], channels * 4, constant) +
          node(
            'DequantizeLinear',
            `${slotName}_DequantizeLinear`,
            [q, scale],
            [out],
            intAttr('axis', 1),
          ) +
          reshapeBytes(slotName, info.shape.length, constant) -
          removed +
          info.byteLength,
      };
    }
    case 'int4': {
      if (!layout) return `int4 needs an input axis: ${weight.layoutProblem}`;
      const blockSize = options.blockSize ?? METHOD_DEFAULTS.blockSize;
      const { inputs, channels } = layoutDims(layout);
      const blocks = Math.ceil(inputs / blockSize);
      const scale = `${slotName}_scale`;
      const format = options.int4Format ?? METHOD_DEFAULTS.int4Format;
      if (format === 'matmulnbits' && weight.directMatMul && layout.kind === 'matmul') {
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
          tensorProto(q, [layout.rows, layout.cols], Math.ceil(elements / 2), constant) +
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
    }
    case 'lowrank': {
      if (!layout) return `low rank needs an input axis: ${weight.layoutProblem}`;
      if (weight.lowRankProblem) return weight.lowRankProblem;
      const { rows, cols } = layout;
      let rank = options.rank;
      if (rank === undefined) {
        rank = await rankForEnergyOf(
          values(),
          rows,
          cols,
          options.energy ?? METHOD_DEFAULTS.energy,
        );
      }
      rank = Math.min(rank, Math.min(rows, cols));
      if (rank > maxSavingRank(rows, cols)) {
        return `rank ${rank} of ${rows} × ${cols} stores no fewer parameters`;
      }
      const a = `${slotName}_lowrank_a`;
      const bName = `${slotName}_lowrank_b`;
      const perUse = weight.consumerLabels.reduce(
        (sum, label) =>
          sum +
          node(
            layout.kind === 'conv' ? 'Conv' : 'MatMul',
            `${label}_lowrank_1`,
            ['x', a],
            [`${label}_lowrank`],
          ) +
          text(`${label}_lowrank`) +
          text(a) +
          text(bName) -
          text(slotName) +
          (layout.kind === 'conv' ? intAttr('kernel_shape', 1) + 8 : 0),
        0,
      );
      return {
        options: { method: 'lowrank', rank },
        bytes:
          tensorProto(a, [rows, rank], rows * rank * 4, constant) +
          tensorProto(bName, [rank, cols], rank * cols * 4, constant) +
          perUse -
          removed +
          info.byteLength,
      };
    }
  }
}

/** Bytes a JSON header entry `"name":{"dtype":"F32","shape":[…],"data_offsets":[a,b]},` takes. */
function headerEntry(name: string, dtype: string, shape: readonly number[], end: number): number {
  return (
    JSON.stringify(name).length +
    JSON.stringify({ dtype, shape, data_offsets: [end, end] }).length +
    2
  );
}

function sizeSafetensorsOption(entry: TensorEntry, level: LevelOption, fileBytes: number): Sized {
  const { info } = entry;
  const elements = info.parameterCount;
  const options = level.options;
  const float = ['float32', 'float16', 'bfloat16', 'float64'].includes(info.dtype);
  if (!float) return `${info.dtype} is not a floating-point type`;
  switch (options.method) {
    case 'prune':
    case 'nm':
    case 'int4':
    case 'lowrank':
      return 'stored as dense values of the original dtype in safetensors: no smaller on disk';
    case 'fp16':
    case 'bf16':
      if (info.dtype === 'float16' || info.dtype === 'bfloat16')
        return `already a ${info.dtype} tensor`;
      return { options, bytes: elements * 2 };
    case 'int8': {
      if (info.shape.length < 2) return 'int8 keeps biases and vectors as they are';
      const rows = info.shape[0]!;
      return {
        options: { method: 'int8', storeQuantized: true },
        bytes:
          elements +
          rows * 4 +
          headerEntry(`${info.name}${INT8_SCALE_SUFFIX}`, 'F32', [rows], fileBytes),
      };
    }
  }
}

/**
 * Predicted bytes of every tensor of `model` under each of `levels` (tensors with no
 * option that saves bytes are listed with their reasons), and the file's fixed overhead.
 */
export async function predictSizes(
  model: OpenedModel,
  indices: readonly number[],
  levels: readonly LevelOption[],
  signal?: AbortSignal,
): Promise<SizePrediction> {
  const format = model.summary.format;
  const fileBytesBefore = format === 'onnx' ? model.summary.totalBytes : model.summary.fileBytes;
  const decoded = format === 'onnx' ? await onnxModelOf(model, 'read') : undefined;
  const weights = decoded ? onnxWeights(model, decoded) : undefined;
  const tensors: TensorPrediction[] = [];
  for (const index of indices) {
    signal?.throwIfAborted();
    const entry = model.tensors[index];
    if (!entry) continue;
    const { info } = entry;
    const sized: SizedOption[] = [];
    const dropped: DroppedOption[] = [];
    let loaded: Float32Array | undefined;
    const values = (): Float32Array => {
      loaded ??= Float32Array.from(
        decodeValues(info.dtype as NumericDType, loadTensorData(entry.data), info.parameterCount),
      );
      return loaded;
    };
    for (const level of levels) {
      let outcome: Sized;
      if (weights) {
        const weight = weights.get(index);
        outcome = !weight
          ? 'not a weight of the graph'
          : weight.problem
            ? weight.problem
            : await sizeOnnxOption(entry, weight, level, values);
      } else {
        outcome = sizeSafetensorsOption(entry, level, fileBytesBefore);
      }
      if (typeof outcome === 'string') {
        dropped.push({ key: level.key, reason: outcome });
      } else if (outcome.bytes >= info.byteLength) {
        dropped.push({ key: level.key, reason: 'saves no bytes on this tensor' });
      } else {
        sized.push({ key: level.key, label: level.label, ...outcome });
      }
    }
    tensors.push({
      index,
      name: info.name,
      bytesBefore: info.byteLength,
      options: sized,
      dropped,
    });
  }
  const fileOverhead =
    format === 'onnx'
      ? // Writing re-encodes the whole model (field order, packing): measured on the original.
        onnx.ModelProto.encode(decoded!.proto).finish().length -
        model.summary.fileBytes +
        text('com.microsoft') +
        8
      : // The metadata a compressed safetensors file gains (the int8 note counted whether used or not).
        JSON.stringify({
          'layerlens.compression': JSON.stringify({ source: model.path, options: {}, tensors: 0 }),
          'layerlens.int8': INT8_CONVENTION,
        }).length + 64;
  return { fileBytesBefore, tensors, fileOverhead };
}

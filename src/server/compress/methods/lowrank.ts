/**
 * Low rank: W ≈ A·B from a truncated SVD, to an explicit rank or to the smallest rank
 * keeping an energy share of Σσ². ONNX replaces each MatMul/Gemm/Conv reading W by two
 * (the module comment of onnx/methods.ts); safetensors stores the rank-r reconstruction
 * A·B in place of W (dense: no smaller on disk, so plans leave it out there).
 */
import type { onnx } from 'onnx-proto';
import type { CompressionOptions } from '../../../shared/compress';
import { METHOD_DEFAULTS, METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { maxSavingRank } from '../../../shared/spectrum';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import { DTYPES } from '../../../shared/dtypes';
import { relativeFrobeniusError } from '../kernels';
import {
  checkLowRankLimits,
  chooseRank,
  factoriseLowRank,
  lowRankFactors,
  LowRankRefusal,
  multiplyFactors,
} from '../lowrank';
import {
  attr,
  defaultOpset,
  floatAttribute,
  intAttribute,
  isDefaultDomain,
  isGraphOutput,
  lowRankReadProblem,
  makeNode,
  nodeIndexIn,
  type WeightUse,
} from '../../onnx';
import {
  layoutOrSkip,
  replaceWeight,
  requireFinite,
  roundedTo,
  weightTensor,
  Skip,
  type EditContext,
  type OnnxOutcome,
  type WeightJob,
} from '../onnx/methods';
import { intAttr, node, rankForEnergyOf, tensorProto, text } from '../onnx/sizes';
import { encodeFloats, percent, sameTensor } from '../safetensorsValues';
import {
  LevelNotApplicable,
  needFinite,
  needLayout,
  quantizedProblem,
  type CompressionMethodModule,
  type SvdBasis,
} from './types';

/**
 * The Cast nodes reading W in its own graph, when they are all its readers and all cast
 * to one type (so that the factors can be Cast the same way); else a Skip.
 */
function castReaders(job: WeightJob): onnx.INodeProto[] {
  const graph = job.slot.scope.graph;
  const readers = (graph.node ?? []).filter((n) => (n.input ?? []).includes(job.slot.name));
  const casts = readers.filter((n) => n.opType === 'Cast' && isDefaultDomain(n.domain));
  const types = new Set(casts.map((n) => intAttribute(n, 'to', 0)));
  if (casts.length === 0 || casts.length !== readers.length || types.size !== 1) {
    throw new Skip(
      'low-rank through Cast needs every reader of the weight to be one kind of Cast in its graph',
    );
  }
  return casts;
}

/** First opset whose Gemm takes no C. */
const GEMM_OPTIONAL_C_OPSET = 11;

export function lowRankLevel(energy: number): SweepLevel {
  return {
    key: `lowrank:e${energy}`,
    label: `low-rank ${percent(energy)}`,
    method: 'lowrank',
    options: { method: 'lowrank', energy },
    x: energy,
  };
}

/** The rank or energy the options ask for (the default energy when neither). */
function choiceOf(options: CompressionOptions): { rank: number } | { energy: number } {
  return options.rank !== undefined
    ? { rank: options.rank }
    : { energy: options.energy ?? METHOD_DEFAULTS.energy };
}

async function lowRankValues(
  values: Float32Array,
  rows: number,
  cols: number,
  choice: { rank: number } | { energy: number },
  signal: AbortSignal | undefined,
  basis: SvdBasis | undefined,
): Promise<Float32Array> {
  const svd = basis?.exact(values, rows, cols);
  if (svd) {
    const rank = chooseRank(svd, choice);
    const { a, b } = lowRankFactors(svd, rank);
    return multiplyFactors(a, b, rows, rank, cols);
  }
  const { a, b, rank } = await factoriseLowRank(values, rows, cols, choice, { signal });
  return multiplyFactors(a, b, rows, rank, cols);
}

async function lowRankOnnx(
  ctx: EditContext,
  job: WeightJob,
  options: CompressionOptions,
): Promise<OnnxOutcome> {
  const layout = layoutOrSkip(job, 'low-rank');
  if (layout.kind === 'recurrent' || layout.kind === 'embedding')
    throw new Skip('low-rank applies to MatMul, Gemm and Conv weights');
  const readProblem = lowRankReadProblem(job.uses);
  if (readProblem) throw new Skip(readProblem);
  // W read through Casts (a 16-bit weight cast to float32): the factors get the same Cast.
  const casts = job.uses.some((use) => use.chain.length > 0) ? castReaders(job) : [];
  for (const use of job.uses) {
    if (use.node.opType === 'Conv' && intAttribute(use.node, 'group', 1) !== 1) {
      throw new Skip('low-rank of grouped convolutions is not supported (group ≠ 1)');
    }
  }
  if (isGraphOutput(job.slot.name, job.slot.scope)) throw new Skip('is also a graph output');
  requireFinite(job);
  const { rows, cols } = layout;
  try {
    checkLowRankLimits(rows, cols);
  } catch (error) {
    throw new Skip((error as Error).message);
  }
  let factors;
  try {
    factors = await factoriseLowRank(job.values, rows, cols, choiceOf(options), {
      signal: ctx.signal,
    });
  } catch (error) {
    if (error instanceof LowRankRefusal) throw new Skip(error.message);
    throw error;
  }
  const { a, b, rank, fullRank } = factors;
  const name = job.slot.name;
  const aName = ctx.names.fresh(`${name}_lowrank_a`);
  const bName = ctx.names.fresh(`${name}_lowrank_b`);
  const shape = job.entry.info.shape;
  let aDims: number[] = [rows, rank];
  let bDims: number[] = [rank, cols];
  if (layout.kind === 'conv') {
    bDims = [rank, ...shape.slice(1)];
    aDims = [rows, rank, ...shape.slice(2).map(() => 1)];
  }
  // The factors are stored in W's dtype (float16 models keep computing in float16).
  const dtype = job.entry.info.dtype;
  const storedA = roundedTo(a, dtype);
  const storedB = roundedTo(b, dtype);
  const tensors = [
    weightTensor(job, aName, aDims, storedA),
    weightTensor(job, bName, bDims, storedB),
  ];
  let zero: string | undefined;
  if (layout.kind === 'gemm' && defaultOpset(ctx.model) < GEMM_OPTIONAL_C_OPSET) {
    // Gemm's C is optional from opset 11: before it the first Gemm adds a zero.
    zero = ctx.names.fresh(`${name}_lowrank_zero`);
    tensors.push(weightTensor(job, zero, [], new Float32Array(1)));
  }
  const castNodes: onnx.INodeProto[] = [];
  let [aRead, bRead] = [aName, bName];
  if (casts.length > 0) {
    const to = intAttribute(casts[0]!, 'to', ONNX_DATA_TYPE.FLOAT);
    [aRead, bRead] = [ctx.names.fresh(`${aName}_cast`), ctx.names.fresh(`${bName}_cast`)];
    for (const [from, out] of [
      [aName, aRead],
      [bName, bRead],
    ] as const) {
      castNodes.push(
        makeNode('Cast', [from], [out], ctx.names.fresh(`${out}_Cast`), [attr.int('to', to)]),
      );
    }
    // The Casts of W now feed nobody: every reader of their outputs was rewritten.
    const graph = job.slot.scope.graph;
    graph.node = (graph.node ?? []).filter((n) => !casts.includes(n));
  }
  for (const use of job.uses)
    rewriteForLowRank(ctx, use, aRead, bRead, layout.kind, shape.length - 2, zero);
  replaceWeight(ctx, job.slot, tensors, castNodes);
  return {
    bytesAfter: tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError: relativeFrobeniusError(
      job.values,
      await multiplyFactors(storedA, storedB, rows, rank, cols),
    ),
    detail: `rank ${rank} of ${fullRank} (${layout.kind === 'conv' ? 'Conv + 1×1 Conv' : `two ${consumerOp(job)}s`}), ${rank * (rows + cols)} instead of ${rows * cols} parameters`,
  };
}

function consumerOp(job: WeightJob): string {
  return job.uses[0]?.node.opType ?? 'node';
}

/** Replace one consumer of W ≈ A·B by two nodes (see the module comment). */
function rewriteForLowRank(
  ctx: EditContext,
  use: WeightUse,
  aName: string,
  bName: string,
  kind: string,
  spatialRank: number,
  zero: string | undefined,
): void {
  const node = use.node;
  const label = node.name || node.opType || 'node';
  const mid = ctx.names.fresh(`${label}_lowrank`);
  const inputs = node.input ?? [];
  const outputs = node.output ?? [];
  let first: onnx.INodeProto;
  let second: onnx.INodeProto;
  if (kind === 'matmul') {
    first = makeNode('MatMul', [inputs[0]!, aName], [mid], ctx.names.fresh(`${label}_lowrank_1`));
    second = makeNode('MatMul', [mid, bName], [...outputs], ctx.names.fresh(`${label}_lowrank_2`));
  } else if (kind === 'gemm') {
    // Stored W (rows × cols) ≈ A·B. transB = 0: op(W) = A·B; transB = 1: op(W) = Bᵀ·Aᵀ.
    const transA = intAttribute(node, 'transA', 0);
    const transB = intAttribute(node, 'transB', 0);
    const [left, right] = transB ? [bName, aName] : [aName, bName];
    const firstInputs = zero ? [inputs[0]!, left, zero] : [inputs[0]!, left];
    first = makeNode('Gemm', firstInputs, [mid], ctx.names.fresh(`${label}_lowrank_1`), [
      attr.int('transA', transA),
      attr.int('transB', transB),
    ]);
    const secondInputs = inputs[2] ? [mid, right, inputs[2]] : [mid, right];
    second = makeNode('Gemm', secondInputs, [...outputs], ctx.names.fresh(`${label}_lowrank_2`), [
      attr.float('alpha', floatAttribute(node, 'alpha', 1)),
      attr.float('beta', floatAttribute(node, 'beta', 1)),
      attr.int('transB', transB),
    ]);
  } else {
    if (kind !== 'conv') throw new Error(`no low-rank rewrite for ${kind} weights`);
    // Conv with B as an r-channel kernel, then a 1×1 Conv with A and the bias.
    const kept = (node.attribute ?? []).filter((a) => a.name !== 'group');
    first = makeNode(
      'Conv',
      [inputs[0]!, bName],
      [mid],
      ctx.names.fresh(`${label}_lowrank_1`),
      kept,
    );
    const ones = new Array<number>(spatialRank).fill(1);
    // Stride 1, no padding, no dilation: the defaults of a pointwise convolution.
    const pointwise = [attr.ints('kernel_shape', ones)];
    const secondInputs = inputs[2] ? [mid, aName, inputs[2]] : [mid, aName];
    second = makeNode(
      'Conv',
      secondInputs,
      [...outputs],
      ctx.names.fresh(`${label}_lowrank_2`),
      pointwise,
    );
  }
  const list = use.scope.graph.node ?? [];
  list.splice(nodeIndexIn(use.scope, node), 1, first, second);
  use.scope.graph.node = list;
}

const LOWRANK_LEVELS = [lowRankLevel(0.99), lowRankLevel(0.95), lowRankLevel(0.9)];

export const lowrank: CompressionMethodModule = {
  ...METHOD_INFO.lowrank,
  sweepLevels: LOWRANK_LEVELS,
  planLevels: LOWRANK_LEVELS,
  sweepProblem(_level, traits) {
    if (!traits.layout) return `low-rank needs a matrix: ${traits.layoutProblem}`;
    return traits.lowRankProblem;
  },
  async reconstruct(values, layout, level, signal, basis) {
    const { rows, cols } = needLayout(layout, level);
    needFinite(values, level);
    try {
      return await lowRankValues(values, rows, cols, choiceOf(level.options), signal, basis);
    } catch (error) {
      if (error instanceof LowRankRefusal || error instanceof RangeError) {
        throw new LevelNotApplicable(error.message);
      }
      throw error;
    }
  },
  formats: {
    onnx: {
      // Two factors, rows × rank and rank × cols, in place of rows × cols.
      fileSize: { kind: 'depends', when: 'when rank × (rows + cols) < rows × cols' },
      feasible(weight) {
        const quantized = quantizedProblem(weight.encoding);
        if (quantized) return quantized;
        if (!weight.layout) return `low rank needs an input axis: ${weight.layoutProblem}`;
        return weight.lowRankProblem ?? null;
      },
      apply: lowRankOnnx,
      async predictBytes(entry, weight, options, values) {
        const { info } = entry;
        const layout = weight.layout!;
        const slotName = weight.slot.name;
        const constant = weight.slot.kind !== 'initializer';
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
        const width = DTYPES[info.dtype].bits / 8;
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
            tensorProto(a, [rows, rank], rows * rank * width, constant) +
            tensorProto(bName, [rank, cols], rank * cols * width, constant) +
            perUse -
            tensorProto(slotName, info.shape, info.byteLength, constant) +
            info.byteLength,
        };
      },
    },
    safetensors: {
      fileSize: {
        kind: 'same',
        why: 'the rank-r product is stored back as a dense tensor of the original dtype',
      },
      feasible: () => null,
      async apply(tensor, options) {
        const { layout } = tensor;
        if (!layout) return tensor.needMatrix;
        const { a, b, rank, fullRank } = await factoriseLowRank(
          tensor.original,
          layout.rows,
          layout.cols,
          choiceOf(options),
          { isCancelled: tensor.isCancelled },
        );
        const product = await multiplyFactors(a, b, layout.rows, rank, layout.cols);
        return sameTensor(
          tensor,
          encodeFloats(product, tensor.dtype),
          `rank ${rank} of ${fullRank} reconstruction, stored as ${tensor.dtype}`,
        );
      },
      predictBytes: () =>
        'stored as dense values of the original dtype in safetensors: no smaller on disk',
    },
  },
};

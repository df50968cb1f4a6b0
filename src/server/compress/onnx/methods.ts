/**
 * Each compression method as an edit of the decoded ONNX model, one weight at a time.
 *
 * A weight `W` keeps its name wherever its consumers stay as they are: pruning rewrites
 * its values; int8, int4 (DequantizeLinear) and float16/bfloat16 store a smaller tensor
 * and add the nodes that compute `W` from it (DequantizeLinear or Cast, then a Reshape
 * back to W's shape when the quantized form is 2-D), placed where W was defined. Methods
 * that change the consumers rewrite them: MatMulNBits replaces each MatMul reading W;
 * low-rank replaces each MatMul/Gemm/Conv by two.
 */
import type { onnx } from 'onnx-proto';
import type { CompressionOptions, TensorCompressionResult } from '../../../shared/compress';
import { decodeValues } from '../../analysis/decode';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import type { TensorEntry } from '../../formats/types';
import {
  allFinite,
  dequantizeBlocks,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  layoutDims,
  packNibbles,
  pruneMagnitude,
  pruneNM,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  relativeFrobeniusError,
  type MatrixLayout,
} from '../kernels';
import { checkLowRankLimits, factoriseLowRank, LowRankRefusal, multiplyFactors } from '../lowrank';
import {
  attr,
  defaultOpset,
  ensureDomain,
  floatAttribute,
  intAttribute,
  irVersionOf,
  isGraphOutput,
  makeNode,
  nodeIndexIn,
  onlyDirectMatMul,
  raiseIrVersion,
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

/** Defaults of the method levels (CompressionOptions fields left out). */
export const METHOD_DEFAULTS = {
  sparsity: 0.5,
  n: 2,
  m: 4,
  blockSize: 32,
  int4Format: 'matmulnbits',
  energy: 0.9,
} as const;

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

interface NewTensor {
  readonly name: string;
  readonly dataType: number;
  readonly dims: readonly number[];
  readonly bytes: Uint8Array;
}

type Outcome = Pick<TensorCompressionResult, 'bytesAfter' | 'relativeError' | 'detail'>;

function bytesOf(array: ArrayBufferView): Uint8Array {
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
function replaceWeight(
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
function reshapeTo(
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

/** Raise the default opset to `target` once; a failure skips the tensor with the reason. */
function needOpset(ctx: EditContext, target: number, why: string): void {
  if (defaultOpset(ctx.model) >= target) return;
  const failure = ctx.raiseFailures.get(target);
  if (failure) throw new Skip(`${why} needs opset ${target}: ${failure}`);
  try {
    const note = raiseOpset(ctx.model, ctx.modelPath, target, ctx.names);
    if (note) ctx.notes.push(`${note} (${why})`);
  } catch (error) {
    const reason = (error as Error).message;
    ctx.raiseFailures.set(target, reason);
    throw new Skip(`${why} needs opset ${target}: ${reason}`);
  }
}

function layoutOrSkip(job: WeightJob, method: string): MatrixLayout & { kind: string } {
  const layout = weightLayout(job.uses, job.entry.info.shape);
  if (typeof layout === 'string') throw new Skip(`${method} needs an input axis: ${layout}`);
  return layout;
}

function requireFinite(job: WeightJob): void {
  if (!allFinite(job.values)) throw new Skip('holds non-finite values (inf or NaN)');
}

function floatTensor(name: string, dims: readonly number[], values: Float32Array): NewTensor {
  return { name, dataType: ONNX_DATA_TYPE.FLOAT, dims, bytes: bytesOf(values) };
}

function countZeros(values: Float32Array): number {
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
  return zeros;
}

function prune(ctx: EditContext, job: WeightJob, options: CompressionOptions): Outcome {
  const sparsity = options.sparsity ?? METHOD_DEFAULTS.sparsity;
  const pruned = pruneMagnitude(job.values, sparsity);
  replaceWeight(ctx, job.slot, [floatTensor(job.slot.name, job.entry.info.shape, pruned)], []);
  const zeros = countZeros(pruned);
  return {
    bytesAfter: pruned.byteLength,
    relativeError: relativeFrobeniusError(job.values, pruned),
    detail: `magnitude pruning: ${zeros} of ${pruned.length} values zero (${((100 * zeros) / pruned.length).toFixed(1)}%)`,
  };
}

function pruneNm(ctx: EditContext, job: WeightJob, options: CompressionOptions): Outcome {
  const n = options.n ?? METHOD_DEFAULTS.n;
  const m = options.m ?? METHOD_DEFAULTS.m;
  const layout = layoutOrSkip(job, `${n}:${m} pruning`);
  const pruned = pruneNM(job.values, layout, n, m);
  replaceWeight(ctx, job.slot, [floatTensor(job.slot.name, job.entry.info.shape, pruned)], []);
  const inputs = layoutDims(layout).inputs;
  return {
    bytesAfter: pruned.byteLength,
    relativeError: relativeFrobeniusError(job.values, pruned),
    detail: `${n}:${m} pruning along the input dimension (${layout.kind}, ${inputs} inputs per output)`,
  };
}

function int8(ctx: EditContext, job: WeightJob): Outcome {
  const layout = layoutOrSkip(job, 'int8 per-channel');
  requireFinite(job);
  needOpset(ctx, 13, 'per-axis DequantizeLinear');
  const quantized = quantizeInt8PerChannel(job.values, layout);
  const name = job.slot.name;
  const qName = ctx.names.fresh(`${name}_quantized`);
  const scaleName = ctx.names.fresh(`${name}_scale`);
  const axis = layout.inputAxis === 0 ? 1 : 0;
  const made = reshapeTo(ctx, job, (output) =>
    makeNode(
      'DequantizeLinear',
      [qName, scaleName],
      [output],
      ctx.names.fresh(`${name}_DequantizeLinear`),
      [attr.int('axis', axis)],
    ),
  );
  const tensors: NewTensor[] = [
    {
      name: qName,
      dataType: ONNX_DATA_TYPE.INT8,
      dims: [layout.rows, layout.cols],
      bytes: bytesOf(quantized.q),
    },
    floatTensor(scaleName, [quantized.scales.length], quantized.scales),
    ...made.tensors,
  ];
  replaceWeight(ctx, job.slot, tensors, made.nodes);
  const restored = dequantizeBlocks(quantized, layout);
  return {
    bytesAfter: tensors.reduce((sum, t) => sum + t.bytes.length, 0),
    relativeError: relativeFrobeniusError(job.values, restored),
    detail: `int8 per output channel, symmetric (DequantizeLinear axis ${axis}, ${quantized.scales.length} scales)`,
  };
}

const MATMULNBITS_BLOCK_SIZES = new Set([16, 32, 64, 128, 256]);

function int4(ctx: EditContext, job: WeightJob, options: CompressionOptions): Outcome {
  const blockSize = options.blockSize ?? METHOD_DEFAULTS.blockSize;
  if (!MATMULNBITS_BLOCK_SIZES.has(blockSize)) {
    throw new RangeError(`int4 block size must be 16, 32, 64, 128 or 256, got ${blockSize}`);
  }
  const layout = layoutOrSkip(job, 'int4 block-wise');
  requireFinite(job);
  const name = job.slot.name;
  const quantized = quantizeInt4Blocks(job.values, layout, blockSize);
  const restored = dequantizeBlocks(quantized, layout);
  const relativeError = relativeFrobeniusError(job.values, restored);
  const format = options.int4Format ?? METHOD_DEFAULTS.int4Format;
  if (format === 'matmulnbits' && onlyDirectMatMul(job.uses) && layout.kind === 'matmul') {
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
  needOpset(ctx, 21, 'int4 block-wise DequantizeLinear');
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

function halfPrecision(ctx: EditContext, job: WeightJob, method: 'fp16' | 'bf16'): Outcome {
  if (method === 'bf16') needOpset(ctx, 13, 'Cast from bfloat16');
  const bits =
    method === 'fp16' ? float32ToFloat16Bits(job.values) : float32ToBfloat16Bits(job.values);
  const dtype = method === 'fp16' ? 'float16' : 'bfloat16';
  const name = job.slot.name;
  const halfName = ctx.names.fresh(`${name}_${method}`);
  replaceWeight(
    ctx,
    job.slot,
    [
      {
        name: halfName,
        dataType: method === 'fp16' ? ONNX_DATA_TYPE.FLOAT16 : ONNX_DATA_TYPE.BFLOAT16,
        dims: job.entry.info.shape,
        bytes: bytesOf(bits),
      },
    ],
    [
      makeNode('Cast', [halfName], [name], ctx.names.fresh(`${name}_Cast`), [
        attr.int('to', ONNX_DATA_TYPE.FLOAT),
      ]),
    ],
  );
  const restored = decodeValues(dtype, bytesOf(bits), bits.length);
  return {
    bytesAfter: bits.byteLength,
    relativeError: relativeFrobeniusError(job.values, restored),
    detail: `${dtype} storage, Cast to float32 before use`,
  };
}

async function lowRank(
  ctx: EditContext,
  job: WeightJob,
  options: CompressionOptions,
): Promise<Outcome> {
  const layout = layoutOrSkip(job, 'low-rank');
  if (layout.kind === 'recurrent' || layout.kind === 'embedding')
    throw new Skip('low-rank applies to MatMul, Gemm and Conv weights');
  for (const use of job.uses) {
    if (use.chain.length > 0)
      throw new Skip(
        `low-rank needs the weight read directly, not through ${use.chain.join(' → ')}`,
      );
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
    factors = await factoriseLowRank(
      job.values,
      rows,
      cols,
      options.rank !== undefined
        ? { rank: options.rank }
        : { energy: options.energy ?? METHOD_DEFAULTS.energy },
      { signal: ctx.signal },
    );
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
  const tensors = [floatTensor(aName, aDims, a), floatTensor(bName, bDims, b)];
  for (const use of job.uses)
    rewriteForLowRank(ctx, use, aName, bName, layout.kind, shape.length - 2);
  replaceWeight(ctx, job.slot, tensors, []);
  return {
    bytesAfter: a.byteLength + b.byteLength,
    relativeError: relativeFrobeniusError(
      job.values,
      await multiplyFactors(a, b, rows, rank, cols),
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
    first = makeNode('Gemm', [inputs[0]!, left], [mid], ctx.names.fresh(`${label}_lowrank_1`), [
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

/** Apply `options.method` to one weight; throws Skip (with the reason) when it does not apply. */
export async function compressWeight(
  ctx: EditContext,
  job: WeightJob,
  options: CompressionOptions,
): Promise<Outcome> {
  switch (options.method) {
    case 'prune':
      return prune(ctx, job, options);
    case 'nm':
      return pruneNm(ctx, job, options);
    case 'int8':
      return int8(ctx, job);
    case 'int4':
      return int4(ctx, job, options);
    case 'lowrank':
      return lowRank(ctx, job, options);
    case 'fp16':
    case 'bf16':
      return halfPrecision(ctx, job, options.method);
  }
}

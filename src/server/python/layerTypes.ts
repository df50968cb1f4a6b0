/**
 * The torch.nn layers LayerLens links to tensors, with the parameter shapes PyTorch gives
 * them from the constructor's arguments (the names and layouts of `state_dict()`), and the
 * ONNX operators they export to.
 */
import { concrete, type PyValue } from './pythonValues';

export interface LayerArguments {
  readonly positional: readonly (PyValue | null)[];
  readonly keywords: Readonly<Record<string, PyValue | null>>;
}

/** A dimension that the arguments do not fix (a variable without a known value) is null. */
export type Dim = number | null;

export interface ExpectedParameter {
  /** Name relative to the layer, as in the state dict: `weight`, `weight_ih_l0`, `out_proj.bias`. */
  readonly name: string;
  readonly shape: readonly Dim[];
}

interface LayerTypeSpec {
  /** Operators a consuming ONNX node of this layer can have. */
  readonly onnxOps: readonly string[];
  readonly parameters: (args: ArgumentReader) => ExpectedParameter[];
}

/** Reads a constructor argument given by position or keyword, with PyTorch's default. */
export class ArgumentReader {
  constructor(private readonly args: LayerArguments) {}

  /** The argument (constructor parameters not bound by a call take their defaults); undefined when absent. */
  value(position: number, keyword: string): PyValue | null | undefined {
    if (Object.hasOwn(this.args.keywords, keyword))
      return concrete(this.args.keywords[keyword] ?? null);
    return position < this.args.positional.length
      ? concrete(this.args.positional[position] ?? null)
      : undefined;
  }

  int(position: number, keyword: string, fallback: number | null = null): Dim {
    const value = this.value(position, keyword);
    if (value === undefined) return fallback;
    return value?.kind === 'int' ? value.value : null;
  }

  bool(position: number, keyword: string, fallback: boolean): boolean | null {
    const value = this.value(position, keyword);
    if (value === undefined) return fallback;
    return value?.kind === 'bool' ? value.value : null;
  }

  /** An int or a tuple of ints, spread to `rank` dimensions (kernel sizes). */
  dims(position: number, keyword: string, rank: number): Dim[] {
    const value = this.value(position, keyword);
    if (value?.kind === 'int') return Array<Dim>(rank).fill(value.value);
    if (value?.kind === 'tuple' && value.items.length === rank) {
      return value.items.map(intOf);
    }
    return Array<Dim>(rank).fill(null);
  }

  /** `normalized_shape` of the norms: an int or a tuple; its length is unknown when it is neither. */
  shape(position: number, keyword: string): Dim[] {
    const value = this.value(position, keyword);
    if (value?.kind === 'int') return [value.value];
    if (value?.kind === 'tuple') return value.items.map(intOf);
    return [null];
  }
}

function intOf(item: PyValue | null): Dim {
  const value = concrete(item);
  return value?.kind === 'int' ? value.value : null;
}

function times(a: Dim, b: Dim): Dim {
  return a === null || b === null ? null : a * b;
}

function divide(a: Dim, b: Dim): Dim {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** Weight and (unless `bias=False`) bias. */
function withBias(weight: readonly Dim[], bias: Dim, hasBias: boolean | null): ExpectedParameter[] {
  const parameters: ExpectedParameter[] = [{ name: 'weight', shape: weight }];
  if (hasBias !== false) parameters.push({ name: 'bias', shape: [bias] });
  return parameters;
}

function convolution(rank: number, transposed: boolean): LayerTypeSpec {
  return {
    onnxOps: [transposed ? 'ConvTranspose' : 'Conv'],
    parameters: (args) => {
      const inChannels = args.int(0, 'in_channels');
      const outChannels = args.int(1, 'out_channels');
      const kernel = args.dims(2, 'kernel_size', rank);
      const groups = args.int(6, 'groups', 1);
      const hasBias = args.bool(7, 'bias', true);
      const weight = transposed
        ? [inChannels, divide(outChannels, groups), ...kernel]
        : [outChannels, divide(inChannels, groups), ...kernel];
      return withBias(weight, outChannels, hasBias);
    },
  };
}

/** Gates per step: LSTM 4, GRU 3, plain RNN 1. */
function recurrent(gates: number, onnxOp: string, hasBiasPosition: number): LayerTypeSpec {
  return {
    onnxOps: [onnxOp],
    parameters: (args) => {
      const input = args.int(0, 'input_size');
      const hidden = args.int(1, 'hidden_size');
      const layers = args.int(2, 'num_layers', 1);
      const hasBias = args.bool(hasBiasPosition, 'bias', true);
      // batch_first and dropout sit between bias and bidirectional.
      const bidirectional = args.bool(hasBiasPosition + 3, 'bidirectional', false);
      const directions = bidirectional ? 2 : 1;
      const gateRows = times(gates, hidden);
      const parameters: ExpectedParameter[] = [];
      // Unknown layer count: the first layer's names still match.
      for (let layer = 0; layer < (layers ?? 1); layer++) {
        for (const suffix of directions === 2 ? ['', '_reverse'] : ['']) {
          const layerInput = layer === 0 ? input : times(hidden, directions);
          parameters.push({ name: `weight_ih_l${layer}${suffix}`, shape: [gateRows, layerInput] });
          parameters.push({ name: `weight_hh_l${layer}${suffix}`, shape: [gateRows, hidden] });
          if (hasBias !== false) {
            parameters.push({ name: `bias_ih_l${layer}${suffix}`, shape: [gateRows] });
            parameters.push({ name: `bias_hh_l${layer}${suffix}`, shape: [gateRows] });
          }
        }
      }
      return parameters;
    },
  };
}

function recurrentCell(gates: number, onnxOp: string): LayerTypeSpec {
  return {
    onnxOps: [onnxOp],
    parameters: (args) => {
      const input = args.int(0, 'input_size');
      const hidden = args.int(1, 'hidden_size');
      const hasBias = args.bool(2, 'bias', true);
      const gateRows = times(gates, hidden);
      const parameters: ExpectedParameter[] = [
        { name: 'weight_ih', shape: [gateRows, input] },
        { name: 'weight_hh', shape: [gateRows, hidden] },
      ];
      if (hasBias !== false) {
        parameters.push({ name: 'bias_ih', shape: [gateRows] });
        parameters.push({ name: 'bias_hh', shape: [gateRows] });
      }
      return parameters;
    },
  };
}

function batchNorm(affineDefault: boolean, trackDefault: boolean): LayerTypeSpec {
  return {
    onnxOps: ['BatchNormalization', 'InstanceNormalization'],
    parameters: (args) => {
      const features = args.int(0, 'num_features');
      const parameters: ExpectedParameter[] = [];
      if (args.bool(3, 'affine', affineDefault) !== false) {
        parameters.push({ name: 'weight', shape: [features] });
        parameters.push({ name: 'bias', shape: [features] });
      }
      if (args.bool(4, 'track_running_stats', trackDefault) !== false) {
        parameters.push({ name: 'running_mean', shape: [features] });
        parameters.push({ name: 'running_var', shape: [features] });
        parameters.push({ name: 'num_batches_tracked', shape: [] });
      }
      return parameters;
    },
  };
}

const LINEAR: LayerTypeSpec = {
  onnxOps: ['MatMul', 'Gemm'],
  parameters: (args) => {
    const inFeatures = args.int(0, 'in_features');
    const outFeatures = args.int(1, 'out_features');
    return withBias([outFeatures, inFeatures], outFeatures, args.bool(2, 'bias', true));
  },
};

const EMBEDDING: LayerTypeSpec = {
  onnxOps: ['Gather'],
  parameters: (args) => [
    { name: 'weight', shape: [args.int(0, 'num_embeddings'), args.int(1, 'embedding_dim')] },
  ],
};

const LAYER_TYPES: Readonly<Record<string, LayerTypeSpec>> = {
  Linear: LINEAR,
  Bilinear: {
    onnxOps: [],
    parameters: (args) => {
      const out = args.int(2, 'out_features');
      return withBias(
        [out, args.int(0, 'in1_features'), args.int(1, 'in2_features')],
        out,
        args.bool(3, 'bias', true),
      );
    },
  },
  Conv1d: convolution(1, false),
  Conv2d: convolution(2, false),
  Conv3d: convolution(3, false),
  ConvTranspose1d: convolution(1, true),
  ConvTranspose2d: convolution(2, true),
  ConvTranspose3d: convolution(3, true),
  Embedding: EMBEDDING,
  EmbeddingBag: EMBEDDING,
  LSTM: recurrent(4, 'LSTM', 3),
  GRU: recurrent(3, 'GRU', 3),
  // RNN's fourth argument is the nonlinearity; bias comes after it.
  RNN: recurrent(1, 'RNN', 4),
  LSTMCell: recurrentCell(4, 'LSTM'),
  GRUCell: recurrentCell(3, 'GRU'),
  RNNCell: recurrentCell(1, 'RNN'),
  MultiheadAttention: {
    onnxOps: ['MatMul', 'Gemm', 'Attention', 'MultiHeadAttention'],
    parameters: (args) => {
      const embed = args.int(0, 'embed_dim');
      const hasBias = args.bool(3, 'bias', true);
      const parameters: ExpectedParameter[] = [
        { name: 'in_proj_weight', shape: [times(3, embed), embed] },
      ];
      if (hasBias !== false) parameters.push({ name: 'in_proj_bias', shape: [times(3, embed)] });
      parameters.push({ name: 'out_proj.weight', shape: [embed, embed] });
      if (hasBias !== false) parameters.push({ name: 'out_proj.bias', shape: [embed] });
      return parameters;
    },
  },
  LayerNorm: {
    onnxOps: ['LayerNormalization'],
    parameters: (args) => {
      const shape = args.shape(0, 'normalized_shape');
      if (args.bool(2, 'elementwise_affine', true) === false) return [];
      const parameters: ExpectedParameter[] = [{ name: 'weight', shape }];
      if (args.bool(3, 'bias', true) !== false) parameters.push({ name: 'bias', shape });
      return parameters;
    },
  },
  RMSNorm: {
    onnxOps: ['RMSNormalization', 'SimplifiedLayerNormalization'],
    parameters: (args) =>
      args.bool(2, 'elementwise_affine', true) === false
        ? []
        : [{ name: 'weight', shape: args.shape(0, 'normalized_shape') }],
  },
  GroupNorm: {
    onnxOps: ['GroupNormalization', 'InstanceNormalization'],
    parameters: (args) => {
      const channels = args.int(1, 'num_channels');
      return args.bool(3, 'affine', true) === false ? [] : withBias([channels], channels, true);
    },
  },
  BatchNorm1d: batchNorm(true, true),
  BatchNorm2d: batchNorm(true, true),
  BatchNorm3d: batchNorm(true, true),
  InstanceNorm1d: batchNorm(false, false),
  InstanceNorm2d: batchNorm(false, false),
  InstanceNorm3d: batchNorm(false, false),
  PReLU: {
    onnxOps: ['PRelu'],
    parameters: (args) => [{ name: 'weight', shape: [args.int(0, 'num_parameters', 1)] }],
  },
};

export function isLayerType(name: string): boolean {
  return Object.hasOwn(LAYER_TYPES, name);
}

/** The parameters a layer of this type and these arguments has, in state-dict order. */
export function expectedParameters(layerType: string, args: LayerArguments): ExpectedParameter[] {
  const spec = Object.hasOwn(LAYER_TYPES, layerType) ? LAYER_TYPES[layerType] : undefined;
  if (!spec) return [];
  return spec.parameters(new ArgumentReader(args));
}

export function onnxOpsOf(layerType: string): readonly string[] {
  return (Object.hasOwn(LAYER_TYPES, layerType) ? LAYER_TYPES[layerType]?.onnxOps : []) ?? [];
}

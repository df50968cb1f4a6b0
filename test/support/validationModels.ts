/**
 * Small ONNX models whose behaviour under sample inputs is known in advance, for testing
 * that validation of a compressed model notices when its inputs cannot exercise the model:
 *
 * - spatialContrastNet: at 1x1 the output is a function of the biases only (the same for
 *   every input); at 32x32 it depends on the input.
 * - saturatedSigmoidNet: the score saturates above 0.999 with almost no spread.
 * - unreachedBranchNet: one branch is gated off by a constant all-false mask, so its
 *   weight ('unused.weight') never moves the output.
 * - reluDeadNet: a −100 bias before Relu makes every output 0.
 *
 * All are opset 17 (default domain), float32, with seeded random weights of the usual
 * fan-in scale; the same call always builds the same bytes.
 */
import type { onnx } from 'onnx-proto';
import { seededNormal } from '../../src/server/runtime/sampleInputs';
import { attribute, graph, model, node, tensor, valueInfo } from './onnxBuilder';

/** `count` values of N(0, scale²) from a seed. */
function normal(count: number, seed: number, scale: number): number[] {
  const next = seededNormal(seed);
  return Array.from({ length: count }, () => next() * scale);
}

/** A float32 initializer of N(0, scale²) values. */
function randomTensor(
  name: string,
  shape: readonly number[],
  seed: number,
  scale: number,
): onnx.ITensorProto {
  const count = shape.reduce((a, b) => a * b, 1);
  return tensor(name, 'float32', shape, normal(count, seed, scale));
}

/** He-style scale for a layer with `fanIn` inputs. */
function heScale(fanIn: number): number {
  return Math.sqrt(2 / fanIn);
}

/**
 * Input `image` float32 [1, 3, 'height', 'width'] → output `logits` float32 [1, 4].
 *
 * Conv 3x3 pad 1 (3→8, 'conv1.weight', 'conv1.bias') minus its GlobalAveragePool (each
 * channel becomes x − spatial mean: identically 0 at 1x1) → Relu → Conv 3x3 pad 1 (8→8,
 * 'conv2.weight', 'conv2.bias') → GlobalAveragePool → Flatten → Gemm (8→4, transB,
 * 'fc.weight' [4, 8], 'fc.bias' [4]).
 */
export function spatialContrastNet(
  options: {
    /** Input channels (3: an image input; another count hides the spatial role). */
    readonly channels?: number;
    /** Names of the open height and width (null: unnamed). */
    readonly dims?: readonly [string | null, string | null];
  } = {},
): onnx.IModelProto {
  const channels = options.channels ?? 3;
  const [height, width] = options.dims ?? ['height', 'width'];
  const conv3x3 = [attribute.ints('kernel_shape', [3, 3]), attribute.ints('pads', [1, 1, 1, 1])];
  return model(
    graph({
      name: 'spatial_contrast_net',
      initializers: [
        randomTensor('conv1.weight', [8, channels, 3, 3], 101, heScale(9 * channels)),
        randomTensor('conv1.bias', [8], 102, 0.1),
        randomTensor('conv2.weight', [8, 8, 3, 3], 103, heScale(72)),
        randomTensor('conv2.bias', [8], 104, 0.1),
        randomTensor('fc.weight', [4, 8], 105, heScale(8)),
        randomTensor('fc.bias', [4], 106, 0.1),
      ],
      inputs: [valueInfo('image', 'float32', [1, channels, height, width])],
      outputs: [valueInfo('logits', 'float32', [1, 4])],
      nodes: [
        node('Conv', ['image', 'conv1.weight', 'conv1.bias'], ['conv1_out'], {
          name: 'conv1',
          attributes: conv3x3,
        }),
        node('GlobalAveragePool', ['conv1_out'], ['conv1_mean'], { name: 'mean1' }),
        node('Sub', ['conv1_out', 'conv1_mean'], ['contrast'], { name: 'contrast' }),
        node('Relu', ['contrast'], ['relu_out'], { name: 'relu' }),
        node('Conv', ['relu_out', 'conv2.weight', 'conv2.bias'], ['conv2_out'], {
          name: 'conv2',
          attributes: conv3x3,
        }),
        node('GlobalAveragePool', ['conv2_out'], ['pooled'], { name: 'pool' }),
        node('Flatten', ['pooled'], ['flat'], {
          name: 'flatten',
          attributes: [attribute.int('axis', 1)],
        }),
        node('Gemm', ['flat', 'fc.weight', 'fc.bias'], ['logits'], {
          name: 'fc',
          attributes: [attribute.int('transB', 1)],
        }),
      ],
    }),
  );
}

/**
 * Input `features` float32 [1, 64] → output `score` float32 [1, 1].
 *
 * Gemm (64→32, transB, 'fc1.weight' [32, 64], 'fc1.bias' [32]) → Relu → Gemm (32→1,
 * transB, 'head.weight' [1, 32], 'head.bias' [1] = 12) → Sigmoid.
 */
export function saturatedSigmoidNet(): onnx.IModelProto {
  const transB = [attribute.int('transB', 1)];
  return model(
    graph({
      name: 'saturated_sigmoid_net',
      initializers: [
        randomTensor('fc1.weight', [32, 64], 201, 1 / Math.sqrt(64)),
        randomTensor('fc1.bias', [32], 202, 0.05),
        randomTensor('head.weight', [1, 32], 203, 1 / Math.sqrt(32)),
        tensor('head.bias', 'float32', [1], [12]),
      ],
      inputs: [valueInfo('features', 'float32', [1, 64])],
      outputs: [valueInfo('score', 'float32', [1, 1])],
      nodes: [
        node('Gemm', ['features', 'fc1.weight', 'fc1.bias'], ['hidden'], {
          name: 'fc1',
          attributes: transB,
        }),
        node('Relu', ['hidden'], ['hidden_relu'], { name: 'relu' }),
        node('Gemm', ['hidden_relu', 'head.weight', 'head.bias'], ['logit'], {
          name: 'head',
          attributes: transB,
        }),
        node('Sigmoid', ['logit'], ['score'], { name: 'sigmoid' }),
      ],
    }),
  );
}

/**
 * Input `x` float32 [1, 16] → output `y` float32 [1, 8].
 *
 * y = x·'used.weight' + Where('gate.mask', x·'unused.weight', 'gate.zero'), where
 * 'gate.mask' is a constant all-false bool [8] initializer and 'gate.zero' a float32 scalar
 * 0: the second branch is well formed but never reaches the output.
 */
export function unreachedBranchNet(): onnx.IModelProto {
  return model(
    graph({
      name: 'unreached_branch_net',
      initializers: [
        randomTensor('used.weight', [16, 8], 301, 1 / Math.sqrt(16)),
        randomTensor('unused.weight', [16, 8], 302, 1 / Math.sqrt(16)),
        tensor('gate.mask', 'bool', [8], new Array<number>(8).fill(0)),
        tensor('gate.zero', 'float32', [], [0]),
      ],
      inputs: [valueInfo('x', 'float32', [1, 16])],
      outputs: [valueInfo('y', 'float32', [1, 8])],
      nodes: [
        node('MatMul', ['x', 'used.weight'], ['used_out'], { name: 'used' }),
        node('MatMul', ['x', 'unused.weight'], ['unused_out'], { name: 'unused' }),
        node('Where', ['gate.mask', 'unused_out', 'gate.zero'], ['gated'], { name: 'gate' }),
        node('Add', ['used_out', 'gated'], ['y'], { name: 'sum' }),
      ],
    }),
  );
}

/**
 * Input `x` float32 [1, 16] → output `y` float32 [1, 8].
 *
 * MatMul ('w' [16, 8]) → Add ('bias' [8], all −100) → Relu: every output is 0 for inputs
 * of moderate size (|x| < 1 keeps x·w far below 100).
 */
export function reluDeadNet(): onnx.IModelProto {
  return model(
    graph({
      name: 'relu_dead_net',
      initializers: [
        randomTensor('w', [16, 8], 401, 1 / Math.sqrt(16)),
        tensor('bias', 'float32', [8], new Array<number>(8).fill(-100)),
      ],
      inputs: [valueInfo('x', 'float32', [1, 16])],
      outputs: [valueInfo('y', 'float32', [1, 8])],
      nodes: [
        node('MatMul', ['x', 'w'], ['xw'], { name: 'matmul' }),
        node('Add', ['xw', 'bias'], ['pre'], { name: 'add_bias' }),
        node('Relu', ['pre'], ['y'], { name: 'relu' }),
      ],
    }),
  );
}

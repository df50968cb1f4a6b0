/**
 * A two-layer MLP of Gaussian weights (x [1, input] → MatMul fc1 → Relu → MatMul fc2 → y
 * [1, output]), written as `mlp.onnx`: the model of the webview tests of plans, labels and
 * validated reports.
 */
import { gaussianMatrix } from './matrices';
import { graph, model, node, tensor, valueInfo, writeModel } from './onnxBuilder';

export interface MlpSizes {
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
}

export function writeGaussianMlp(
  folder: string,
  { input, hidden, output }: MlpSizes = { input: 64, hidden: 128, output: 32 },
): Promise<string> {
  const w = (rows: number, cols: number, seed: number) =>
    Array.from(gaussianMatrix(rows, cols, seed), (v) => v * 0.1);
  return writeModel(
    folder,
    'mlp.onnx',
    model(
      graph({
        nodes: [
          node('MatMul', ['x', 'w1'], ['h'], { name: 'fc1' }),
          node('Relu', ['h'], ['a']),
          node('MatMul', ['a', 'w2'], ['y'], { name: 'fc2' }),
        ],
        initializers: [
          tensor('w1', 'float32', [input, hidden], w(input, hidden, 1)),
          tensor('w2', 'float32', [hidden, output], w(hidden, output, 2)),
        ],
        inputs: [valueInfo('x', 'float32', [1, input])],
        outputs: [valueInfo('y', 'float32', [1, output])],
      }),
    ),
  );
}

/**
 * A generated multilayer perceptron for the benches that run models: 4 MatMul + Tanh
 * layers of seeded N(0, 1/width) weights, input and output [batch, width].
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { seededNormal } from '../../src/server/runtime/sampleInputs';

/** A 4-layer tanh MLP [batch, width] → [batch, width] with random weights. */
export async function writeMlp(folder: string, width: number): Promise<string> {
  const next = seededNormal(7);
  const tensors: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  let input = 'x';
  for (let l = 0; l < 4; l++) {
    const values = Float32Array.from({ length: width * width }, () => next() / Math.sqrt(width));
    tensors.push({
      name: `fc${l}.weight`,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims: [width, width],
      rawData: new Uint8Array(values.buffer),
    });
    nodes.push({ opType: 'MatMul', input: [input, `fc${l}.weight`], output: [`m${l}`] });
    nodes.push({ opType: 'Tanh', input: [`m${l}`], output: [l === 3 ? 'y' : `h${l}`] });
    input = `h${l}`;
  }
  const info = (name: string): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] },
      },
    },
  });
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'mlp',
      node: nodes,
      initializer: tensors,
      input: [info('x')],
      output: [info('y')],
    },
  };
  const path = join(folder, `mlp-${width}.onnx`);
  await writeFile(path, onnx.ModelProto.encode(model).finish());
  return path;
}

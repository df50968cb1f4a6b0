/**
 * Generated ONNX models for the graph view's tests and bench: `stages` name scopes
 * (`/stage.3/…`) of `nodesPerStage` nodes each, in a chain with skip connections (every
 * fourth node an Add reading the node three back), every other MatMul weight a small
 * initializer drawn as a badge. Values vary by position so that overlays have a spread.
 */
import type { onnx } from 'onnx-proto';
import { graph, model, node, tensor, valueInfo, writeModel } from './onnxBuilder';

export interface ScopedModelOptions {
  readonly stages: number;
  readonly nodesPerStage: number;
}

/** The model and how many operator nodes it holds. */
export function scopedModel({ stages, nodesPerStage }: ScopedModelOptions): onnx.IModelProto {
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let previous = 'input';
  const outputs: string[] = [];
  for (let s = 0; s < stages; s++) {
    for (let k = 0; k < nodesPerStage; k++) {
      const name = `/stage.${s}/op_${k}`;
      const out = `stage.${s}.v${k}`;
      if (k % 4 === 0) {
        const weight = `stage.${s}.op_${k}.weight`;
        // Weights of growing spread: stage s, node k has std ≈ (s + 1) · (k + 1).
        const scale = (s + 1) * (k + 1);
        initializers.push(tensor(weight, 'float32', [2, 2], [scale, -scale, 0, scale / 2]));
        nodes.push(node('MatMul', [previous, weight], [out], { name: `${name}/MatMul` }));
      } else if (k % 4 === 3) {
        nodes.push(
          node('Add', [previous, outputs[outputs.length - 3]!], [out], { name: `${name}/Add` }),
        );
      } else {
        nodes.push(node('Relu', [previous], [out], { name: `${name}/Relu` }));
      }
      outputs.push(out);
      previous = out;
    }
  }
  return model(
    graph({
      nodes,
      initializers,
      inputs: [valueInfo('input', 'float32', ['batch', 2])],
      outputs: [valueInfo(previous, 'float32', ['batch', 2])],
    }),
  );
}

export function writeScopedModel(
  folder: string,
  fileName: string,
  options: ScopedModelOptions,
): Promise<string> {
  return writeModel(folder, fileName, scopedModel(options));
}

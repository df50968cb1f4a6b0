import type { OpenedModel } from '../formats/types';
import { OnnxModel } from './model';

/**
 * The decoded model behind an opened ONNX file: the one its reader kept (or re-reads on
 * demand, for files too large to keep), else the file read and decoded now. `doing`
 * completes "the model changed while it was being …".
 */
export async function onnxModelOf(opened: OpenedModel, doing: string): Promise<OnnxModel> {
  const model = opened.onnx ? await opened.onnx() : await OnnxModel.read(opened.path);
  model.checkSameTensors(opened, doing);
  return model;
}

/**
 * The decoded model for questions of structure alone (which tensors are weights, the graph
 * view): a packed model's inner model, whose tensor bytes are left out, or onnxModelOf.
 */
export async function onnxStructureOf(opened: OpenedModel, doing: string): Promise<OnnxModel> {
  if (!opened.onnxStructure) return onnxModelOf(opened, doing);
  const model = await opened.onnxStructure();
  model.checkSameTensors(opened, doing);
  return model;
}

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

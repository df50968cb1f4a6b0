/**
 * The commands that LayerLens code lenses in Python scripts run, with their arguments.
 * The server puts them on lenses; the extension registers them. Arguments travel as
 * JSON: the extension turns the model's URI string back into a `vscode.Uri`.
 */

/** Opens the model in the LayerLens editor; with a tensor name, selects and reveals its row. */
export const SHOW_TENSOR_COMMAND = 'layerlens.showTensor';
export type ShowTensorArguments = [modelUri: string, tensorName?: string];

/** Starts compressing the given tensors of the model (the compression flow asks for the method). */
export const COMPRESS_COMMAND = 'layerlens.compress';
export type CompressArguments = [modelUri: string, tensorIndices: number[]];

/** Opens the model's Graph tab on the node that reads the tensor (models with a graph). */
export const REVEAL_IN_GRAPH_COMMAND = 'layerlens.revealInGraph';
export type RevealInGraphArguments = [modelUri: string, tensorName: string];

/** Commands whose first argument is a model URI that the extension converts to a `vscode.Uri`. */
export const URI_ARGUMENT_COMMANDS: readonly string[] = [
  SHOW_TENSOR_COMMAND,
  COMPRESS_COMMAND,
  REVEAL_IN_GRAPH_COMMAND,
];

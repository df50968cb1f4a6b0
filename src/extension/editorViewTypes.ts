/**
 * The view types of the LayerLens custom editor (package.json `customEditors`), without the
 * VS Code API so that pure modules can check them too. Both are served by one provider:
 * - the main editor, the default for the model formats LayerLens reads;
 * - the `*.bin` editor at priority `option`: a `.bin` file may be a PyTorch zip or anything
 *   else, so other editors keep it unless the user picks LayerLens ("Reopen Editor With…").
 */
export const MODEL_EDITOR_VIEW_TYPE = 'layerlens.modelEditor';
export const BIN_EDITOR_VIEW_TYPE = 'layerlens.modelEditor.bin';

export const MODEL_EDITOR_VIEW_TYPES: readonly string[] = [
  MODEL_EDITOR_VIEW_TYPE,
  BIN_EDITOR_VIEW_TYPE,
];

/** Whether a tab's or menu context's view type is one of the LayerLens editor's. */
export function isModelEditorViewType(viewType: unknown): boolean {
  return typeof viewType === 'string' && MODEL_EDITOR_VIEW_TYPES.includes(viewType);
}

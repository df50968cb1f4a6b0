/**
 * From a path written in a script to the model file on disk and what LayerLens can say
 * about it: where a relative path points (the script's folder first, then each workspace
 * folder), which file of a save_pretrained folder holds the weights, and the model's
 * summary and tensors (or why there are none).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join } from 'node:path';
import { MAX_PAGE_SIZE, MAX_TENSORS } from '../../shared/limits';
import type { ModelSummary, TensorInfo } from '../../shared/model';
import { ModelFileError } from '../formats/types';
import type { ModelService } from '../modelService';
import type { ModelReference } from './scriptAnalysis';

/** Plain pickles (not torch.save checkpoints): LayerLens reads no arbitrary pickled objects. */
const PICKLE_EXTENSIONS = new Set(['.pkl']);

/** Files looked for inside a save_pretrained folder, in this order (then any *.safetensors, *.onnx). */
const FOLDER_MODEL_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'model.onnx',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
];

export type ModelState =
  | { readonly kind: 'missing'; readonly path: string }
  | { readonly kind: 'unsupported'; readonly path: string; readonly problem: string }
  | { readonly kind: 'error'; readonly path: string; readonly problem: string }
  | {
      readonly kind: 'model';
      readonly path: string;
      readonly summary: ModelSummary;
      readonly tensors: readonly TensorInfo[];
    };

async function kindOf(path: string): Promise<'file' | 'folder' | null> {
  try {
    const info = await stat(path);
    return info.isDirectory() ? 'folder' : 'file';
  } catch {
    return null;
  }
}

/** Where a written path points: the first candidate that exists, else the first candidate. */
export async function resolveScriptPath(
  written: string,
  scriptPath: string,
  workspaceFolders: readonly string[],
): Promise<{ readonly path: string; readonly exists: boolean }> {
  const candidates = isAbsolute(written)
    ? [written]
    : [dirname(scriptPath), ...workspaceFolders].map((base) => join(base, written));
  for (const candidate of candidates) {
    if ((await kindOf(candidate)) !== null) return { path: candidate, exists: true };
  }
  return { path: candidates[0]!, exists: false };
}

/** The weights file of a save_pretrained folder, or null when it holds none LayerLens knows. */
export async function modelFileInFolder(folder: string): Promise<string | null> {
  let names: string[];
  try {
    names = (await readdir(folder)).sort();
  } catch {
    return null;
  }
  const preferred = FOLDER_MODEL_FILES.find((name) => names.includes(name));
  const chosen =
    preferred ??
    names.find((name) => name.endsWith('.safetensors.index.json')) ??
    names.find((name) => name.endsWith('.safetensors')) ??
    names.find((name) => name.endsWith('.onnx'));
  return chosen === undefined ? null : join(folder, chosen);
}

/** The model file a reference names (for folders: the file inside), and whether it exists. */
export async function referencedFile(
  reference: ModelReference,
  scriptPath: string,
  workspaceFolders: readonly string[],
): Promise<{ readonly path: string; readonly exists: boolean } | null> {
  if (reference.path === null) return null;
  const resolved = await resolveScriptPath(reference.path, scriptPath, workspaceFolders);
  if (!resolved.exists) return resolved;
  if (reference.target === 'folder' || (await kindOf(resolved.path)) === 'folder') {
    const inside = await modelFileInFolder(resolved.path);
    return inside === null
      ? { path: resolved.path, exists: false }
      : { path: inside, exists: true };
  }
  return resolved;
}

/** Reads a model's summary and full tensor list through the server's (caching) model service. */
export async function readModelState(models: ModelService, path: string): Promise<ModelState> {
  if ((await kindOf(path)) === null) return { kind: 'missing', path };
  if (PICKLE_EXTENSIONS.has(extname(path).toLowerCase())) {
    return {
      kind: 'unsupported',
      path,
      problem: 'format not supported yet',
    };
  }
  try {
    const summary = await models.openModel(path);
    const tensors: TensorInfo[] = [];
    while (tensors.length < Math.min(summary.tensorCount, MAX_TENSORS)) {
      const page = await models.tensors(path, tensors.length, MAX_PAGE_SIZE);
      if (page.tensors.length === 0) break;
      tensors.push(...page.tensors);
    }
    return { kind: 'model', path, summary, tensors };
  } catch (error) {
    if (error instanceof ModelFileError) {
      return {
        kind: 'error',
        path,
        problem: error.file === path ? error.problem : `${basename(error.file)}: ${error.problem}`,
      };
    }
    throw error;
  }
}

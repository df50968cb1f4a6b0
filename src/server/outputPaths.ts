/**
 * Where LayerLens writes: every output path is decided here.
 *
 * - New models (compressed, packed, unpacked) go to the output folder: the
 *   `layerlens.output.folder` setting, a relative one starting at the source model's folder;
 *   empty: beside the source model. A path the user chose for one output is used as given.
 * - What LayerLens writes about a model (reports, recipes) goes into one folder per source
 *   model, `<model file>.layerlens/`, in the folder of the new model it describes:
 *   `models/v5.onnx` compressed to `models/v5.int8.onnx` gets
 *   `models/v5.onnx.layerlens/v5.int8.onnx.report.json`. A recipe written for the model
 *   itself (`layerlens plan`) is `models/v5.onnx.layerlens/v5.onnx.recipe.json`.
 * - A default model name is free only when neither the output folder nor the reports folder
 *   holds anything named after it, so a stale report never blocks or overwrites anything.
 * - Temporary files are not decided here: tempFiles.ts keeps them out of the workspace.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFileError } from './formats/modelFileError';

/** Suffix of the folder that holds one model's reports and recipes. */
export const ARTIFACTS_FOLDER_SUFFIX = '.layerlens';

/** What is written about a model: `<output>.<kind>.json`. */
export type ArtifactKind = 'report' | 'recipe';

/** Collision suffixes tried before giving up (`-1` … `-999`). */
const MAX_NAME_ATTEMPTS = 1000;

/** The folder new models of `source` go to; `folderSetting` is `layerlens.output.folder`. */
export function outputFolder(source: string, folderSetting = ''): string {
  const sourceFolder = path.dirname(path.resolve(source));
  const setting = folderSetting.trim();
  return setting === '' ? sourceFolder : path.resolve(sourceFolder, setting);
}

/** The folder of reports and recipes about `source` beside `output` (a new model, or `source`). */
export function artifactsFolder(source: string, output: string): string {
  return path.join(
    path.dirname(path.resolve(output)),
    `${path.basename(source)}${ARTIFACTS_FOLDER_SUFFIX}`,
  );
}

/** The report or recipe file of `output`, made from `source`. */
export function artifactPath(source: string, output: string, kind: ArtifactKind): string {
  return path.join(artifactsFolder(source, output), `${path.basename(output)}.${kind}.json`);
}

/**
 * The path of a new model whose path the user chose (`outPath`, relative to the source's
 * folder) or, without one, `name` in the output folder.
 */
export function chosenOrDefault(
  source: string,
  outPath: string | undefined,
  name: string,
  folderSetting?: string,
): string {
  return outPath
    ? path.resolve(path.dirname(path.resolve(source)), outPath)
    : path.join(outputFolder(source, folderSetting), name);
}

/** `model.onnx` → { stem: 'model', ext: '.onnx' }; `a.safetensors.index.json` keeps `.safetensors` in the stem. */
function splitName(fileName: string): { stem: string; ext: string } {
  const ext = path.extname(fileName);
  return { stem: ext ? fileName.slice(0, -ext.length) : fileName, ext };
}

/** Entries of a folder; none when it does not exist yet. */
async function entriesOf(folder: string): Promise<string[]> {
  try {
    return await fs.readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Whether any entry is `name` or starts with `name.`. */
function nameTaken(entries: readonly string[], name: string): boolean {
  const prefix = `${name}.`;
  return entries.some((entry) => entry === name || entry.startsWith(prefix));
}

/**
 * The first free path for `source` compressed with `method`: `<stem>.<method><ext>` in the
 * output folder, then `<stem>.<method>-1<ext>`, `-2`… (see the module comment).
 */
export async function defaultOutputPath(
  source: string,
  method: string,
  { ext, folderSetting }: { ext?: string; folderSetting?: string } = {},
): Promise<string> {
  const folder = outputFolder(source, folderSetting);
  const { stem, ext: sourceExt } = splitName(path.basename(source));
  const entries = [
    ...(await entriesOf(folder)),
    ...(await entriesOf(artifactsFolder(source, path.join(folder, stem)))),
  ];
  for (let attempt = 0; attempt < MAX_NAME_ATTEMPTS; attempt++) {
    const suffix = attempt === 0 ? '' : `-${attempt}`;
    const name = `${stem}.${method}${suffix}${ext ?? sourceExt}`;
    if (!nameTaken(entries, name)) return path.join(folder, name);
  }
  throw new ModelFileError(
    source,
    `no free output name: ${stem}.${method}-1 … -${MAX_NAME_ATTEMPTS - 1} all exist in ${folder}`,
  );
}

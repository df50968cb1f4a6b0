/**
 * The recipe file (`<model>.layerlens/<model>.recipe.json`, CompressionRecipe; where:
 * outputPaths.ts): built from a plan, read back
 * and checked before it is applied — its shape, and that it was made for this very model
 * (size and SHA-256 of the source file).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { CompressionOptions } from '../../shared/compress';
import { optionsProblem } from '../../shared/compressMethods';
import { MAX_RECIPE_BYTES, MAX_TENSORS } from '../../shared/limits';
import type { CompressionRecipe } from '../../shared/plan';
import { DEVIATION_METRICS } from '../../shared/sensitivity';
import { parseFileJson } from '../formats/jsonText';
import { ModelFileError } from '../formats/types';
import { OutputFiles } from '../compress/output';

/** SHA-256 (hex) of a file, streamed. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The `model` field of a recipe for the file at `file`. */
export async function recipeModel(file: string): Promise<CompressionRecipe['model']> {
  const stat = await fs.stat(file);
  return { file: path.basename(file), bytes: stat.size, sha256: await sha256OfFile(file) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Check the options of one step (the shared option check); throws with what is wrong. */
function checkStepOptions(value: unknown, where: string): CompressionOptions {
  const problem = optionsProblem(value);
  if (problem) throw new Error(`${where}: ${problem}`);
  return value as CompressionOptions;
}

/**
 * `value` as a recipe, or a ModelFileError naming `source` (the recipe file, or "recipe")
 * and what is wrong with it.
 */
export function parseRecipe(value: unknown, source: string): CompressionRecipe {
  try {
    if (!isObject(value)) throw new Error('not a JSON object');
    if (value.format !== 'layerlens-recipe') throw new Error('format is not "layerlens-recipe"');
    if (value.version !== 1) throw new Error(`version ${JSON.stringify(value.version)} is not 1`);
    const model = value.model;
    if (
      !isObject(model) ||
      typeof model.file !== 'string' ||
      typeof model.bytes !== 'number' ||
      typeof model.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(model.sha256)
    )
      throw new Error('model must have file, bytes and a hex sha256');
    const target = value.target;
    if (
      !isObject(target) ||
      !['sizeMB', 'ratio', 'deviation'].includes(target.kind as string) ||
      typeof target.value !== 'number' ||
      !(target.value > 0)
    )
      throw new Error('target must be sizeMB, ratio or deviation with a positive value');
    if (!DEVIATION_METRICS.includes(value.metric as never))
      throw new Error(`unknown metric ${JSON.stringify(value.metric)}`);
    if (!Array.isArray(value.steps)) throw new Error('steps is not a list');
    if (value.steps.length > MAX_TENSORS) throw new Error(`more than ${MAX_TENSORS} steps`);
    value.steps.forEach((step: unknown, i) => {
      if (!isObject(step) || typeof step.tensor !== 'string')
        throw new Error(`step ${i}: tensor is not a name`);
      checkStepOptions(step.options, `step ${i} (${step.tensor})`);
    });
    return value as unknown as CompressionRecipe;
  } catch (error) {
    throw new ModelFileError(source, `not a usable LayerLens recipe: ${(error as Error).message}`);
  }
}

/** Read and check a recipe file (size limit, JSON, shape). */
export async function readRecipe(file: string): Promise<CompressionRecipe> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    throw new ModelFileError(file, `cannot read the recipe (${(error as Error).message})`);
  }
  if (stat.size > MAX_RECIPE_BYTES) {
    throw new ModelFileError(
      file,
      `the recipe is ${stat.size} bytes, more than ${MAX_RECIPE_BYTES}`,
    );
  }
  const value = parseFileJson(file, await fs.readFile(file, 'utf8'), 'the recipe');
  return parseRecipe(value, file);
}

/** Refuse a recipe made for another file than `modelPath` (size, then SHA-256). */
export async function checkRecipeModel(
  recipe: CompressionRecipe,
  modelPath: string,
): Promise<void> {
  const actual = await fs.stat(modelPath);
  const made = `made for ${recipe.model.file} (${recipe.model.bytes} bytes, SHA-256 ${recipe.model.sha256.slice(0, 12)}…)`;
  if (actual.size !== recipe.model.bytes) {
    throw new ModelFileError(
      modelPath,
      `the recipe was ${made}; this file is ${actual.size} bytes`,
    );
  }
  const sha = await sha256OfFile(modelPath);
  if (sha !== recipe.model.sha256) {
    throw new ModelFileError(
      modelPath,
      `the recipe was ${made}; this file's SHA-256 is ${sha.slice(0, 12)}…`,
    );
  }
}

/** Write `recipe` to `file` (temporary name, then renamed; an existing file is never replaced). */
export async function writeRecipe(file: string, recipe: CompressionRecipe): Promise<string> {
  const taken = await fs.lstat(file).then(
    () => true,
    () => false,
  );
  if (taken) {
    throw new ModelFileError(file, 'the recipe file exists; LayerLens never overwrites a file');
  }
  const files = new OutputFiles(file);
  try {
    await fs.writeFile(files.temp(), `${JSON.stringify(recipe, null, 2)}\n`, { flag: 'wx' });
    await files.commit();
  } catch (error) {
    await files.discard();
    throw error;
  }
  return file;
}

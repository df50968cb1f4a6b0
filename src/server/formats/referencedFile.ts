/**
 * Files a model file names by a path of its own (ONNX external data, a packed delta's base
 * model): confined to the referring file's folder, as written and after following symbolic
 * links, so that a hostile file cannot make LayerLens read anywhere else.
 */
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { ModelFileError } from './modelFileError';

/** A referenced file, checked to lie inside the referring file's folder. */
export interface ReferencedFile {
  readonly path: string;
  /** Relative to the referring file's folder, with `/` separators. */
  readonly relativeName: string;
  readonly size: number;
}

function isInside(folder: string, candidate: string): boolean {
  const relative = nodePath.relative(folder, candidate);
  return relative !== '' && !relative.startsWith('..') && !nodePath.isAbsolute(relative);
}

/**
 * The path `reference` (a relative path, `/` or `\\` separated) names in `folder` (by
 * default `referrer`'s),
 * and whether something exists there; throws a ModelFileError naming `referrer` and `what`
 * (`external data location`, …) when it is absolute or leads outside the folder, as
 * written or through a symbolic link.
 */
export async function confinedPath(
  referrer: string,
  reference: string,
  what: string,
  folder = nodePath.dirname(referrer),
): Promise<{ path: string; exists: boolean }> {
  const refuse = (why: string): never => {
    throw new ModelFileError(referrer, `${what} '${reference}' ${why}`);
  };
  if (nodePath.posix.isAbsolute(reference) || nodePath.win32.isAbsolute(reference)) {
    refuse("is an absolute path; it must be a relative path inside the model's folder");
  }
  const candidate = nodePath.resolve(folder, ...reference.split(/[\\/]+/));
  if (!isInside(folder, candidate)) refuse("points outside the model's folder");
  let realPath: string;
  let realFolder: string;
  try {
    [realPath, realFolder] = await Promise.all([fsp.realpath(candidate), fsp.realpath(folder)]);
  } catch {
    return { path: candidate, exists: false };
  }
  if (!isInside(realFolder, realPath))
    refuse("leads (through a symbolic link) outside the model's folder");
  return { path: candidate, exists: true };
}

/**
 * The regular file `reference` names beside `referrer` (see confinedPath); also refused
 * when it is missing or not a regular file.
 */
export async function resolveReferencedFile(
  referrer: string,
  reference: string,
  what: string,
  folder = nodePath.dirname(referrer),
): Promise<ReferencedFile> {
  const refuse = (why: string): never => {
    throw new ModelFileError(referrer, `${what} '${reference}' ${why}`);
  };
  const { path, exists } = await confinedPath(referrer, reference, what, folder);
  if (!exists) refuse('names a file that does not exist');
  const stats = await fsp.stat(path);
  if (!stats.isFile()) refuse('is not a regular file');
  return {
    path,
    relativeName: nodePath.relative(folder, path).split(nodePath.sep).join('/'),
    size: stats.size,
  };
}

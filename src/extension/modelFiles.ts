/** Which files are models, from the shared format table: for file dialogs and command targets. */
import * as path from 'node:path';
import type * as vscode from 'vscode';
import {
  MODEL_FILE_EXTENSIONS,
  MODEL_FORMAT_INFO,
  MODEL_FORMATS,
  PACKED_EXTENSION,
} from '../shared/model';

const withoutDot = (extension: string) => extension.slice(1);

/** Models of every format LayerLens reads, not packed (as files to compress, pack or compare). */
export const UNPACKED_MODEL_EXTENSIONS: readonly string[] = MODEL_FORMATS.flatMap((format) =>
  MODEL_FORMAT_INFO[format].extensions.map(withoutDot),
);

/** File-dialog filters of model files: every format, packed files too unless `unpacked`. */
export function modelFilters(unpacked = false): { Models: string[] } {
  return {
    Models: unpacked ? [...UNPACKED_MODEL_EXTENSIONS] : MODEL_FILE_EXTENSIONS.map(withoutDot),
  };
}

/** Packed files (`.llz`), for unpacking. */
export const PACKED_MODEL_EXTENSIONS: readonly string[] = [withoutDot(PACKED_EXTENSION)];

/** Whether `uri` names a model file LayerLens opens (packed ones too unless `unpacked`). */
export function isModelFile(uri: vscode.Uri, unpacked = false): boolean {
  const extension = path.extname(uri.path).toLowerCase();
  return unpacked
    ? UNPACKED_MODEL_EXTENSIONS.includes(withoutDot(extension))
    : MODEL_FILE_EXTENSIONS.includes(extension);
}

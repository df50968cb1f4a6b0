/**
 * The table of format modules, and format detection: magic bytes first, the file-name
 * extension second (ONNX has no magic number, so `.onnx` files often land on the second).
 */
import { open as openFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { llzFormat } from './llz';
import { onnxFormat } from './onnx';
import { safetensorsFormat } from './safetensors';
import { ModelFileError, type FormatModule, type OpenedModel } from './types';

export const FORMATS: readonly FormatModule[] = [safetensorsFormat, onnxFormat, llzFormat];

/** Bytes of the file's head shown to each format's `match()`. */
const HEAD_BYTES = 4096;

async function readHead(path: string): Promise<Uint8Array> {
  const handle = await openFile(path, 'r');
  try {
    const head = new Uint8Array(HEAD_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export function detectFormat(path: string, head: Uint8Array): FormatModule | undefined {
  const extension = extname(path).toLowerCase();
  const byMagic = FORMATS.filter((format) => format.match(head));
  const byExtension = FORMATS.filter((format) => format.extensions.includes(extension));
  return byMagic.find((format) => byExtension.includes(format)) ?? byMagic[0] ?? byExtension[0];
}

/** Open a model file of any supported format; throws ModelFileError when it cannot be read. */
export async function openModelFile(path: string): Promise<OpenedModel> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new ModelFileError(path, 'the file does not exist or cannot be read');
  }
  if (!info.isFile()) throw new ModelFileError(path, 'not a regular file');
  const head = await readHead(path);
  const format = detectFormat(path, head);
  if (!format) {
    throw new ModelFileError(
      path,
      'not a model format LayerLens reads (expected ONNX or safetensors)',
    );
  }
  return format.open(path);
}

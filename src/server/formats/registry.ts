/**
 * The table of format modules, and format detection: magic bytes first, the file-name
 * extension second (ONNX has no magic number, so `.onnx` files often land on the second).
 */
import { open as openFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { ggufFormat } from './gguf';
import { llzFormat } from './llz';
import { onnxFormat } from './onnx';
import { safetensorsFormat } from './safetensors';
import type { ModelCapabilities, ModelFormat } from '../../shared/model';
import { methodsFor } from '../compress/methods';
import { onnxCompression } from '../compress/onnx/format';
import { safetensorsCompression } from '../compress/safetensorsFormat';
import { safetensorsSweepTraits } from '../sensitivity/traits';
import type { CapableFormatModule, FormatCompression, FormatSweep } from './capabilities';
import { ModelFileError, type OpenedModel } from './types';

/**
 * Every format LayerLens reads, with what it can do beyond reading (capabilities.ts:
 * optional capabilities): code asks a model's format for them, never its name.
 */
export const FORMATS: readonly CapableFormatModule[] = [
  { ...safetensorsFormat, compression: safetensorsCompression },
  { ...onnxFormat, compression: onnxCompression, runs: true },
  // Read-only: the sensitivity proxy sweeps its dequantized weights as [out, in] matrices.
  {
    ...ggufFormat,
    sweep: {
      decode: async () => undefined,
      // Types whose values are not decoded are left out with the reason.
      sweepTraits: () => (entry) =>
        entry.info.encoding?.notDecoded ?? safetensorsSweepTraits(entry),
    },
  },
  llzFormat,
];

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

export function detectFormat(path: string, head: Uint8Array): CapableFormatModule | undefined {
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
      'not a model format LayerLens reads (expected ONNX, safetensors or GGUF)',
    );
  }
  const opened = await format.open(path);
  return {
    ...opened,
    summary: { ...opened.summary, capabilities: capabilitiesOf(opened.summary.format) },
  };
}

/** The module of the format a model presents (a packed file presents the model it holds). */
export function formatModule(format: ModelFormat): CapableFormatModule {
  const module = FORMATS.find((candidate) => candidate.format === format);
  if (!module) throw new RangeError(`no format module reads ${format}`);
  return module;
}

/** What LayerLens can do with a model of `format` beyond reading it. */
export function capabilitiesOf(format: ModelFormat): ModelCapabilities {
  const module = formatModule(format);
  return {
    compress: module.compression ? methodsFor(module.compression.methods) : [],
    run: module.runs === true,
  };
}

/** The compression of the model's format; a ModelFileError when the format cannot be written. */
export function compressionOf(model: OpenedModel): FormatCompression {
  const compression = formatModule(model.summary.format).compression;
  if (!compression) {
    throw new ModelFileError(
      model.path,
      `LayerLens cannot write ${model.summary.format} files, so it cannot compress this model`,
    );
  }
  return compression;
}

/** What a sensitivity sweep of the model asks of its format; a ModelFileError when it cannot be swept. */
export function sweepOf(model: OpenedModel): FormatSweep {
  const module = formatModule(model.summary.format);
  const sweep = module.compression ?? module.sweep;
  if (!sweep) {
    throw new ModelFileError(
      model.path,
      `LayerLens cannot sweep ${model.summary.format} weights, so it has no sensitivity for this model`,
    );
  }
  return sweep;
}

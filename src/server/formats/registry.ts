/**
 * The table of format modules, and format detection: magic bytes first, the file-name
 * extension second (ONNX has no magic number, so `.onnx` files often land on the second);
 * among formats the magic bytes fit, the longest matching extension wins
 * (`pytorch_model.bin.index.json` over `.json`).
 */
import { open as openFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ggufFormat } from './gguf';
import { packedFormat } from './llz';
import { onnxFormat } from './onnx';
import { pytorchFormat } from './pytorch';
import { safetensorsFormat } from './safetensors';
import type { ModelCapabilities, ModelFormat } from '../../shared/model';
import { fileSizeFor, methodsFor, storageFor } from '../compress/methods';
import { GGML_LEVELS } from '../compress/methods/ggml';
import { ggufCompression } from '../compress/ggufFormat';
import { onnxCompression } from '../compress/onnx/format';
import { pytorchCompression } from '../compress/pytorchFormat';
import { safetensorsCompression } from '../compress/safetensorsFormat';
import type { CapableFormatModule, FormatCompression, FormatSweep } from './capabilities';
import { ModelFileError, type OpenedModel } from './types';
import { buildOnnxGraph } from '../graph/onnxGraph';
import { onnxStructureOf } from '../onnx/opened';
import type { ModelGraph } from '../../shared/graph';

// A packed model's graph is its inner model's (onnxStructureOf).
const onnxGraph = {
  build: async (model: OpenedModel) =>
    buildOnnxGraph(await onnxStructureOf(model, 'drawn as a graph'), model.path),
};

/** The graph view of a model whose format stores one; a ModelFileError otherwise. */
export async function graphOf(model: OpenedModel): Promise<ModelGraph> {
  const graph = moduleOf(model).graph;
  if (!graph) {
    throw new ModelFileError(
      model.path,
      `${model.summary.format} files store no graph of operators (the module tree shows their structure)`,
    );
  }
  return graph.build(model);
}

/**
 * Every format LayerLens reads, with what it can do beyond reading (capabilities.ts:
 * optional capabilities): code asks a model's format for them, never its name.
 */
export const FORMATS: readonly CapableFormatModule[] = [
  { ...safetensorsFormat, compression: safetensorsCompression },
  { ...onnxFormat, compression: onnxCompression, runs: true, graph: onnxGraph },
  // F32/F16/BF16 tensors are re-typed to ggml block types; the sensitivity proxy sweeps
  // the dequantized weights as [out, in] matrices at the types llama.cpp could store them as.
  {
    ...ggufFormat,
    compression: ggufCompression,
    sweep: { ...ggufCompression, levels: GGML_LEVELS },
  },
  packedFormat((format) => formatModule(format)),
  { ...pytorchFormat, compression: pytorchCompression },
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

/** Length of the longest of the format's extensions the file name ends with (0: none). */
function extensionMatch(format: CapableFormatModule, name: string): number {
  return Math.max(
    0,
    ...format.extensions.filter((ext) => name.endsWith(ext)).map((ext) => ext.length),
  );
}

export function detectFormat(path: string, head: Uint8Array): CapableFormatModule | undefined {
  const name = basename(path).toLowerCase();
  const longest = (formats: CapableFormatModule[]): CapableFormatModule | undefined =>
    formats
      .filter((format) => extensionMatch(format, name) > 0)
      .sort((a, b) => extensionMatch(b, name) - extensionMatch(a, name))[0];
  const byMagic = FORMATS.filter((format) => format.match(head));
  return longest(byMagic) ?? byMagic[0] ?? longest([...FORMATS]);
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
      'not a model format LayerLens reads (expected ONNX, safetensors, a PyTorch checkpoint or GGUF)',
    );
  }
  const opened = await format.open(path);
  return {
    ...opened,
    summary: { ...opened.summary, capabilities: modelCapabilities(opened) },
  };
}

/** The module of the format a model presents (a packed file presents the model it holds). */
export function formatModule(format: ModelFormat): CapableFormatModule {
  const module = FORMATS.find((candidate) => candidate.format === format);
  if (!module) throw new RangeError(`no format module reads ${format}`);
  return module;
}

/**
 * What an opened model can do: its format's module, less what a packed file cannot do
 * (its bytes are the container's: it is read and drawn, never written or run, until
 * `layerlens unpack` gives back the original).
 */
export function moduleOf(model: OpenedModel): CapableFormatModule {
  const module = formatModule(model.summary.format);
  if (!model.packed) return module;
  return { ...module, compression: undefined, sweep: undefined, runs: false };
}

/** Why a packed model is read and nothing more, and what to do about it (shown to the user). */
function packedReason(model: OpenedModel): string {
  return `a packed LayerLens file is only read: unpack it first (layerlens unpack ${basename(model.path)}) to compress it or measure its sensitivity`;
}

function moduleCapabilities(module: CapableFormatModule, readOnly?: string): ModelCapabilities {
  const methods = module.compression?.methods;
  return {
    compress: methods ? methodsFor(methods) : [],
    run: module.runs === true,
    sensitivity: sweepOfModule(module) !== undefined,
    graph: module.graph !== undefined,
    ...(methods ? { storage: storageFor(methods), fileSize: fileSizeFor(methods) } : {}),
    ...(readOnly ? { readOnly } : {}),
  };
}

/** What LayerLens can do with an opened model beyond reading it (sent with its summary). */
function modelCapabilities(model: OpenedModel): ModelCapabilities {
  return moduleCapabilities(moduleOf(model), model.packed ? packedReason(model) : undefined);
}

/** What LayerLens can do with a (not packed) model of `format` beyond reading it. */
export function capabilitiesOf(format: ModelFormat): ModelCapabilities {
  return moduleCapabilities(formatModule(format));
}

/** A refusal naming the file: it is packed, or LayerLens cannot `cannot` its format's files. */
function refusal(model: OpenedModel, cannot: string): ModelFileError {
  return new ModelFileError(
    model.path,
    model.packed
      ? packedReason(model)
      : `LayerLens cannot ${cannot} ${model.summary.format} files, so it cannot do that with this model`,
  );
}

/** The compression of the model's format; a ModelFileError when the model cannot be written. */
export function compressionOf(model: OpenedModel): FormatCompression {
  const compression = moduleOf(model).compression;
  if (!compression) throw refusal(model, 'write');
  return compression;
}

function sweepOfModule(module: CapableFormatModule): FormatSweep | undefined {
  return module.sweep ?? module.compression;
}

/**
 * The sweep of the model's format, for questions of structure alone (which tensors are
 * weights): a packed model answers as its inner model does, though it is not swept itself.
 * Undefined when the format cannot be swept.
 */
export function sweepCapability(model: OpenedModel): FormatSweep | undefined {
  return sweepOfModule(formatModule(model.summary.format));
}

/** What a sensitivity sweep of the model asks of its format; a ModelFileError when it cannot be swept. */
export function sweepOf(model: OpenedModel): FormatSweep {
  const sweep = sweepOfModule(moduleOf(model));
  if (!sweep) throw refusal(model, 'sweep the weights of');
  return sweep;
}

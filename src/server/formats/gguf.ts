/**
 * GGUF reader (llama.cpp, Ollama, LM Studio models), versions 2 and 3. Only the headers are
 * read at open (formats/gguf/header.ts). A split model (`name-00001-of-00003.gguf`) opens
 * from any of its files: the reader finds the others by name and gathers every file's
 * tensors. Quantized tensors present their dequantized float32 values (`dtype` float32,
 * `encoding` the ggml type); shapes are shown in PyTorch order, GGUF's `ne` reversed.
 */
import * as path from 'node:path';
import { MAX_SHARDS } from '../../shared/limits';
import {
  MODEL_FORMAT_INFO,
  type MetadataEntry,
  type TensorEncoding,
  type TensorInfo,
} from '../../shared/model';
import { notDecodedReason } from '../analysis/ggmlDequant';
import { readGgufHeader, looksLikeGguf, type GgufHeader, type GgufTensorInfo } from './gguf/header';
import { ModelFileError } from './modelFileError';
import { layerOfTensor } from './safetensors';
import { SPLIT_FILES_KEY, tensorListSummary } from './shardIndex';
import type { FormatModule, OpenedModel, TensorEntry } from './types';

/** `prefix-00001-of-00003.gguf`: llama.cpp's names for the files of a split model. */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

function metadataValue(header: GgufHeader, key: string): number | undefined {
  const value = header.metadata.find((entry) => entry.key === key)?.value;
  if (typeof value === 'bigint') return Number(value);
  return typeof value === 'number' ? value : undefined;
}

/** The files of the model `filePath` belongs to, first to last (one file unless split). */
function splitFiles(filePath: string, header: GgufHeader): string[] {
  const count = metadataValue(header, 'split.count') ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new ModelFileError(
      filePath,
      `split.count ${count} is not a file count up to ${MAX_SHARDS}`,
    );
  }
  if (count === 1) return [filePath];
  const match = SPLIT_NAME.exec(path.basename(filePath));
  if (!match || Number(match[3]) !== count) {
    throw new ModelFileError(
      filePath,
      `this file is one of ${count} files of a split model, but its name does not follow the "-0000N-of-${String(count).padStart(5, '0')}.gguf" pattern that names the others`,
    );
  }
  const folder = path.dirname(filePath);
  const total = match[3]!;
  return Array.from({ length: count }, (_, i) =>
    path.join(folder, `${match[1]}-${String(i + 1).padStart(5, '0')}-of-${total}.gguf`),
  );
}

function encodingOf(tensor: GgufTensorInfo): TensorEncoding | undefined {
  const { type } = tensor;
  if (type.plain) return undefined;
  const notDecoded = notDecodedReason(type);
  return {
    scheme: type.name,
    storedType: type.name,
    bitsPerWeight: (type.blockBytes * 8) / type.blockElements,
    granularity: 'block',
    blockSize: type.blockElements,
    notDecoded,
    countsCodes: false,
    blockScales: notDecoded === null,
  };
}

function tensorEntry(header: GgufHeader, tensor: GgufTensorInfo, index: number): TensorEntry {
  const { type } = tensor;
  const encoding = encodingOf(tensor);
  const info: TensorInfo = {
    index,
    name: tensor.name,
    dtype: type.plain ?? 'float32',
    shape: [...tensor.ne].reverse(),
    fileShape: tensor.ne,
    parameterCount: tensor.elements,
    byteLength: tensor.byteLength,
    node: layerOfTensor(tensor.name),
    op: null,
    location: 'gguf',
    graph: '',
    file: path.basename(header.path),
    byteOffset: tensor.offset,
    ...(encoding ? { encoding } : {}),
  };
  const range = {
    kind: 'file' as const,
    path: header.path,
    offset: tensor.offset,
    length: tensor.byteLength,
  };
  return { info, data: type.plain ? range : { ...range, blocks: type.name } };
}

function readShard(shardPath: string, first: GgufHeader, index: number, count: number): GgufHeader {
  let header: GgufHeader;
  try {
    header = readGgufHeader(shardPath);
  } catch (error) {
    if (error instanceof ModelFileError && /cannot be read/.test(error.message)) {
      throw new ModelFileError(
        shardPath,
        `this file of the split model ${path.basename(first.path)} (${index + 1} of ${count}) is missing`,
      );
    }
    throw error;
  }
  const number = metadataValue(header, 'split.no');
  if (number !== undefined && number !== index) {
    throw new ModelFileError(shardPath, `split.no is ${number}, but the file name says ${index}`);
  }
  return header;
}

function openGguf(filePath: string): OpenedModel {
  const opened = readGgufHeader(filePath);
  const files = splitFiles(filePath, opened);
  const headers = files.map((file, i) =>
    file === filePath ? opened : readShard(file, opened, i, files.length),
  );
  const first = headers[0]!;
  const seen = new Set<string>();
  const tensors: TensorEntry[] = [];
  for (const header of headers) {
    for (const tensor of header.tensors) {
      if (seen.has(tensor.name)) {
        throw new ModelFileError(
          header.path,
          `tensor "${tensor.name}" is also in another file of the split model`,
        );
      }
      seen.add(tensor.name);
      tensors.push(tensorEntry(header, tensor, tensors.length));
    }
  }
  const metadata: MetadataEntry[] = [
    { key: 'GGUF version', value: String(first.version) },
    { key: 'tensor data alignment', value: String(first.alignment) },
    ...(files.length > 1 ? [{ key: SPLIT_FILES_KEY, value: String(files.length) }] : []),
    ...first.metadata.map((entry) => ({ key: entry.key, value: entry.text })),
  ];
  const summary = tensorListSummary(
    'gguf',
    filePath,
    opened.fileBytes,
    headers.reduce((sum, header) => sum + header.fileBytes, 0),
    files.filter((file) => file !== filePath).map((file) => path.basename(file)),
    tensors,
    metadata,
    headers.flatMap((header) =>
      header.warnings.map((warning) => `${path.basename(header.path)}: ${warning}`),
    ),
  );
  return { path: filePath, summary, tensors };
}

export const ggufFormat: FormatModule = {
  format: 'gguf',
  extensions: MODEL_FORMAT_INFO.gguf.extensions,
  match: looksLikeGguf,
  async open(filePath) {
    return openGguf(path.resolve(filePath));
  },
};

/**
 * safetensors reader: an 8-byte little-endian header length N, N bytes of JSON header,
 * then the data section that the header's `data_offsets` point into. Only the header is
 * read at open. Sharded models are opened through their `*.safetensors.index.json`,
 * whose `weight_map` names the shard that holds each tensor.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { byteLengthOf, type DType } from '../../shared/dtypes';
import {
  MAX_SAFETENSORS_HEADER_BYTES,
  MAX_SAFETENSORS_INDEX_BYTES,
  MAX_SHARDS,
  MAX_TENSOR_ELEMENTS,
  MAX_TENSOR_RANK,
  MAX_TENSORS,
} from '../../shared/limits';
import type { MetadataEntry, ModelFormat, ModelSummary, TensorInfo } from '../../shared/model';
import { readExactly } from './fileRange';
import { ModelFileError, type FormatModule, type OpenedModel, type TensorEntry } from './types';

/** safetensors dtype codes and the DType each one maps to. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F8_E4M3: 'float8_e4m3fn',
  F8_E5M2: 'float8_e5m2',
  I64: 'int64',
  U64: 'uint64',
  I32: 'int32',
  U32: 'uint32',
  I16: 'int16',
  U16: 'uint16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

const HEADER_LENGTH_BYTES = 8;
const METADATA_KEY = '__metadata__';
const OPEN_BRACE = 0x7b;

/** One tensor of a safetensors file's header, validated. */
interface HeaderTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** Offsets within the data section. */
  readonly begin: number;
  readonly end: number;
}

/** A safetensors file's header, validated against the file's size. */
interface ParsedHeader {
  readonly path: string;
  readonly fileBytes: number;
  readonly headerBytes: number;
  /** In data-section order. */
  readonly tensors: readonly HeaderTensor[];
  readonly metadata: readonly MetadataEntry[];
  readonly warnings: readonly string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isJsonFile(filePath: string): boolean {
  return filePath.toLowerCase().endsWith('.json');
}

/** The layer a tensor belongs to: its name without the last dotted component. */
export function layerOfTensor(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

async function fileSize(filePath: string, missingProblem: string): Promise<number> {
  let stats;
  try {
    stats = await fs.stat(filePath);
  } catch {
    throw new ModelFileError(filePath, missingProblem);
  }
  if (!stats.isFile()) throw new ModelFileError(filePath, 'not a regular file');
  return stats.size;
}

async function readRange(filePath: string, position: number, length: number): Promise<Uint8Array> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new ModelFileError(filePath, `the file cannot be read (${code})`);
  }
  try {
    return await readExactly(handle, filePath, position, length);
  } finally {
    await handle.close();
  }
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The shape and its element count, or the problem with it. */
function validShapeElements(shape: unknown): { shape: number[]; elements: number } | string {
  if (!Array.isArray(shape)) return 'its shape is not a list of dimensions';
  if (shape.length > MAX_TENSOR_RANK)
    return `its rank ${shape.length} exceeds the limit of ${MAX_TENSOR_RANK}`;
  let elements = 1;
  for (const dimension of shape) {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension) || dimension < 0) {
      return `its shape ${describeValue(shape)} has a dimension that is not a non-negative integer`;
    }
    elements *= dimension;
    if (elements > MAX_TENSOR_ELEMENTS)
      return `its shape ${describeValue(shape)} has too many elements`;
  }
  return { shape: shape as number[], elements };
}

function parseTensor(
  filePath: string,
  name: string,
  entry: unknown,
  dataBytes: number,
): HeaderTensor {
  const fail = (problem: string): never => {
    throw new ModelFileError(filePath, `tensor "${name}": ${problem}`);
  };
  if (!isPlainObject(entry)) return fail('its header entry is not an object');
  const { dtype: code, shape: rawShape, data_offsets: offsets } = entry;
  if (typeof code !== 'string') return fail('its dtype is missing');
  const dtype = Object.hasOwn(SAFETENSORS_DTYPES, code) ? SAFETENSORS_DTYPES[code] : undefined;
  if (!dtype) return fail(`unknown dtype ${describeValue(code)}`);
  const shaped = validShapeElements(rawShape);
  if (typeof shaped === 'string') return fail(shaped);
  if (!Array.isArray(offsets) || offsets.length !== 2)
    return fail('data_offsets is not a pair [begin, end]');
  const [begin, end] = offsets as unknown[];
  if (
    typeof begin !== 'number' ||
    typeof end !== 'number' ||
    !Number.isSafeInteger(begin) ||
    !Number.isSafeInteger(end)
  ) {
    return fail(`data_offsets ${describeValue(offsets)} are not integers`);
  }
  if (begin < 0 || end < begin || end > dataBytes) {
    return fail(
      `data_offsets [${begin}, ${end}] lie outside the data section (${dataBytes} bytes)`,
    );
  }
  const expected = byteLengthOf(dtype, shaped.elements);
  if (end - begin !== expected) {
    return fail(
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape ${describeValue(shaped.shape)} of ${code} needs ${expected}`,
    );
  }
  return { name, dtype, shape: shaped.shape, elementCount: shaped.elements, begin, end };
}

function metadataEntries(value: unknown, warnings: string[], what: string): MetadataEntry[] {
  if (value === undefined) return [];
  if (!isPlainObject(value)) {
    warnings.push(`${what} is not an object and was ignored`);
    return [];
  }
  return Object.entries(value).map(([key, entry]) => ({
    key,
    value: typeof entry === 'string' ? entry : (JSON.stringify(entry) ?? String(entry)),
  }));
}

/** Read and validate the header of one safetensors file. */
async function readHeader(filePath: string): Promise<ParsedHeader> {
  const size = await fileSize(filePath, 'the file does not exist or cannot be read');
  if (size < HEADER_LENGTH_BYTES) {
    throw new ModelFileError(
      filePath,
      `the file is ${size} bytes long, too short for a safetensors header`,
    );
  }
  const lengthBytes = await readRange(filePath, 0, HEADER_LENGTH_BYTES);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    throw new ModelFileError(
      filePath,
      `the header claims ${headerLength} bytes, more than the limit of ${MAX_SAFETENSORS_HEADER_BYTES} bytes (truncated or not a safetensors file?)`,
    );
  }
  const headerBytes = Number(headerLength);
  if (HEADER_LENGTH_BYTES + headerBytes > size) {
    throw new ModelFileError(
      filePath,
      `the header claims ${headerBytes} bytes, but the file holds only ${size - HEADER_LENGTH_BYTES} after the length field (truncated?)`,
    );
  }
  const headerText = new TextDecoder('utf-8').decode(
    await readRange(filePath, HEADER_LENGTH_BYTES, headerBytes),
  );
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    throw new ModelFileError(
      filePath,
      `the header is not valid JSON (${(error as Error).message})`,
    );
  }
  if (!isPlainObject(header)) throw new ModelFileError(filePath, 'the header is not a JSON object');

  const dataBytes = size - HEADER_LENGTH_BYTES - headerBytes;
  const warnings: string[] = [];
  const metadata = metadataEntries(
    header[METADATA_KEY],
    warnings,
    `${path.basename(filePath)}: __metadata__`,
  );
  const names = Object.keys(header).filter((key) => key !== METADATA_KEY);
  if (names.length > MAX_TENSORS) {
    throw new ModelFileError(
      filePath,
      `the header lists ${names.length} tensors, more than the limit of ${MAX_TENSORS}`,
    );
  }
  const tensors = names
    .map((name) => parseTensor(filePath, name, header[name], dataBytes))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 1; i < tensors.length; i++) {
    const previous = tensors[i - 1]!;
    const current = tensors[i]!;
    if (current.begin < previous.end) {
      throw new ModelFileError(
        filePath,
        `tensors "${previous.name}" [${previous.begin}, ${previous.end}] and "${current.name}" [${current.begin}, ${current.end}] overlap in the data section`,
      );
    }
  }
  for (const tensor of tensors) covered += tensor.end - tensor.begin;
  if (covered < dataBytes) {
    warnings.push(
      `${path.basename(filePath)}: ${dataBytes - covered} bytes of the data section belong to no tensor`,
    );
  }
  return { path: filePath, fileBytes: size, headerBytes, tensors, metadata, warnings };
}

interface DtypeTotals {
  parametersByDType: Partial<Record<DType, number>>;
  bytesByDType: Partial<Record<DType, number>>;
  parameterCount: number;
}

function totalsOf(tensors: readonly TensorEntry[]): DtypeTotals {
  const totals: DtypeTotals = { parametersByDType: {}, bytesByDType: {}, parameterCount: 0 };
  for (const { info } of tensors) {
    totals.parameterCount += info.parameterCount;
    totals.parametersByDType[info.dtype] =
      (totals.parametersByDType[info.dtype] ?? 0) + info.parameterCount;
    totals.bytesByDType[info.dtype] = (totals.bytesByDType[info.dtype] ?? 0) + info.byteLength;
  }
  return totals;
}

function tensorEntry(
  header: ParsedHeader,
  tensor: HeaderTensor,
  index: number,
  fileName: string,
): TensorEntry {
  const offset = HEADER_LENGTH_BYTES + header.headerBytes + tensor.begin;
  const length = tensor.end - tensor.begin;
  const info: TensorInfo = {
    index,
    name: tensor.name,
    dtype: tensor.dtype,
    shape: tensor.shape,
    parameterCount: tensor.elementCount,
    byteLength: length,
    node: layerOfTensor(tensor.name),
    op: null,
    location: 'safetensors',
    graph: '',
    file: fileName,
    byteOffset: offset,
  };
  return { info, data: { kind: 'file', path: header.path, offset, length } };
}

/** The summary of a model without a graph (safetensors, GGUF): files, tensors, metadata. */
export function graphlessSummary(
  format: ModelFormat,
  filePath: string,
  fileBytes: number,
  totalBytes: number,
  dataFiles: readonly string[],
  tensors: readonly TensorEntry[],
  metadata: readonly MetadataEntry[],
  warnings: readonly string[],
): ModelSummary {
  return {
    format,
    fileName: path.basename(filePath),
    fileBytes,
    totalBytes,
    dataFiles,
    ...totalsOf(tensors),
    tensorCount: tensors.length,
    opCounts: {},
    nodeCount: 0,
    inputs: [],
    outputs: [],
    metadata,
    warnings,
  };
}

async function openSingleFile(filePath: string): Promise<OpenedModel> {
  const header = await readHeader(filePath);
  const fileName = path.basename(filePath);
  const tensors = header.tensors.map((tensor, index) =>
    tensorEntry(header, tensor, index, fileName),
  );
  const metadata: MetadataEntry[] = [
    { key: 'header bytes', value: String(header.headerBytes) },
    ...header.metadata,
  ];
  return {
    path: filePath,
    summary: graphlessSummary(
      'safetensors',
      filePath,
      header.fileBytes,
      header.fileBytes,
      [],
      tensors,
      metadata,
      header.warnings,
    ),
    tensors,
  };
}

/**
 * Absolute path of a shard named in an index, refused unless it stays inside the index's
 * folder, both as written and after following symbolic links.
 */
async function resolveShard(
  indexPath: string,
  realFolder: string,
  shardName: string,
): Promise<string> {
  const folder = path.dirname(indexPath);
  const segments = shardName.split(/[\\/]/);
  if (
    shardName === '' ||
    path.isAbsolute(shardName) ||
    path.win32.isAbsolute(shardName) ||
    segments.some((segment) => segment === '..' || segment === '')
  ) {
    throw new ModelFileError(
      indexPath,
      `shard path ${describeValue(shardName)} must be a file name inside the model's folder`,
    );
  }
  const shardPath = path.join(folder, ...segments);
  let realShard: string;
  try {
    realShard = await fs.realpath(shardPath);
  } catch {
    throw new ModelFileError(
      shardPath,
      `this shard, listed in ${path.basename(indexPath)}, is missing`,
    );
  }
  const relative = path.relative(realFolder, realShard);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new ModelFileError(
      indexPath,
      `shard ${describeValue(shardName)} links to a file outside the model's folder`,
    );
  }
  return shardPath;
}

async function openIndex(indexPath: string): Promise<OpenedModel> {
  const indexBytes = await fileSize(indexPath, 'the file does not exist or cannot be read');
  if (indexBytes > MAX_SAFETENSORS_INDEX_BYTES) {
    throw new ModelFileError(
      indexPath,
      `the index is ${indexBytes} bytes, more than the limit of ${MAX_SAFETENSORS_INDEX_BYTES}`,
    );
  }
  let index: unknown;
  try {
    index = JSON.parse(new TextDecoder('utf-8').decode(await readRange(indexPath, 0, indexBytes)));
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(indexPath, `not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) {
    throw new ModelFileError(
      indexPath,
      'this JSON file is not a safetensors index (it has no "weight_map" object)',
    );
  }
  const weightMap = index.weight_map;
  const mappedNames = Object.keys(weightMap);
  if (mappedNames.length > MAX_TENSORS) {
    throw new ModelFileError(
      indexPath,
      `the weight map lists ${mappedNames.length} tensors, more than the limit of ${MAX_TENSORS}`,
    );
  }
  /** Shard name → tensor names the weight map places in it. */
  const tensorsByShard = new Map<string, Set<string>>();
  for (const name of mappedNames) {
    const shardName = weightMap[name];
    if (typeof shardName !== 'string') {
      throw new ModelFileError(
        indexPath,
        `the weight map entry of tensor "${name}" is not a file name`,
      );
    }
    let names = tensorsByShard.get(shardName);
    if (!names) {
      if (tensorsByShard.size >= MAX_SHARDS) {
        throw new ModelFileError(indexPath, `the weight map names more than ${MAX_SHARDS} shards`);
      }
      names = new Set();
      tensorsByShard.set(shardName, names);
    }
    names.add(name);
  }

  const realFolder = await fs.realpath(path.dirname(indexPath));
  const shardNames = [...tensorsByShard.keys()].sort();
  const warnings: string[] = [];
  const metadata: MetadataEntry[] = [
    { key: 'shards', value: String(shardNames.length) },
    ...metadataEntries(index.metadata, warnings, 'the index metadata'),
  ];
  const tensors: TensorEntry[] = [];
  let totalBytes = indexBytes;
  for (const shardName of shardNames) {
    const shardPath = await resolveShard(indexPath, realFolder, shardName);
    const header = await readHeader(shardPath);
    totalBytes += header.fileBytes;
    warnings.push(...header.warnings);
    const mapped = tensorsByShard.get(shardName)!;
    const present = new Set(header.tensors.map((tensor) => tensor.name));
    for (const name of mapped) {
      if (!present.has(name)) {
        throw new ModelFileError(
          shardPath,
          `tensor "${name}" is listed for this shard in ${path.basename(indexPath)} but is not in it`,
        );
      }
    }
    const unmapped = header.tensors.length - mapped.size;
    if (unmapped > 0) {
      warnings.push(
        `${shardName}: ${unmapped} tensors are not in the index's weight map and are not shown`,
      );
    }
    for (const tensor of header.tensors) {
      if (mapped.has(tensor.name))
        tensors.push(tensorEntry(header, tensor, tensors.length, shardName));
    }
  }
  return {
    path: indexPath,
    summary: graphlessSummary(
      'safetensors',
      indexPath,
      indexBytes,
      totalBytes,
      shardNames,
      tensors,
      metadata,
      warnings,
    ),
    tensors,
  };
}

/** Whether the head starts with a header length that fits the limit and then `{`. */
function looksLikeSafetensors(head: Uint8Array): boolean {
  if (head.byteLength < HEADER_LENGTH_BYTES + 1) return false;
  const length = new DataView(head.buffer, head.byteOffset, HEADER_LENGTH_BYTES).getBigUint64(
    0,
    true,
  );
  return (
    length >= 2n &&
    length <= BigInt(MAX_SAFETENSORS_HEADER_BYTES) &&
    head[HEADER_LENGTH_BYTES] === OPEN_BRACE
  );
}

/** Whether the head is JSON text that opens an object (a candidate index file). */
function looksLikeJsonObject(head: Uint8Array): boolean {
  for (const byte of head) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === OPEN_BRACE;
  }
  return false;
}

export const safetensorsFormat: FormatModule = {
  format: 'safetensors',
  extensions: ['.safetensors', '.json'],
  match(head) {
    return looksLikeSafetensors(head) || looksLikeJsonObject(head);
  },
  async open(filePath) {
    const absolute = path.resolve(filePath);
    return isJsonFile(absolute) ? openIndex(absolute) : openSingleFile(absolute);
  },
};

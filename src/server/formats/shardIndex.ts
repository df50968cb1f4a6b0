/**
 * Sharded models opened through their index (`*.safetensors.index.json`,
 * `pytorch_model.bin.index.json`): the JSON's `weight_map` names the shard that holds each
 * tensor; each format reads its own shards. Also the summary every tensor-list format
 * builds (totals by dtype, no graph).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MAX_SAFETENSORS_INDEX_BYTES, MAX_SHARDS, MAX_TENSORS } from '../../shared/limits';
import {
  storedTypeOf,
  type MetadataEntry,
  type ModelFormat,
  type ModelSummary,
  type StoredType,
} from '../../shared/model';
import { readExactly } from './fileRange';
import { parseFileJson } from './jsonText';
import { ModelFileError, type OpenedModel, type TensorEntry } from './types';

/** The metadata key under which an index states its number of shards. */
const SHARDS_KEY = 'shards';

/** Whether the model was opened through a shard index (its tensors live in other files). */
export function isShardIndex(summary: ModelSummary): boolean {
  return summary.dataFiles.length > 0 && summary.metadata.some(({ key }) => key === SHARDS_KEY);
}

/** The metadata key under which one file of a split model states how many files hold it. */
export const SPLIT_FILES_KEY = 'split files';

/**
 * Whether the model was opened from one of several files that each hold part of its tensors
 * (a split GGUF): the reader found the others by this file's name.
 */
export function isSplitModel(summary: ModelSummary): boolean {
  return (
    summary.dataFiles.length > 0 && summary.metadata.some(({ key }) => key === SPLIT_FILES_KEY)
  );
}

/** What a format reads of one shard: its tensors in file order, each entry built on demand. */
export interface ShardContents {
  readonly fileBytes: number;
  readonly warnings: readonly string[];
  readonly tensors: readonly ShardTensor[];
}

export interface ShardTensor {
  readonly name: string;
  /** The tensor's entry at `index` of the model's list, in shard `fileName`. */
  entry(index: number, fileName: string): TensorEntry;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The size of a regular file, or a ModelFileError with `missingProblem`. */
export async function fileSize(filePath: string, missingProblem: string): Promise<number> {
  let stats;
  try {
    stats = await fs.stat(filePath);
  } catch {
    throw new ModelFileError(filePath, missingProblem);
  }
  if (!stats.isFile()) throw new ModelFileError(filePath, 'not a regular file');
  return stats.size;
}

/** Bytes [position, position + length) of a file, opened for the read. */
export async function readRange(
  filePath: string,
  position: number,
  length: number,
): Promise<Uint8Array> {
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

/** A JSON object of string values as metadata entries (other values as JSON text). */
export function metadataEntries(value: unknown, warnings: string[], what: string): MetadataEntry[] {
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

interface DtypeTotals {
  parametersByDType: Partial<Record<StoredType, number>>;
  bytesByDType: Partial<Record<StoredType, number>>;
  parameterCount: number;
}

/** Parameters and bytes by the type each tensor is stored as (a quantized weight's codes or blocks). */
function totalsOf(tensors: readonly TensorEntry[]): DtypeTotals {
  const totals: DtypeTotals = { parametersByDType: {}, bytesByDType: {}, parameterCount: 0 };
  for (const { info } of tensors) {
    const type = storedTypeOf(info);
    totals.parameterCount += info.parameterCount;
    totals.parametersByDType[type] = (totals.parametersByDType[type] ?? 0) + info.parameterCount;
    totals.bytesByDType[type] = (totals.bytesByDType[type] ?? 0) + info.byteLength;
  }
  return totals;
}

/** The summary of a model that is a list of tensors (no graph, no inputs or outputs). */
export function tensorListSummary(
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

/** Open a sharded model through its index, each shard read by `readShard`. */
export async function openShardIndex(
  indexPath: string,
  format: ModelFormat,
  readShard: (shardPath: string) => Promise<ShardContents>,
): Promise<OpenedModel> {
  const indexBytes = await fileSize(indexPath, 'the file does not exist or cannot be read');
  if (indexBytes > MAX_SAFETENSORS_INDEX_BYTES) {
    throw new ModelFileError(
      indexPath,
      `the index is ${indexBytes} bytes, more than the limit of ${MAX_SAFETENSORS_INDEX_BYTES}`,
    );
  }
  const index = parseFileJson(
    indexPath,
    new TextDecoder('utf-8').decode(await readRange(indexPath, 0, indexBytes)),
    'the index',
  );
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) {
    throw new ModelFileError(
      indexPath,
      `this JSON file is not a ${format} index (it has no "weight_map" object)`,
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
    { key: SHARDS_KEY, value: String(shardNames.length) },
    ...metadataEntries(index.metadata, warnings, 'the index metadata'),
  ];
  const tensors: TensorEntry[] = [];
  let shardBytes = 0;
  for (const shardName of shardNames) {
    const shardPath = await resolveShard(indexPath, realFolder, shardName);
    const shard = await readShard(shardPath);
    shardBytes += shard.fileBytes;
    warnings.push(...shard.warnings);
    const mapped = tensorsByShard.get(shardName)!;
    const present = new Set(shard.tensors.map((tensor) => tensor.name));
    for (const name of mapped) {
      if (!present.has(name)) {
        throw new ModelFileError(
          shardPath,
          `tensor "${name}" is listed for this shard in ${path.basename(indexPath)} but is not in it`,
        );
      }
    }
    const unmapped = shard.tensors.length - mapped.size;
    if (unmapped > 0) {
      warnings.push(
        `${shardName}: ${unmapped} tensors are not in the index's weight map and are not shown`,
      );
    }
    for (const tensor of shard.tensors) {
      if (mapped.has(tensor.name)) tensors.push(tensor.entry(tensors.length, shardName));
    }
  }
  return {
    path: indexPath,
    // The model's size is its shards' (the index is a few KB of names); the total adds the index.
    summary: {
      ...tensorListSummary(
        format,
        indexPath,
        shardBytes,
        shardBytes + indexBytes,
        shardNames,
        tensors,
        metadata,
        warnings,
      ),
      shards: shardNames.length,
    },
    tensors,
  };
}

/** Whether the head is JSON text that opens an object (a candidate index file). */
export function looksLikeJsonObject(head: Uint8Array): boolean {
  for (const byte of head) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x7b;
  }
  return false;
}

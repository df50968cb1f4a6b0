/**
 * Writes safetensors files and sharded models for tests.
 *
 *   const dir = await makeTempDir();
 *   const file = await writeSafetensors(join(dir, 'model.safetensors'), [
 *     { name: 'fc.weight', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 *   ], { metadata: { format: 'pt' } });
 *
 *   const index = await writeShardedSafetensors(dir, [
 *     { file: 'model-00001-of-00002.safetensors', tensors: [...] },
 *     { file: 'model-00002-of-00002.safetensors', tensors: [...] },
 *   ]);
 *
 * `data` is any typed array (its bytes are written as they are, little-endian on every
 * machine the tests run on) or raw bytes; float16/bfloat16/float8 values are given as
 * bit patterns in a Uint16Array/Uint8Array. For malformed files, `encodeSafetensors`
 * takes the header as any JSON value (or text) and the data section as bytes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The dtype codes of the safetensors format. */
export type SafetensorsDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'U64'
  | 'I32'
  | 'U32'
  | 'I16'
  | 'U16'
  | 'I8'
  | 'U8'
  | 'BOOL';

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

export interface SafetensorsOptions {
  /** The `__metadata__` object (string values, as the format requires). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ShardSpec {
  /** File name relative to the index's folder. */
  readonly file: string;
  readonly tensors: readonly SafetensorsTensor[];
}

export interface ShardedOptions {
  /** Name of the index file (default `model.safetensors.index.json`). */
  readonly indexName?: string;
  /** The index's `metadata` object (default: `total_size` of the tensors' bytes). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Entries to use instead of the weight map derived from the shards. */
  readonly weightMap?: Readonly<Record<string, string>>;
}

export function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * A safetensors file from a header (a JSON value, or its text as given) and the data
 * section. The header is padded with spaces to a multiple of 8 bytes, as the reference
 * writer does, unless `pad` is false.
 */
export function encodeSafetensors(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let headerText = typeof header === 'string' ? header : JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(headerText);
  if (pad && headerBytes.byteLength % 8 !== 0) {
    headerText += ' '.repeat(8 - (headerBytes.byteLength % 8));
    headerBytes = new TextEncoder().encode(headerText);
  }
  const file = new Uint8Array(8 + headerBytes.byteLength + data.byteLength);
  new DataView(file.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  file.set(headerBytes, 8);
  file.set(data, 8 + headerBytes.byteLength);
  return file;
}

/** The header object and data section of well-formed tensors, packed in order. */
export function layoutSafetensors(
  tensors: readonly SafetensorsTensor[],
  options: SafetensorsOptions = {},
): { header: Record<string, unknown>; data: Uint8Array } {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const total = tensors.reduce((sum, tensor) => sum + tensor.data.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const tensor of tensors) {
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + tensor.data.byteLength],
    };
    data.set(bytesOf(tensor.data), offset);
    offset += tensor.data.byteLength;
  }
  return { header, data };
}

export function buildSafetensors(
  tensors: readonly SafetensorsTensor[],
  options: SafetensorsOptions = {},
): Uint8Array {
  const { header, data } = layoutSafetensors(tensors, options);
  return encodeSafetensors(header, data);
}

/** Write a safetensors file (creating its folder); returns `path`. */
export async function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensor[],
  options: SafetensorsOptions = {},
): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, buildSafetensors(tensors, options));
  return path;
}

/** Write the shards and their index into `dir`; returns the index's path. */
export async function writeShardedSafetensors(
  dir: string,
  shards: readonly ShardSpec[],
  options: ShardedOptions = {},
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const shard of shards) {
    await writeSafetensors(join(dir, shard.file), shard.tensors);
    for (const tensor of shard.tensors) {
      weightMap[tensor.name] = shard.file;
      totalSize += tensor.data.byteLength;
    }
  }
  const index = {
    metadata: options.metadata ?? { total_size: totalSize },
    weight_map: options.weightMap ?? weightMap,
  };
  const indexPath = join(dir, options.indexName ?? 'model.safetensors.index.json');
  await writeFile(indexPath, JSON.stringify(index, null, 2));
  return indexPath;
}

/** A fresh temporary folder, and a function that removes it. */
export async function makeTempDir(
  prefix = 'layerlens-st-',
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

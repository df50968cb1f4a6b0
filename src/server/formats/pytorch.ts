/**
 * PyTorch checkpoints written by `torch.save`:
 *
 * - the zip format (torch ≥ 1.6): `<prefix>/data.pkl` holds the pickled object, each
 *   storage is the record `<prefix>/data/<key>` (stored, so one range of the file),
 *   `<prefix>/byteorder` says `little` or `big`;
 * - the legacy format (torch < 1.6): five pickles in a row (magic number, protocol
 *   version, system info, the object, the list of storage keys), then each storage as an
 *   8-byte element count followed by its bytes;
 * - sharded checkpoints through `pytorch_model.bin.index.json`.
 *
 * The pickles are read by the restricted reader of `pytorch/pickle.ts` with the allow-list
 * of `pytorch/torchGlobals.ts`: no code from the file ever runs.
 */
import { open as openFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DTYPES } from '../../shared/dtypes';
import { MAX_PICKLE_BYTES } from '../../shared/limits';
import type { MetadataEntry } from '../../shared/model';
import { readExactly } from './fileRange';
import {
  collectTensors,
  sharingWarning,
  tensorEntry,
  type NamedTensor,
  type StorageBytes,
} from './pytorch/checkpoint';
import { PickleTruncatedError, unpickle, type PyValue, type UnpickleHooks } from './pytorch/pickle';
import { resolveTorchGlobal, storageFromPid, type TorchStorage } from './pytorch/torchGlobals';
import { readRecordSync, readZipRecords, recordSource, type ZipRecord } from './pytorch/zip';
import {
  fileSize,
  looksLikeJsonObject,
  openShardIndex,
  readRange,
  tensorListSummary,
  type ShardContents,
} from './shardIndex';
import { ModelFileError, type FormatModule, type OpenedModel } from './types';

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** `pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)`: how a legacy checkpoint starts. */
const LEGACY_MAGIC = [
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];
const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
/** How a tar archive (torch ≤ 0.3's format) marks itself at byte 257. */
const TAR_MAGIC = 'ustar';
/** First read of a legacy file's pickles; doubled while a pickle runs past it. */
const LEGACY_FIRST_READ = 4 * 1024 * 1024;

const RESAVE =
  'load it with torch and save it again with torch.save(obj, path) from torch ≥ 1.6, or convert it to safetensors';

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((byte, i) => head[i] === byte);
}

/** Whether the head is a zip whose first record is laid out as torch.save writes it. */
function looksLikeTorchZip(head: Uint8Array): boolean {
  if (head.byteLength < 30 || !startsWith(head, ZIP_MAGIC)) return false;
  const nameLength = head[26]! | (head[27]! << 8);
  const name = new TextDecoder('latin1').decode(head.subarray(30, 30 + nameLength));
  return /^[^/]+\/(data\.pkl|byteorder|version|\.format_version|\.data\/|data\/)/.test(name);
}

interface Checkpoint {
  readonly fileBytes: number;
  readonly tensors: readonly NamedTensor[];
  readonly metadata: readonly MetadataEntry[];
  readonly warnings: readonly string[];
  storageBytes(storage: TorchStorage): StorageBytes;
}

/** Hooks for a pickle that may name the torch globals and storages, recording storage keys. */
function torchHooks(
  file: string,
  what: string,
  storages: Map<string, TorchStorage>,
): UnpickleHooks {
  return {
    file,
    what,
    resolveGlobal: resolveTorchGlobal,
    persistentLoad: (pid) => {
      const value = storageFromPid(pid);
      const storage = (value as { value: TorchStorage }).value;
      const known = storages.get(storage.key);
      if (!known || known.numel < storage.numel) storages.set(storage.key, storage);
      return value;
    },
  };
}

/** Hooks for a pickle that holds plain values only. */
function plainHooks(file: string, what: string): UnpickleHooks {
  return {
    file,
    what,
    resolveGlobal: () => undefined,
    persistentLoad: () => {
      throw new ModelFileError(file, `${what}: a persistent id where plain values were expected`);
    },
  };
}

function checkpointContents(
  file: string,
  root: PyValue,
  metadata: MetadataEntry[],
): { tensors: NamedTensor[]; metadata: MetadataEntry[]; warnings: string[] } {
  const collected = collectTensors(file, root);
  const warnings: string[] = [];
  const sharing = sharingWarning(collected.tensors);
  if (sharing) warnings.push(sharing);
  if (collected.omitted > 0) {
    warnings.push(`${collected.omitted} more plain values of the checkpoint are not listed`);
  }
  return { tensors: collected.tensors, metadata: [...metadata, ...collected.metadata], warnings };
}

async function readZipCheckpoint(file: string, fileBytes: number): Promise<Checkpoint> {
  const records = await readZipRecords(file);
  const pickles = [...records.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw new ModelFileError(
      file,
      pickles.length === 0
        ? 'a zip archive without <name>/data.pkl: not a checkpoint written by torch.save'
        : `a zip archive with ${pickles.length} data.pkl records`,
    );
  }
  const prefix = pickles[0]!.slice(0, -'/data.pkl'.length);
  if ([...records.keys()].some((name) => name.startsWith(`${prefix}/code/`))) {
    throw new ModelFileError(
      file,
      'a TorchScript archive (torch.jit.save): LayerLens reads torch.save checkpoints; save the weights with torch.save(model.state_dict(), path)',
    );
  }
  const readSmall = async (record: ZipRecord): Promise<string> => {
    const handle = await openFile(file, 'r');
    try {
      if (record.deflated || record.size > 64) return '';
      return new TextDecoder()
        .decode(await readExactly(handle, file, record.dataStart, record.size))
        .trim();
    } finally {
      await handle.close();
    }
  };
  const metadata: MetadataEntry[] = [{ key: 'archive', value: prefix }];
  const byteorder = records.get(`${prefix}/byteorder`);
  if (byteorder) {
    const order = await readSmall(byteorder);
    if (order !== 'little') {
      throw new ModelFileError(
        file,
        `the checkpoint's byte order is "${order}"; LayerLens reads little-endian checkpoints`,
      );
    }
  }
  const version = records.get(`${prefix}/version`) ?? records.get(`${prefix}/.data/version`);
  if (version) metadata.push({ key: 'format version', value: await readSmall(version) });

  const pickle = records.get(pickles[0]!)!;
  if (pickle.size > MAX_PICKLE_BYTES) {
    throw new ModelFileError(
      file,
      `data.pkl is ${pickle.size} bytes, more than the limit of ${MAX_PICKLE_BYTES}`,
    );
  }
  const handle = await openFile(file, 'r');
  let pickleBytes: Uint8Array;
  try {
    pickleBytes = pickle.deflated
      ? readRecordSync(handle.fd, file, pickle, 0, pickle.size)
      : await readExactly(handle, file, pickle.dataStart, pickle.size);
  } finally {
    await handle.close();
  }
  const storages = new Map<string, TorchStorage>();
  const { value } = unpickle(pickleBytes, 0, torchHooks(file, `${prefix}/data.pkl`, storages));
  for (const key of storages.keys()) {
    if (!records.has(`${prefix}/data/${key}`)) {
      throw new ModelFileError(
        file,
        `storage ${key} is named in data.pkl, but the record ${prefix}/data/${key} is missing`,
      );
    }
  }
  return {
    fileBytes,
    ...checkpointContents(file, value, metadata),
    storageBytes: (storage) => {
      const record = records.get(`${prefix}/data/${storage.key}`)!;
      return {
        size: record.size,
        fileOffset: record.deflated ? null : record.dataStart,
        source: (start, length) => recordSource(file, record, start, length),
      };
    },
  };
}

/** The five pickles of a legacy checkpoint, read from a growing prefix of the file. */
async function readLegacyPickles(
  file: string,
  fileBytes: number,
): Promise<{
  root: PyValue;
  keys: PyValue;
  sysInfo: PyValue;
  end: number;
  storages: Map<string, TorchStorage>;
}> {
  for (
    let length = Math.min(fileBytes, LEGACY_FIRST_READ);
    ;
    length = Math.min(fileBytes, length * 2)
  ) {
    const bytes = await readRange(file, 0, length);
    try {
      const magic = unpickle(bytes, 0, plainHooks(file, 'the legacy magic number'));
      if (magic.value !== LEGACY_MAGIC_NUMBER) {
        throw new ModelFileError(
          file,
          'not a PyTorch checkpoint (the legacy magic number is wrong)',
        );
      }
      const protocol = unpickle(bytes, magic.end, plainHooks(file, 'the legacy protocol version'));
      if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
        throw new ModelFileError(
          file,
          `legacy protocol version ${String(protocol.value)}, not ${LEGACY_PROTOCOL_VERSION}; ${RESAVE}`,
        );
      }
      const sysInfo = unpickle(bytes, protocol.end, plainHooks(file, 'the legacy system info'));
      const storages = new Map<string, TorchStorage>();
      const main = unpickle(bytes, sysInfo.end, torchHooks(file, 'the pickled object', storages));
      const keys = unpickle(bytes, main.end, plainHooks(file, 'the legacy storage list'));
      return {
        root: main.value,
        keys: keys.value,
        sysInfo: sysInfo.value,
        end: keys.end,
        storages,
      };
    } catch (error) {
      if (!(error instanceof PickleTruncatedError) || length >= fileBytes) throw error;
      if (length >= MAX_PICKLE_BYTES) {
        throw new ModelFileError(
          file,
          `the legacy pickles run past ${MAX_PICKLE_BYTES} bytes, the limit`,
        );
      }
    }
  }
}

async function readLegacyCheckpoint(file: string, fileBytes: number): Promise<Checkpoint> {
  const { root, keys, sysInfo, end, storages } = await readLegacyPickles(file, fileBytes);
  if (
    typeof sysInfo === 'object' &&
    sysInfo !== null &&
    !(sysInfo instanceof Uint8Array) &&
    sysInfo.kind === 'dict'
  ) {
    if (sysInfo.entries.get('little_endian') === false) {
      throw new ModelFileError(file, `a big-endian legacy checkpoint; ${RESAVE}`);
    }
  }
  if (
    typeof keys !== 'object' ||
    keys === null ||
    keys instanceof Uint8Array ||
    keys.kind !== 'list'
  ) {
    throw new ModelFileError(file, 'the legacy storage list is not a list');
  }
  const located = new Map<string, { start: number; size: number }>();
  const handle = await openFile(file, 'r');
  try {
    let at = end;
    for (const key of keys.items) {
      const storage = typeof key === 'string' ? storages.get(key) : undefined;
      if (!storage) {
        throw new ModelFileError(
          file,
          `the legacy storage list names ${String(key)}, which no tensor uses`,
        );
      }
      const countBytes = await readExactly(handle, file, at, 8);
      const count = new DataView(countBytes.buffer).getBigInt64(0, true);
      const size = Number(count) * (DTYPES[storage.dtype].bits / 8);
      if (count < 0n || at + 8 + size > fileBytes) {
        throw new ModelFileError(
          file,
          `storage ${storage.key} claims ${count} elements, past the end of the file`,
        );
      }
      located.set(storage.key, { start: at + 8, size });
      at += 8 + size;
    }
  } finally {
    await handle.close();
  }
  for (const key of storages.keys()) {
    if (!located.has(key))
      throw new ModelFileError(file, `storage ${key} is missing from the legacy storage list`);
  }
  return {
    fileBytes,
    ...checkpointContents(file, root, [{ key: 'serialization', value: 'legacy (torch < 1.6)' }]),
    storageBytes: (storage) => {
      const { start, size } = located.get(storage.key)!;
      return {
        size,
        fileOffset: start,
        source: (from, length) =>
          recordSource(
            file,
            {
              name: `storage ${storage.key}`,
              dataStart: start,
              compressedSize: size,
              size,
              deflated: false,
            },
            from,
            length,
          ),
      };
    },
  };
}

async function readCheckpoint(file: string): Promise<Checkpoint> {
  const fileBytes = await fileSize(file, 'the file does not exist or cannot be read');
  const head = await readRange(file, 0, Math.min(fileBytes, 512));
  if (startsWith(head, ZIP_MAGIC)) return readZipCheckpoint(file, fileBytes);
  if (startsWith(head, LEGACY_MAGIC)) return readLegacyCheckpoint(file, fileBytes);
  if (new TextDecoder('latin1').decode(head.subarray(257, 262)) === TAR_MAGIC) {
    throw new ModelFileError(file, `a tar archive, the format of torch ≤ 0.3; ${RESAVE}`);
  }
  throw new ModelFileError(
    file,
    'not a PyTorch checkpoint: neither a torch.save zip archive nor the legacy pickle format',
  );
}

async function readShard(shardPath: string): Promise<ShardContents> {
  const checkpoint = await readCheckpoint(shardPath);
  return {
    fileBytes: checkpoint.fileBytes,
    warnings: checkpoint.warnings,
    tensors: checkpoint.tensors.map((named) => ({
      name: named.name,
      entry: (index, fileName) =>
        tensorEntry(shardPath, fileName, named, index, checkpoint.storageBytes),
    })),
  };
}

async function openCheckpoint(filePath: string): Promise<OpenedModel> {
  const checkpoint = await readCheckpoint(filePath);
  const fileName = path.basename(filePath);
  const tensors = checkpoint.tensors.map((named, index) =>
    tensorEntry(filePath, fileName, named, index, checkpoint.storageBytes),
  );
  return {
    path: filePath,
    summary: tensorListSummary(
      'pytorch',
      filePath,
      checkpoint.fileBytes,
      checkpoint.fileBytes,
      [],
      tensors,
      checkpoint.metadata,
      checkpoint.warnings,
    ),
    tensors,
  };
}

export const pytorchFormat: FormatModule = {
  format: 'pytorch',
  extensions: ['.pt', '.pth', '.ckpt', '.bin', '.bin.index.json'],
  match(head) {
    return looksLikeTorchZip(head) || startsWith(head, LEGACY_MAGIC) || looksLikeJsonObject(head);
  },
  async open(filePath) {
    const absolute = path.resolve(filePath);
    return absolute.toLowerCase().endsWith('.json')
      ? openShardIndex(absolute, 'pytorch', readShard)
      : openCheckpoint(absolute);
  },
};

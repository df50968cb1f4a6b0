/**
 * From a checkpoint's unpickled object to LayerLens tensors: every tensor reached through
 * dicts, lists and tuples, named by its dotted path (`model.encoder.fc1.weight`,
 * `optimizer.state.0.exp_avg`), plain values kept as metadata, and each tensor's bytes
 * located in its storage: one file range when the tensor is contiguous and stored, bytes
 * gathered from its strided view otherwise.
 */
import { closeSync, openSync } from 'node:fs';
import { DTYPES } from '../../../shared/dtypes';
import {
  MAX_IN_MEMORY_TENSOR_BYTES,
  MAX_PICKLE_DEPTH,
  MAX_PYTORCH_METADATA_ENTRIES,
  MAX_TENSORS,
} from '../../../shared/limits';
import type { MetadataEntry, TensorInfo } from '../../../shared/model';
import { readExactlySync } from '../fileRange';
import { ModelFileError } from '../modelFileError';
import type { TensorData, TensorEntry } from '../types';
import type { PyValue } from './pickle';
import { tensorOf, type TorchStorage, type TorchTensor } from './torchGlobals';
import type { RecordSource } from './zip';

export interface NamedTensor {
  readonly name: string;
  readonly tensor: TorchTensor;
}

/** Where a storage's bytes are: a range of the checkpoint (stored) or bytes to inflate. */
export interface StorageBytes {
  /** Bytes the record holds. */
  readonly size: number;
  /** Offset of the bytes in the checkpoint file when they are stored as they are. */
  readonly fileOffset: number | null;
  /** Where bytes [start, start + length) of the storage are read, and how they are taken out. */
  source(start: number, length: number): RecordSource;
}

/** Items of a list of plain values shown in its metadata entry. */
const LISTED_ITEMS = 8;

function joinName(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

function plainText(value: PyValue): string | undefined {
  if (value === null) return 'None';
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 197)}...` : value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return String(value);
  }
  return undefined;
}

/** Every tensor under `root` with its dotted name, and the plain values met on the way. */
export function collectTensors(
  file: string,
  root: PyValue,
): { tensors: NamedTensor[]; metadata: MetadataEntry[]; omitted: number } {
  const tensors: NamedTensor[] = [];
  const metadata: MetadataEntry[] = [];
  let omitted = 0;
  const seen = new Set<object>();
  const visit = (value: PyValue, name: string, depth: number): void => {
    if (depth > MAX_PICKLE_DEPTH) {
      const where = name.length > 80 ? `${name.slice(0, 77)}...` : name;
      throw new ModelFileError(
        file,
        `the checkpoint nests deeper than ${MAX_PICKLE_DEPTH} levels at ${where}`,
      );
    }
    const tensor = tensorOf(value);
    if (tensor) {
      if (tensors.length >= MAX_TENSORS) {
        throw new ModelFileError(file, `the checkpoint holds more than ${MAX_TENSORS} tensors`);
      }
      tensors.push({ name: name === '' ? 'tensor' : name, tensor });
      return;
    }
    const text = plainText(value);
    if (text !== undefined) {
      if (metadata.length < MAX_PYTORCH_METADATA_ENTRIES)
        metadata.push({ key: name || 'value', value: text });
      else omitted++;
      return;
    }
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
    if (seen.has(value)) return;
    seen.add(value);
    if ((value.kind === 'list' || value.kind === 'tuple') && value.items.length > 0) {
      const texts = value.items.map(plainText);
      if (texts.every((text) => text !== undefined)) {
        // A list of plain values (betas, parameter ids) is one entry, not one per item.
        const shown = texts.slice(0, LISTED_ITEMS).join(', ');
        const more = texts.length > LISTED_ITEMS ? `, … (${texts.length} items)` : '';
        if (metadata.length < MAX_PYTORCH_METADATA_ENTRIES) {
          metadata.push({ key: name || 'value', value: `[${shown}${more}]` });
        } else omitted++;
        return;
      }
    }
    if (value.kind === 'dict') {
      for (const [key, item] of value.entries) visit(item, joinName(name, String(key)), depth + 1);
    } else if (value.kind === 'list' || value.kind === 'tuple') {
      value.items.forEach((item, i) => visit(item, joinName(name, String(i)), depth + 1));
    }
  };
  visit(root, '', 0);
  return { tensors, metadata, omitted };
}

/** Whether the strides are those of a row-major (C-contiguous) tensor of this shape. */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/**
 * Gather a strided view into dense row-major bytes: `span` holds the storage's elements
 * from `first` on; runs along the last axis are copied whole when its stride is 1.
 */
export function gatherStrided(
  span: Uint8Array,
  first: number,
  elementBytes: number,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
): Uint8Array {
  const elements = shape.reduce((product, side) => product * side, 1);
  const out = new Uint8Array(elements * elementBytes);
  if (elements === 0) return out;
  const rank = shape.length;
  const unitLast = rank > 0 && stride[rank - 1] === 1;
  const innerRun = unitLast ? shape[rank - 1]! : 1;
  const outerRank = unitLast ? rank - 1 : rank;
  const index = new Array<number>(outerRank).fill(0);
  const runBytes = innerRun * elementBytes;
  for (let written = 0; written < out.byteLength; written += runBytes) {
    let element = offset;
    for (let axis = 0; axis < outerRank; axis++) element += index[axis]! * stride[axis]!;
    const from = (element - first) * elementBytes;
    out.set(span.subarray(from, from + runBytes), written);
    for (let axis = outerRank - 1; axis >= 0; axis--) {
      if (++index[axis]! < shape[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

/** The layer a tensor belongs to: its name without the last dotted component. */
function layerOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/**
 * The LayerLens entry of one tensor: `storages` says where each storage's bytes are;
 * `path` is the checkpoint, `fileName` its name as the table shows it.
 */
export function tensorEntry(
  path: string,
  fileName: string,
  named: NamedTensor,
  index: number,
  storageBytes: (storage: TorchStorage) => StorageBytes,
): TensorEntry {
  const { tensor } = named;
  const { storage } = tensor;
  const elementBytes = DTYPES[storage.dtype].bits / 8;
  const bytes = storageBytes(storage);
  if (storage.numel * elementBytes > bytes.size) {
    throw new ModelFileError(
      path,
      `storage ${storage.key} (${storage.typeName}) claims ${storage.numel} elements, but its record holds ${bytes.size} bytes`,
    );
  }
  const elements = tensor.shape.reduce((product, side) => product * side, 1);
  const length = elements * elementBytes;
  const contiguous = isContiguous(tensor.shape, tensor.stride);
  const rangeOffset =
    contiguous && bytes.fileOffset !== null
      ? bytes.fileOffset + tensor.offset * elementBytes
      : null;
  let data: TensorData;
  if (rangeOffset !== null) {
    data = { kind: 'file', path, offset: rangeOffset, length };
  } else {
    let last = tensor.offset;
    for (let i = 0; i < tensor.shape.length; i++) {
      last += (tensor.shape[i]! - 1) * tensor.stride[i]!;
    }
    const spanStart = tensor.offset * elementBytes;
    const spanLength = elements === 0 ? 0 : (last - tensor.offset + 1) * elementBytes;
    const source = bytes.source(spanStart, spanLength);
    const gather = (raw: Uint8Array): Uint8Array => {
      const span = source.extract(raw);
      return contiguous
        ? span.slice(0, length)
        : gatherStrided(
            span,
            tensor.offset,
            elementBytes,
            tensor.offset,
            tensor.shape,
            tensor.stride,
          );
    };
    data = {
      kind: 'memory',
      length,
      load: () => {
        if (length > MAX_IN_MEMORY_TENSOR_BYTES) {
          throw new ModelFileError(
            path,
            `tensor "${named.name}" is ${length} bytes, more than the ${MAX_IN_MEMORY_TENSOR_BYTES} bytes LayerLens gathers in memory`,
          );
        }
        if (elements === 0) return new Uint8Array(0);
        const fd = openSync(path, 'r');
        try {
          return gather(readExactlySync(fd, path, source.offset, source.length));
        } finally {
          closeSync(fd);
        }
      },
      ...(elements > 0
        ? { derived: { path, offset: source.offset, length: source.length, derive: gather } }
        : {}),
    };
  }
  const info: TensorInfo = {
    index,
    name: named.name,
    dtype: storage.dtype,
    shape: tensor.shape,
    parameterCount: elements,
    byteLength: length,
    node: layerOf(named.name),
    op: null,
    location: 'pytorch',
    graph: '',
    file: fileName,
    byteOffset: rangeOffset,
  };
  return { info, data };
}

/** A warning for storages that several tensors read (views, tied weights), or none. */
export function sharingWarning(tensors: readonly NamedTensor[]): string | undefined {
  const readers = new Map<string, number>();
  for (const { tensor } of tensors)
    readers.set(tensor.storage.key, (readers.get(tensor.storage.key) ?? 0) + 1);
  const shared = [...readers.values()].filter((count) => count > 1);
  if (shared.length === 0) return undefined;
  const tensorsSharing = shared.reduce((sum, count) => sum + count, 0);
  return `${tensorsSharing} tensors share ${shared.length} storages (views or tied weights): their bytes are counted once per tensor`;
}

/**
 * safetensors reader: an 8-byte little-endian header length N, N bytes of JSON header,
 * then the data section that the header's `data_offsets` point into. Only the header is
 * read at open. Sharded models are opened through their `*.safetensors.index.json`,
 * whose `weight_map` names the shard that holds each tensor.
 */
import * as path from 'node:path';
import { byteLengthOf, type DType } from '../../shared/dtypes';
import {
  MAX_SAFETENSORS_HEADER_BYTES,
  MAX_TENSOR_ELEMENTS,
  MAX_TENSOR_RANK,
  MAX_TENSORS,
} from '../../shared/limits';
import { MODEL_FORMAT_INFO, type MetadataEntry, type TensorInfo } from '../../shared/model';
import {
  describeValue,
  fileSize,
  isPlainObject,
  looksLikeJsonObject,
  metadataEntries,
  openShardIndex,
  readRange,
  tensorListSummary,
  type ShardContents,
} from './shardIndex';
import { decodeInt8Weights } from './safetensorsInt8';
import { parseFileJson } from './jsonText';
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

function isJsonFile(filePath: string): boolean {
  return filePath.toLowerCase().endsWith('.json');
}

/** The layer a tensor belongs to: its name without the last dotted component. */
export function layerOfTensor(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
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
  const header = parseFileJson(filePath, headerText, 'the header');
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

async function openSingleFile(filePath: string): Promise<OpenedModel> {
  const header = await readHeader(filePath);
  const fileName = path.basename(filePath);
  const warnings = [...header.warnings];
  // LayerLens's own int8 weights (codes and scales) open as their values.
  const tensors = decodeInt8Weights(
    header.tensors.map((tensor, index) => tensorEntry(header, tensor, index, fileName)),
    header.metadata,
    warnings,
  );
  const metadata: MetadataEntry[] = [
    { key: 'header bytes', value: String(header.headerBytes) },
    ...header.metadata,
  ];
  return {
    path: filePath,
    summary: tensorListSummary(
      'safetensors',
      filePath,
      header.fileBytes,
      header.fileBytes,
      [],
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

/** One shard of a sharded safetensors model. */
async function readShard(shardPath: string): Promise<ShardContents> {
  const header = await readHeader(shardPath);
  return {
    fileBytes: header.fileBytes,
    warnings: header.warnings,
    tensors: header.tensors.map((tensor) => ({
      name: tensor.name,
      entry: (index, fileName) => tensorEntry(header, tensor, index, fileName),
    })),
  };
}

export const safetensorsFormat: FormatModule = {
  format: 'safetensors',
  // A sharded model's index (`model.safetensors.index.json`) too.
  extensions: [...MODEL_FORMAT_INFO.safetensors.extensions, '.json'],
  match(head) {
    return looksLikeSafetensors(head) || looksLikeJsonObject(head);
  },
  async open(filePath) {
    const absolute = path.resolve(filePath);
    return isJsonFile(absolute)
      ? openShardIndex(absolute, 'safetensors', readShard)
      : openSingleFile(absolute);
  },
};

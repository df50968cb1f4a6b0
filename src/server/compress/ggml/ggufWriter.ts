/**
 * Re-type the tensors of a GGUF file: a new GGUF with the metadata bytes copied as they
 * are, every tensor info rewritten with its new type and offset, and each chosen F32/F16/
 * BF16 tensor quantized to its ggml block type (compress/ggml/); the others copied. Tensor
 * data starts at a multiple of the file's alignment (general.alignment, 32 by default) and
 * each tensor is padded to the next multiple, as llama.cpp writes files, so the size of the
 * written file is known before anything is written (ggufFileBytes). The output goes through
 * compress/output.ts: a temporary file first, a new name, the original never touched.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { GGML_QUANT_TYPES, type GgmlQuantType } from '../../../shared/compressMethods';
import { MAX_IN_MEMORY_TENSOR_BYTES } from '../../../shared/limits';
import { decodeValues, type NumericDType } from '../../analysis/decode';
import { ggmlByteLength, ggmlType, type GgmlType } from '../../formats/gguf/ggmlTypes';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from '../../formats/gguf/header';
import { ModelFileError } from '../../formats/modelFileError';
import { withOutputFiles } from '../output';
import { GgmlWorkers } from '../../jobs/ggmlJob';

/** Tensor name → the ggml type it is written as (tensors not named keep theirs). */
export type GgufTypeChoices = ReadonlyMap<string, GgmlQuantType>;

/** The plain types a tensor may be quantized from. */
const SOURCE_TYPES = new Set(['F32', 'F16', 'BF16']);

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Bytes of one tensor info: name (u64 length + UTF-8), n_dims, the dims, type, offset. */
function tensorInfoBytes(info: GgufTensorInfo): number {
  return 8 + Buffer.byteLength(info.name, 'utf8') + 4 + 8 * info.ne.length + 4 + 8;
}

/** Why `info` cannot be written as `type`; null when it can. */
export function retypeProblem(info: GgufTensorInfo, type: GgmlType): string | null {
  if (!SOURCE_TYPES.has(info.type.name)) {
    return `tensor "${info.name}" is ${info.type.name}; only F32, F16 and BF16 tensors are re-typed`;
  }
  const rowLength = info.ne[0] ?? 1;
  if (rowLength % type.blockElements !== 0) {
    return `tensor "${info.name}": rows of ${rowLength} weights are not a whole number of ${type.name} blocks of ${type.blockElements}`;
  }
  return null;
}

interface Placed {
  readonly info: GgufTensorInfo;
  readonly type: GgmlType;
  /** Offset within the data section. */
  readonly relative: number;
  readonly byteLength: number;
}

interface Layout {
  readonly tensors: readonly Placed[];
  readonly dataOffset: number;
  readonly fileBytes: number;
}

/** Where every tensor goes in the written file, and its size; a ModelFileError for a bad choice. */
function layoutOf(header: GgufHeader, choices: GgufTypeChoices): Layout {
  const known = new Set(header.tensors.map((info) => info.name));
  for (const name of choices.keys()) {
    if (!known.has(name)) throw new ModelFileError(header.path, `no tensor is named "${name}"`);
  }
  let infoBytes = 0;
  let relative = 0;
  const tensors: Placed[] = [];
  for (const info of header.tensors) {
    const chosen = choices.get(info.name);
    const type = chosen ? ggmlType(chosen) : info.type;
    if (chosen) {
      if (!(GGML_QUANT_TYPES as readonly string[]).includes(chosen)) {
        throw new ModelFileError(header.path, `LayerLens does not write ${chosen} tensors`);
      }
      const problem = retypeProblem(info, type);
      if (problem) throw new ModelFileError(header.path, problem);
    }
    const byteLength = chosen ? ggmlByteLength(type, info.elements) : info.byteLength;
    tensors.push({ info, type, relative, byteLength });
    relative = alignUp(relative + byteLength, header.alignment);
    infoBytes += tensorInfoBytes(info);
  }
  const dataOffset = alignUp(header.metadataEnd + infoBytes, header.alignment);
  return { tensors, dataOffset, fileBytes: dataOffset + relative };
}

/** Bytes of the GGUF file written from `header` with `choices` (metadata and padding counted). */
export function ggufFileBytes(header: GgufHeader, choices: GgufTypeChoices): number {
  return layoutOf(header, choices).fileBytes;
}

function readAt(fd: number, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = readSync(fd, bytes, done, length - done, offset + done);
    if (read === 0) throw new Error(`unexpected end of file at ${offset + done}`);
    done += read;
  }
  return bytes;
}

function tensorInfos(tensors: readonly Placed[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const { info, type, relative } of tensors) {
    const name = Buffer.from(info.name, 'utf8');
    const fixed = Buffer.alloc(8 + name.length + 4 + 8 * info.ne.length + 4 + 8);
    let at = fixed.writeBigUInt64LE(BigInt(name.length), 0);
    at += name.copy(fixed, at);
    at = fixed.writeUInt32LE(info.ne.length, at);
    for (const n of info.ne) at = fixed.writeBigUInt64LE(BigInt(n), at);
    at = fixed.writeUInt32LE(type.id, at);
    fixed.writeBigUInt64LE(BigInt(relative), at);
    parts.push(fixed);
  }
  return Buffer.concat(parts);
}

/** The float32 values of a plain tensor read from `fd`. */
export function valuesOf(fd: number, path: string, info: GgufTensorInfo): Float32Array {
  if (info.byteLength > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new ModelFileError(
      path,
      `tensor "${info.name}" takes ${info.byteLength} bytes, more than the ${MAX_IN_MEMORY_TENSOR_BYTES} LayerLens quantizes at once`,
    );
  }
  const bytes = readAt(fd, info.offset, info.byteLength);
  const values = decodeValues(info.type.plain as NumericDType, bytes, info.elements);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

export interface WrittenGguf {
  readonly path: string;
  readonly bytes: number;
}

/** One re-typed tensor of a written GGUF. */
export interface RetypedTensor {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** ‖W − Ŵ‖/‖W‖, Ŵ the written blocks dequantized. */
  readonly relativeError: number;
}

/** The header of `source` when it can be re-typed (a split model cannot). */
export function retypeableHeader(source: string): GgufHeader {
  const header = readGgufHeader(source);
  const split = header.metadata.find((entry) => entry.key === 'split.count')?.value;
  if (split !== undefined && Number(split) > 1) {
    throw new ModelFileError(source, 'a split GGUF model is not re-typed; merge it first');
  }
  return header;
}

/**
 * Write `header`'s file with the tensors of `choices` re-typed to `target` (a new file,
 * created exclusively). Returns the file's bytes and each re-typed tensor's result;
 * `signal` cancels (within a tensor too: it is quantized in a ggml worker, piece by
 * piece), `onTensor` hears of each one written.
 */
export async function writeRetypedFile(
  header: GgufHeader,
  choices: GgufTypeChoices,
  target: string,
  options: {
    readonly signal?: AbortSignal;
    readonly onTensor?: (done: number, total: number) => void;
    /** The importance of a re-typed tensor's input columns (importance.ts), if any. */
    readonly importance?: (info: GgufTensorInfo) => Float32Array | undefined;
  } = {},
): Promise<{ bytes: number; tensors: RetypedTensor[] }> {
  const source = header.path;
  const layout = layoutOf(header, choices);
  const input = openSync(source, 'r');
  const output = openSync(target, 'wx');
  const tensors: RetypedTensor[] = [];
  // One worker: the tensors are written in order, each quantized off the main thread.
  const workers = new GgmlWorkers(1);
  try {
    let position = 0;
    const put = (bytes: Uint8Array): void => {
      let done = 0;
      while (done < bytes.byteLength) {
        done += writeSync(output, bytes, done, bytes.byteLength - done, position + done);
      }
      position += bytes.byteLength;
    };
    const padTo = (offset: number): void => put(new Uint8Array(offset - position));
    put(readAt(input, 0, header.metadataEnd));
    put(tensorInfos(layout.tensors));
    padTo(layout.dataOffset);
    let done = 0;
    for (const placed of layout.tensors) {
      options.signal?.throwIfAborted();
      padTo(layout.dataOffset + placed.relative);
      const { info, type } = placed;
      if (type === info.type) {
        put(readAt(input, info.offset, info.byteLength));
      } else {
        const values = valuesOf(input, source, info);
        const importance = options.importance?.(info);
        const { bytes, relativeError } = await workers.quantize(
          type.name,
          values,
          importance,
          options.signal,
        );
        put(bytes);
        tensors.push({
          name: info.name,
          from: info.type.name,
          to: type.name,
          bytesBefore: info.byteLength,
          bytesAfter: bytes.byteLength,
          relativeError,
        });
      }
      options.onTensor?.(++done, layout.tensors.length);
      // Let a cancel through between tensors.
      await new Promise((resolve) => setImmediate(resolve));
    }
    padTo(layout.fileBytes);
  } finally {
    workers.dispose();
    closeSync(output);
    closeSync(input);
  }
  return { bytes: layout.fileBytes, tensors };
}

/**
 * Write `source` with the tensors of `choices` re-typed into a new GGUF: `outPath` when
 * given (refused when it exists), else `<stem>.<label>.gguf` beside it. `signal` cancels
 * between tensors (nothing is left behind).
 */
export async function writeRetypedGguf(
  source: string,
  choices: GgufTypeChoices,
  options: {
    readonly outPath?: string;
    readonly label?: string;
    /** `layerlens.output.folder`, for the default name. */
    readonly folder?: string;
    readonly signal?: AbortSignal;
    readonly importance?: (info: GgufTensorInfo) => Float32Array | undefined;
  } = {},
): Promise<WrittenGguf> {
  const header = retypeableHeader(source);
  // Bad choices are refused before any file is created.
  layoutOf(header, choices);
  return withOutputFiles(
    source,
    { name: options.label ?? 'retyped', outPath: options.outPath, folder: options.folder },
    async (files) => {
      const { bytes } = await writeRetypedFile(header, choices, files.temp(), options);
      await files.commit();
      return { path: files.path, bytes };
    },
    '.gguf',
  );
}

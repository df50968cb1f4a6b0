/**
 * Reading NumPy `.npy` arrays and `.npz` archives (zip files of `.npy` entries, stored or
 * deflated) for user-provided validation inputs. The zip central directory is parsed
 * here; every count, size and offset is checked against the file and the named limits.
 */
import { readFile, stat } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { MAX_NPZ_ENTRIES, MAX_SAMPLE_INPUT_BYTES, MAX_TENSOR_RANK } from '../../shared/limits';
import { ModelFileError } from '../formats/types';

export type NpyDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export interface NpyArray {
  readonly dtype: NpyDType;
  readonly shape: readonly number[];
  /** Little-endian element bytes in C order. */
  readonly data: Uint8Array;
}

const DESCR: Readonly<Record<string, { dtype: NpyDType; size: number }>> = {
  f4: { dtype: 'float32', size: 4 },
  f8: { dtype: 'float64', size: 8 },
  f2: { dtype: 'float16', size: 2 },
  i1: { dtype: 'int8', size: 1 },
  u1: { dtype: 'uint8', size: 1 },
  i2: { dtype: 'int16', size: 2 },
  u2: { dtype: 'uint16', size: 2 },
  i4: { dtype: 'int32', size: 4 },
  u4: { dtype: 'uint32', size: 4 },
  i8: { dtype: 'int64', size: 8 },
  u8: { dtype: 'uint64', size: 8 },
  b1: { dtype: 'bool', size: 1 },
};

/** Parse one `.npy` payload; `file` names it in errors. */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, `not a usable .npy array: ${problem}`);
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) fail('the NUMPY magic is missing');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('the header is truncated');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return fail(`format version ${major} is not supported`);
  }
  if (headerStart + headerLength > bytes.length) fail('the header runs past the end of the file');
  const header = new TextDecoder('latin1').decode(
    bytes.subarray(headerStart, headerStart + headerLength),
  );
  const descr = /'descr'\s*:\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText)
    fail(`the header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  const type = DESCR[descr![2]!];
  if (!type) return fail(`element type '${descr![1]}${descr![2]}' is not supported`);
  if (descr![1] === '>' && type.size > 1) fail('big-endian arrays are not supported');
  if (fortran![1] === 'True') fail('Fortran-ordered arrays are not supported (save with C order)');
  const dims = shapeText![1]!
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  if (dims.length > MAX_TENSOR_RANK) fail(`rank ${dims.length} is more than ${MAX_TENSOR_RANK}`);
  const shape = dims.map((dim) => {
    const value = /^\d+L?$/.test(dim) ? Number.parseInt(dim, 10) : NaN;
    if (!Number.isSafeInteger(value)) fail(`dimension '${dim}' is not a size`);
    return value;
  });
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLength;
  const needed = count * type.size;
  if (!Number.isSafeInteger(needed) || needed > MAX_SAMPLE_INPUT_BYTES) {
    fail(`${needed} bytes of data are more than the ${MAX_SAMPLE_INPUT_BYTES} accepted`);
  }
  if (bytes.length - dataStart < needed) {
    fail(
      `shape [${shape.join(', ')}] needs ${needed} bytes of data, the file has ${bytes.length - dataStart}`,
    );
  }
  // A copy with its own buffer (node Buffers slice into a shared pool).
  return {
    dtype: type.dtype,
    shape,
    data: new Uint8Array(bytes.subarray(dataStart, dataStart + needed)),
  };
}

/** End of central directory record: signature, and the smallest record size. */
const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** The EOCD may be followed by a comment of up to 65535 bytes. */
const MAX_ZIP_COMMENT = 0xffff;

/** The `.npy` entries of an `.npz` archive, by name without the `.npy` suffix. */
export function parseNpz(bytes: Uint8Array, file: string): Map<string, NpyArray> {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, `not a usable .npz archive: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  const earliest = Math.max(0, bytes.length - EOCD_SIZE - MAX_ZIP_COMMENT);
  for (let at = bytes.length - EOCD_SIZE; at >= earliest; at--) {
    if (view.getUint32(at, true) === EOCD_SIGNATURE) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail('no zip end-of-central-directory record');
  const entryCount = view.getUint16(eocd + 10, true);
  const directorySize = view.getUint32(eocd + 12, true);
  const directoryOffset = view.getUint32(eocd + 16, true);
  if (entryCount === 0xffff || directoryOffset === 0xffffffff)
    fail('zip64 archives are not supported');
  if (entryCount > MAX_NPZ_ENTRIES)
    fail(`${entryCount} entries are more than the ${MAX_NPZ_ENTRIES} accepted`);
  if (directoryOffset + directorySize > eocd) fail('the central directory lies outside the file');
  const arrays = new Map<string, NpyArray>();
  let at = directoryOffset;
  for (let i = 0; i < entryCount; i++) {
    if (at + 46 > eocd || view.getUint32(at, true) !== CENTRAL_SIGNATURE)
      fail(`central directory entry ${i} is corrupt`);
    const method = view.getUint16(at + 10, true);
    const compressedSize = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const localOffset = view.getUint32(at + 42, true);
    if (at + 46 + nameLength > eocd) fail(`central directory entry ${i} is truncated`);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff) {
      fail(`entry '${name}' needs zip64, which is not supported`);
    }
    if (size > MAX_SAMPLE_INPUT_BYTES)
      fail(`entry '${name}' of ${size} bytes is more than the ${MAX_SAMPLE_INPUT_BYTES} accepted`);
    if (!name.endsWith('.npy')) continue;
    if (localOffset + 30 > bytes.length || view.getUint32(localOffset, true) !== LOCAL_SIGNATURE) {
      fail(`the local header of '${name}' is missing`);
    }
    const dataStart =
      localOffset +
      30 +
      view.getUint16(localOffset + 26, true) +
      view.getUint16(localOffset + 28, true);
    if (dataStart + compressedSize > bytes.length)
      fail(`entry '${name}' runs past the end of the file`);
    const stored = bytes.subarray(dataStart, dataStart + compressedSize);
    let payload: Uint8Array;
    if (method === 0) payload = stored;
    else if (method === 8) {
      try {
        payload = inflateRawSync(stored, { maxOutputLength: Math.max(1, size) });
      } catch (error) {
        return fail(`entry '${name}' does not inflate (${(error as Error).message})`);
      }
    } else
      return fail(`entry '${name}' uses compression method ${method} (only stored and deflate)`);
    if (payload.length !== size)
      fail(`entry '${name}' holds ${payload.length} bytes, its header says ${size}`);
    arrays.set(name.slice(0, -'.npy'.length), parseNpy(payload, `${file}:${name}`));
  }
  return arrays;
}

/** Read a `.npy` or `.npz` file, checking its size first. */
export async function readNumpyFile(file: string): Promise<Map<string, NpyArray> | NpyArray> {
  const info = await stat(file);
  if (info.size > MAX_SAMPLE_INPUT_BYTES) {
    throw new ModelFileError(
      file,
      `is ${info.size} bytes, more than the ${MAX_SAMPLE_INPUT_BYTES} accepted for sample inputs`,
    );
  }
  const bytes = await readFile(file);
  return file.toLowerCase().endsWith('.npz') ? parseNpz(bytes, file) : parseNpy(bytes, file);
}

/**
 * Importance matrices from llama.cpp's `llama-imatrix`: for each weight tensor, the mean
 * squared activation of each of its input columns, which llama.cpp's quantizers take as
 * quant_weights. Two file forms are read:
 *
 * - the legacy `.dat`: int32 entry count; per entry an int32 name length, the name, int32
 *   ncall, int32 nval and nval float32 sums (divided by ncall when ncall > 0); then an
 *   int32 last chunk and the dataset name (not needed here);
 * - the GGUF form: tensors `<name>.in_sum2` (F32, columns × experts) and `<name>.counts`
 *   (F32, one per expert); the values are in_sum2 / counts.
 *
 * Every count and length is checked against a named limit before use.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { LayerLensSettings } from '../../../shared/settings';
import {
  MAX_IMATRIX_BYTES,
  MAX_IMATRIX_ENTRIES,
  MAX_IMATRIX_NAME_BYTES,
  MAX_IMATRIX_VALUES,
} from '../../../shared/limits';
import { looksLikeGguf, readGgufHeader } from '../../formats/gguf/header';
import { ModelFileError } from '../../formats/modelFileError';
import { valuesOf } from './ggufWriter';

/** Weight tensor name → the importance of each input column (columns × experts values). */
export type ImportanceMatrix = ReadonlyMap<string, Float32Array>;

const SUM2_SUFFIX = '.in_sum2';
const COUNTS_SUFFIX = '.counts';

function checkValues(path: string, name: string, values: Float32Array): Float32Array {
  for (const value of values) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new ModelFileError(path, `entry "${name}" holds ${value}, not a mean square`);
    }
  }
  return values;
}

function readLegacy(path: string, bytes: Buffer): Map<string, Float32Array> {
  let at = 0;
  const need = (count: number, what: string): void => {
    if (at + count > bytes.byteLength) {
      throw new ModelFileError(
        path,
        `the importance matrix ends inside ${what} (at byte ${at}, ${count} more needed)`,
      );
    }
  };
  const int = (what: string, limit: number): number => {
    need(4, what);
    const value = bytes.readInt32LE(at);
    at += 4;
    if (value < 0 || value > limit) {
      throw new ModelFileError(path, `${what} is ${value}, not a count up to ${limit}`);
    }
    return value;
  };
  const entries = int('the entry count', MAX_IMATRIX_ENTRIES);
  const out = new Map<string, Float32Array>();
  for (let i = 0; i < entries; i++) {
    const length = int(`the name length of entry ${i}`, MAX_IMATRIX_NAME_BYTES);
    need(length, `the name of entry ${i}`);
    const name = bytes.toString('utf8', at, at + length);
    at += length;
    const calls = int(`the call count of "${name}"`, Number.MAX_SAFE_INTEGER);
    const count = int(`the value count of "${name}"`, MAX_IMATRIX_VALUES);
    need(4 * count, `the values of "${name}"`);
    const values = new Float32Array(count);
    for (let j = 0; j < count; j++) {
      values[j] = bytes.readFloatLE(at + 4 * j) / (calls > 0 ? calls : 1);
    }
    at += 4 * count;
    if (out.has(name)) throw new ModelFileError(path, `entry "${name}" appears twice`);
    out.set(name, checkValues(path, name, values));
  }
  return out;
}

function readGgufForm(path: string): Map<string, Float32Array> {
  const header = readGgufHeader(path);
  if (header.tensors.length > 2 * MAX_IMATRIX_ENTRIES) {
    throw new ModelFileError(path, `more than ${MAX_IMATRIX_ENTRIES} importance entries`);
  }
  const byName = new Map(header.tensors.map((info) => [info.name, info]));
  const out = new Map<string, Float32Array>();
  const fd = openSync(path, 'r');
  try {
    for (const sums of header.tensors) {
      if (!sums.name.endsWith(SUM2_SUFFIX)) continue;
      const name = sums.name.slice(0, -SUM2_SUFFIX.length);
      const counts = byName.get(`${name}${COUNTS_SUFFIX}`);
      if (!counts) throw new ModelFileError(path, `"${sums.name}" has no "${name}.counts"`);
      for (const info of [sums, counts]) {
        if (info.type.name !== 'F32') {
          throw new ModelFileError(path, `"${info.name}" is ${info.type.name}, not F32`);
        }
      }
      if (sums.elements > MAX_IMATRIX_VALUES) {
        throw new ModelFileError(
          path,
          `"${sums.name}" holds ${sums.elements} values, more than ${MAX_IMATRIX_VALUES}`,
        );
      }
      const columns = sums.ne[0] ?? 1;
      const experts = sums.elements / columns;
      if (counts.elements !== experts) {
        throw new ModelFileError(
          path,
          `"${counts.name}" holds ${counts.elements} counts for ${experts} matrices of "${sums.name}"`,
        );
      }
      const values = valuesOf(fd, path, sums);
      const calls = valuesOf(fd, path, counts);
      for (let e = 0; e < experts; e++) {
        const count = calls[e]!;
        for (let j = 0; j < columns; j++) values[e * columns + j]! /= count > 0 ? count : 1;
      }
      out.set(name, checkValues(path, name, values));
    }
  } finally {
    closeSync(fd);
  }
  if (out.size === 0) {
    throw new ModelFileError(path, `no "<name>${SUM2_SUFFIX}" tensors: not an importance matrix`);
  }
  return out;
}

/** Read the importance matrix at `path` (legacy `.dat` or GGUF form). */
export function readImportanceMatrix(path: string): ImportanceMatrix {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new ModelFileError(path, `the importance matrix cannot be read (${code})`);
  }
  if (size > MAX_IMATRIX_BYTES) {
    throw new ModelFileError(
      path,
      `the importance matrix is ${size} bytes, more than the ${MAX_IMATRIX_BYTES} read`,
    );
  }
  const bytes = readFileSync(path);
  return looksLikeGguf(bytes) ? readGgufForm(path) : readLegacy(path, bytes);
}

/**
 * The importance of the input columns of tensor `name` (rows of `rowLength` weights), or
 * undefined when the matrix has no entry for it; an error when the entry's size differs
 * (an importance matrix of another model).
 */
export function importanceOf(
  matrix: ImportanceMatrix | undefined,
  source: string,
  name: string,
  rowLength: number,
): Float32Array | undefined {
  const values = matrix?.get(name);
  if (!values) return undefined;
  if (values.length !== rowLength) {
    throw new ModelFileError(
      source,
      `the importance matrix has ${values.length} values for "${name}", whose rows have ${rowLength} weights (another model's matrix, or experts, which are not supported)`,
    );
  }
  return values;
}

/**
 * The importance matrix `layerlens.compress.importanceMatrix` names for the model at
 * `modelPath` (relative paths start at its folder); undefined when the setting is empty.
 */
export function importanceMatrixSetting(
  modelPath: string,
  settings: Partial<LayerLensSettings> | undefined,
): string | undefined {
  const value = settings?.['compress.importanceMatrix'];
  return value ? resolve(dirname(modelPath), value) : undefined;
}

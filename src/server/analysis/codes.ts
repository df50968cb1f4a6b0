/**
 * The raw grid of a quantized tensor: which integer codes it uses and how often (the
 * toggle beside its histogram of decoded values).
 */
import { MAX_IN_MEMORY_TENSOR_BYTES } from '../../shared/limits';
import { MAX_CODE_BINS, type TensorCodes } from '../../shared/model';
import { loadTensorData } from '../formats/onnxTensors';
import { codesOf } from './dequantize';
import type { TensorEntry } from '../formats/types';

/** Used ranges up to this many codes are counted in an array; wider ones in a set. */
const MAX_DENSE_CODE_RANGE = 1 << 16;

/** The codes of `entry`, a tensor whose values are decoded from stored codes. */
export function tensorCodes(entry: TensorEntry): TensorCodes {
  const { info, data } = entry;
  const decoded = data.kind === 'memory' ? data.decoded : undefined;
  if (!decoded) {
    throw new Error(`tensor "${info.name}" is not stored as quantized codes`);
  }
  if (decoded.codes.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new Error(
      `tensor "${info.name}" has ${decoded.codes.length} bytes of codes, more than the limit of ${MAX_IN_MEMORY_TENSOR_BYTES} for reading them whole`,
    );
  }
  const codes = codesOf(decoded.plan, loadTensorData(decoded.codes));
  let min = Infinity;
  let max = -Infinity;
  for (const code of codes) {
    if (code < min) min = code;
    if (code > max) max = code;
  }
  if (codes.length === 0) {
    min = 0;
    max = 0;
  }
  const range = max - min + 1;
  let levelsUsed: number;
  if (range <= MAX_DENSE_CODE_RANGE) {
    const seen = new Uint8Array(range);
    for (const code of codes) seen[code - min] = 1;
    levelsUsed = seen.reduce((sum, flag) => sum + flag, 0);
  } else {
    levelsUsed = new Set(codes).size;
  }
  const perCode = range <= MAX_CODE_BINS;
  const bins = perCode ? range : MAX_CODE_BINS;
  const counts = new Array<number>(bins).fill(0);
  const width = perCode ? 1 : range / MAX_CODE_BINS;
  for (const code of codes) counts[Math.min(bins - 1, Math.floor((code - min) / width))]!++;
  return {
    index: info.index,
    bits: decoded.codeBits,
    signed: decoded.signedCodes,
    min,
    max,
    levelsUsed: codes.length === 0 ? 0 : levelsUsed,
    levelsPossible: 2 ** decoded.codeBits,
    histogram: perCode ? { min: min - 0.5, max: max + 0.5, counts } : { min, max, counts },
  };
}

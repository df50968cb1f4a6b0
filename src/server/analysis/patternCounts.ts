/**
 * Counts of the bit patterns of 16-bit values (float16, bfloat16, int16, uint16). A
 * tensor of such values has at most 65536 distinct values, so one pass that counts each
 * pattern holds everything its statistics need: extremes, zeros, non-finite counts and
 * histogram exactly, moments in float64 over the distinct values (see stats.ts). Counting
 * is one increment per value, with no widening to float32.
 */
import { DTYPES } from '../../shared/dtypes';
import { decodeValues, type NumericDType } from './decode';
import { PATTERNS_16, statsKernel } from './wasmStats';

/** Whether `dtype`'s statistics come from pattern counts (16-bit types). */
export function countsPatterns(dtype: NumericDType): boolean {
  return DTYPES[dtype].bits === 16;
}

/** Counts patterns chunk by chunk; `finish` returns the PATTERNS_16 counts. */
export interface PatternCounter {
  add(bytes: Uint8Array, count: number): void;
  finish(): Float64Array;
  /** Gives the kernel's counters back without counting (after an error). */
  release(): void;
}

/**
 * A counter through the WebAssembly kernel's counters when they are free, else a plain
 * loop (same counts).
 */
export function patternCounter(): PatternCounter {
  const table = new Float64Array(PATTERNS_16);
  const lent = statsKernel()?.lendPatternCounters() ?? null;
  return {
    add(bytes, count) {
      if (lent) {
        lent.add(bytes, count);
        return;
      }
      if (bytes.byteLength < count * 2) {
        throw new RangeError(`cannot count ${count} 16-bit patterns in ${bytes.byteLength} bytes`);
      }
      for (let i = 0; i < count; i++) table[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!++;
    },
    finish() {
      lent?.finish(table);
      return table;
    },
    release() {
      lent?.finish(null);
    },
  };
}

const valueTables = new Map<NumericDType, Float64Array>();

/** The value of each of the 65536 patterns of a 16-bit `dtype` (NaN patterns are NaN). */
export function patternValues(dtype: NumericDType): Float64Array {
  let values = valueTables.get(dtype);
  if (!values) {
    const patterns = new Uint16Array(PATTERNS_16);
    for (let pattern = 0; pattern < PATTERNS_16; pattern++) patterns[pattern] = pattern;
    const bytes = new Uint8Array(patterns.buffer);
    // 16-bit floats in one call of the kernel's exact widening (a worker's first tensor
    // waits for this table), else the scalar decoder; copied, as the widened view is reused.
    const half = dtype === 'float16' || dtype === 'bfloat16' ? dtype : null;
    const kernel = half ? statsKernel() : null;
    values = new Float64Array(
      half && kernel
        ? kernel.widen(half, bytes, PATTERNS_16)
        : decodeValues(dtype, bytes, PATTERNS_16),
    );
    valueTables.set(dtype, values);
  }
  return values;
}

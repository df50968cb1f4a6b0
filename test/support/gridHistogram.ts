import type { Histogram } from '../../src/shared/model';

/**
 * The histogram GridHistogram must give for these finite values, by its definition and
 * nothing of its code: bins 2^e wide on multiples of 2^e, e the smallest exponent for
 * which [min, max] spans at most `bins` bins, from min's bin to max's; one value: ±0.5
 * around it with the count in the middle bin. Null for no values.
 */
export function gridHistogramReference(finite: readonly number[], bins = 256): Histogram | null {
  if (finite.length === 0) return null;
  const low = finite.reduce((a, b) => Math.min(a, b));
  const high = finite.reduce((a, b) => Math.max(a, b));
  if (low === high) {
    const counts = new Array<number>(bins).fill(0);
    counts[bins >> 1] = finite.length;
    return { min: low - 0.5, max: high + 0.5, counts };
  }
  // Below the finest grid that can hold the range (2^e ≥ (high − low) / bins at least).
  let exponent = Math.floor(Math.log2((high - low) / bins)) - 2;
  while (Math.floor(high / 2 ** exponent) - Math.floor(low / 2 ** exponent) >= bins) exponent++;
  const width = 2 ** exponent;
  const first = Math.floor(low / width);
  const used = Math.floor(high / width) - first + 1;
  const counts = new Array<number>(used).fill(0);
  for (const value of finite) counts[Math.floor(value / width) - first]!++;
  return { min: first * width, max: (first + used) * width, counts };
}

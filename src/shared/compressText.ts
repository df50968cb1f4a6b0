/** Compression settings in words, for the report view, messages and the CLI. */
import type { CompressionOptions } from './compress';

/** The method and its level in words: `int4, block 32`, `prune to 50% sparsity`. */
export function describeOptions(options: CompressionOptions): string {
  switch (options.method) {
    case 'prune':
      return `prune to ${Math.round((options.sparsity ?? 0.5) * 100)}% sparsity`;
    case 'nm':
      return `${options.n ?? 2}:${options.m ?? 4} semi-structured pruning`;
    case 'int8':
      return options.storeQuantized
        ? 'int8 per channel, stored as int8 + scales'
        : 'int8 per channel';
    case 'int4':
      return `int4, block ${options.blockSize ?? 32}${options.int4Format ? ` (${options.int4Format})` : ''}`;
    case 'lowrank':
      return options.rank !== undefined
        ? `low rank, rank ${options.rank}`
        : `low rank, ${Math.round((options.energy ?? 0.95) * 1000) / 10}% energy`;
    case 'fp16':
      return 'float16 weights';
    case 'bf16':
      return 'bfloat16 weights';
  }
}

/**
 * The levels a sensitivity sweep compresses each tensor at (each method module's
 * `sweepLevels`, compress/methods/), and which of them a tensor can take. `x` places a level on its method's curve: the sparsity for prune, 0.5 for 2:4, the
 * stored bits per weight for int8 and int4 (the int4 figure includes the float32 scale of
 * each block: 4 + 32/blockSize), and the kept energy for low-rank.
 */
import type { CompressionOptions } from '../../shared/compress';
import { checkMethodOptions } from '../../shared/compressMethods';
import type { SweepLevel } from '../../shared/sensitivity';
import { methodModule } from '../compress/methods';
import type { TensorTraits } from '../compress/methods/types';

export { DEFAULT_SWEEP } from '../compress/methods';
export { int4Level } from '../compress/methods/int4';
export { INT8_LEVEL } from '../compress/methods/int8';
export { lowRankLevel } from '../compress/methods/lowrank';
export { nmLevel } from '../compress/methods/nm';
export { pruneLevel } from '../compress/methods/prune';

/** Most levels one request may sweep. */
export const MAX_SWEEP_LEVELS = 64;

/** Refuse a level list that is empty, too long, has duplicate keys or options out of range. */
export function checkLevels(levels: readonly SweepLevel[]): void {
  if (levels.length === 0) throw new RangeError('a sweep needs at least one level');
  if (levels.length > MAX_SWEEP_LEVELS) {
    throw new RangeError(
      `a sweep may have at most ${MAX_SWEEP_LEVELS} levels, got ${levels.length}`,
    );
  }
  const keys = new Set<string>();
  for (const level of levels) {
    if (keys.has(level.key)) throw new RangeError(`the level key ${level.key} appears twice`);
    keys.add(level.key);
    if (level.method !== level.options.method) {
      throw new RangeError(
        `level ${level.key}: method ${level.method} ≠ options.method ${level.options.method}`,
      );
    }
    checkLevelOptions(level.key, level.options);
  }
}

function checkLevelOptions(key: string, options: CompressionOptions): void {
  try {
    checkMethodOptions(options);
  } catch (error) {
    throw new RangeError(`level ${key}: ${(error as Error).message}`);
  }
}

export type { TensorTraits };

/** Why `level` cannot be applied to a tensor with `traits`; undefined when it can. */
export function levelProblem(level: SweepLevel, traits: TensorTraits): string | undefined {
  return methodModule(level.method).sweepProblem(level, traits);
}

/**
 * The levels a sensitivity sweep compresses each tensor at, and which of them a tensor can
 * take. `x` places a level on its method's curve: the sparsity for prune, 0.5 for 2:4, the
 * stored bits per weight for int8 and int4 (the int4 figure includes the float32 scale of
 * each block: 4 + 32/blockSize), and the kept energy for low-rank.
 */
import type { CompressionOptions } from '../../shared/compress';
import type { SweepLevel } from '../../shared/sensitivity';
import type { MatrixLayout } from '../compress/kernels';
import { checkOptions } from '../compress/onnx';

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

export function pruneLevel(sparsity: number): SweepLevel {
  return {
    key: `prune:${sparsity}`,
    label: `prune ${percent(sparsity)}`,
    method: 'prune',
    options: { method: 'prune', sparsity },
    x: sparsity,
  };
}

export function nmLevel(n: number, m: number): SweepLevel {
  return {
    key: `nm:${n}:${m}`,
    label: `${n}:${m}`,
    method: 'nm',
    options: { method: 'nm', n, m },
    x: 1 - n / m,
  };
}

export const INT8_LEVEL: SweepLevel = {
  key: 'int8',
  label: 'int8',
  method: 'int8',
  options: { method: 'int8' },
  x: 8,
};

export function int4Level(blockSize: number): SweepLevel {
  return {
    key: `int4:${blockSize}`,
    label: `int4 b${blockSize}`,
    method: 'int4',
    options: { method: 'int4', blockSize },
    x: 4 + 32 / blockSize,
  };
}

export function lowRankLevel(energy: number): SweepLevel {
  return {
    key: `lowrank:e${energy}`,
    label: `low-rank ${percent(energy)}`,
    method: 'lowrank',
    options: { method: 'lowrank', energy },
    x: energy,
  };
}

/** The sweep used when a request names no levels. */
export const DEFAULT_SWEEP: readonly SweepLevel[] = [
  pruneLevel(0.25),
  pruneLevel(0.5),
  pruneLevel(0.75),
  pruneLevel(0.9),
  nmLevel(2, 4),
  INT8_LEVEL,
  int4Level(32),
  int4Level(128),
  lowRankLevel(0.99),
  lowRankLevel(0.95),
  lowRankLevel(0.9),
];

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
    if (level.method === 'fp16' || level.method === 'bf16') continue;
    checkLevelOptions(level.key, level.options);
  }
}

function checkLevelOptions(key: string, options: CompressionOptions): void {
  try {
    checkOptions(options);
  } catch (error) {
    throw new RangeError(`level ${key}: ${(error as Error).message}`);
  }
}

/** What the sweep knows about a tensor's shape and use, for deciding which levels apply. */
export interface TensorTraits {
  /** The tensor seen as a matrix with its input axis; absent when there is none (with why). */
  readonly layout?: MatrixLayout;
  readonly layoutProblem?: string;
  /** Why low-rank does not apply (beyond having a layout); absent when it does. */
  readonly lowRankProblem?: string;
}

/** Why `level` cannot be applied to a tensor with `traits`; undefined when it can. */
export function levelProblem(level: SweepLevel, traits: TensorTraits): string | undefined {
  switch (level.method) {
    case 'prune':
    case 'fp16':
    case 'bf16':
      return undefined;
    case 'nm': {
      if (!traits.layout) return `${level.label} needs an input axis: ${traits.layoutProblem}`;
      const m = level.options.m ?? 4;
      const n = level.options.n ?? 2;
      const inputs = traits.layout.inputAxis === 0 ? traits.layout.rows : traits.layout.cols;
      if (inputs <= n)
        return `${level.label}: rows of ${inputs} inputs are too short for groups of ${m}`;
      return undefined;
    }
    case 'int8':
    case 'int4':
      if (!traits.layout) return `${level.label} needs an input axis: ${traits.layoutProblem}`;
      return undefined;
    case 'lowrank':
      if (!traits.layout) return `low-rank needs a matrix: ${traits.layoutProblem}`;
      return traits.lowRankProblem;
  }
}

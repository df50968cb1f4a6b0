/**
 * The table of compression methods, one module each (as formats/registry.ts is for file
 * formats). Everything that needs to know a method — the compressors of each format, the
 * size predictor, the sensitivity sweep and the planner — asks this table.
 */
import type { CompressionMethod } from '../../../shared/compress';
import type { FileSizeEffect, StorageChoice } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { bf16 } from './bf16';
import { fp16 } from './fp16';
import { ggml } from './ggml';
import { int4 } from './int4';
import { int8 } from './int8';
import { lowrank } from './lowrank';
import { nm } from './nm';
import { prune } from './prune';
import type { CompressionMethodModule, MethodFormats } from './types';

export const METHODS: { readonly [M in CompressionMethod]: CompressionMethodModule } = {
  prune,
  nm,
  int8,
  int4,
  lowrank,
  fp16,
  bf16,
  ggml,
};

/** The table's modules in the order they are offered. */
export const METHOD_LIST: readonly CompressionMethodModule[] = Object.values(METHODS);

export function methodModule(method: CompressionMethod): CompressionMethodModule {
  const module = METHODS[method];
  if (!module) throw new RangeError(`unknown compression method ${JSON.stringify(method)}`);
  return module;
}

/** The implementation of `method` for `format`; a RangeError when the method cannot write it. */
export function methodFor<F extends keyof MethodFormats>(
  method: CompressionMethod,
  format: F,
): NonNullable<MethodFormats[F]> {
  const implementation = methodModule(method).formats[format];
  if (!implementation) throw new RangeError(`${method} cannot write ${format} files`);
  return implementation as NonNullable<MethodFormats[F]>;
}

/** The methods that can write `format` (a key of MethodFormats), in table order. */
export function methodsFor(format: keyof MethodFormats): CompressionMethod[] {
  return METHOD_LIST.filter((module) => format in module.formats).map((module) => module.id);
}

/** The ways `format` stores each method's output, for the methods that offer a choice. */
export function storageFor(format: keyof MethodFormats): {
  [M in CompressionMethod]?: readonly StorageChoice[];
} {
  const storage: { [M in CompressionMethod]?: readonly StorageChoice[] } = {};
  for (const module of METHOD_LIST) {
    const choices = module.formats[format]?.storage;
    if (choices) storage[module.id] = choices;
  }
  return storage;
}

/** What each method's output does to a `format` file's size (its default way of storing it). */
export function fileSizeFor(format: keyof MethodFormats): {
  [M in CompressionMethod]?: FileSizeEffect;
} {
  const sizes: { [M in CompressionMethod]?: FileSizeEffect } = {};
  for (const module of METHOD_LIST) {
    const implementation = module.formats[format];
    if (implementation) sizes[module.id] = implementation.fileSize;
  }
  return sizes;
}

/** The default sensitivity sweep: every method's levels, in table order. */
export const DEFAULT_SWEEP: readonly SweepLevel[] = METHOD_LIST.flatMap(
  (module) => module.sweepLevels,
);

/** The levels a plan chooses from: those that make some file smaller, in table order. */
export const PLAN_LEVELS: readonly SweepLevel[] = METHOD_LIST.flatMap(
  (module) => module.planLevels,
);

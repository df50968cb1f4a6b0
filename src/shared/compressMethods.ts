/**
 * What every surface (server, CLI, quick picks, recipe check, webview) knows of each
 * compression method without its implementation: its label, a one-line description, the
 * defaults of its options, and the one validation of those options. The implementations
 * (per format: apply, predicted bytes, feasibility) are the server's method modules
 * (src/server/compress/methods/), one per method, collected in one table there.
 */
import type { CompressionMethod, CompressionOptions } from './compress';
import { formatRatio } from './format';
import { MAX_NM_GROUP } from './heatmap';

/**
 * The block sizes of int4, one rule everywhere: a power of two from 16 to 256 inputs per
 * float32 scale. These are the sizes com.microsoft MatMulNBits accepts, so every int4 level
 * can be written to ONNX either way; safetensors (dense round trip) takes the same set so
 * that a plan or a level means the same on both formats.
 */
export const INT4_BLOCK_SIZES = [16, 32, 64, 128, 256] as const;

/** How int4 weights of ONNX MatMuls are written (see CompressionOptions.int4Format). */
export const INT4_FORMATS = ['matmulnbits', 'dequantizelinear'] as const;

/**
 * The ggml block types LayerLens quantizes to (its own implementations of ggml's reference
 * quantizers, src/server/compress/ggml/), most bits per weight first.
 */
export const GGML_QUANT_TYPES = [
  'Q8_0',
  'Q6_K',
  'Q5_K',
  'Q5_0',
  'Q4_K',
  'Q4_0',
  'IQ4_NL',
  'Q3_K',
  'Q2_K',
] as const;
export type GgmlQuantType = (typeof GGML_QUANT_TYPES)[number];

/** Defaults of the options a request leaves out. */
export const METHOD_DEFAULTS = {
  sparsity: 0.5,
  n: 2,
  m: 4,
  blockSize: 32,
  int4Format: 'matmulnbits',
  energy: 0.9,
} as const;

/**
 * One way a format stores a method's output (int8 on safetensors: round-tripped values, or
 * I8 codes with scales; int4 on ONNX: MatMulNBits or DequantizeLinear): the quick picks
 * offer each, with the options it adds.
 */
export interface StorageChoice {
  /** Short name in a menu; empty where the format has one way only and the level says enough. */
  readonly label: string;
  readonly description?: string;
  readonly options: Partial<CompressionOptions>;
  /** What this way does to the file's size, where it differs from the method's on the format. */
  readonly fileSize?: FileSizeEffect;
}

/**
 * What writing a method's output does to a file's size, as the method's implementation
 * for a format declares it (src/server/compress/methods/); the quick picks say it in words.
 */
export type FileSizeEffect =
  /** The file keeps its size; `why`, e.g. "zeros stored densely". */
  | { readonly kind: 'same'; readonly why: string }
  /** Each weight is stored in `bits`, plus `extra` (e.g. "a float32 scale per block"). */
  | { readonly kind: 'bits'; readonly bits: number; readonly extra?: string }
  /** Smaller only `when` the level makes it so. */
  | { readonly kind: 'depends'; readonly when: string };

/** The weights' type when the model's is not known: what the factors are stated against. */
const DEFAULT_SOURCE_BITS = 32;

/**
 * A file-size effect in words: "same size: zeros stored densely", "smaller: ~4.0× (8 bits
 * a weight, plus a scale per channel)", "smaller when …". `sourceBits` is the bits of the
 * model's weights (float32 when not given).
 */
export function describeFileSize(effect: FileSizeEffect, sourceBits?: number): string {
  switch (effect.kind) {
    case 'same':
      return `same size: ${effect.why}`;
    case 'depends':
      return `smaller ${effect.when}`;
    case 'bits': {
      const from = sourceBits ?? DEFAULT_SOURCE_BITS;
      const stored = `${effect.bits} bits a weight${effect.extra ? `, plus ${effect.extra}` : ''}`;
      const ratio = formatRatio(from, effect.bits);
      if (!ratio.endsWith('smaller')) return `no smaller: the weights are ${from}-bit already`;
      const against = sourceBits === undefined ? ' from float32' : '';
      return `smaller: ~${ratio.replace(/ smaller$/, '')}${against} (${stored})`;
    }
  }
}

export interface MethodInfo {
  readonly id: CompressionMethod;
  /** The method as a menu shows it. */
  readonly label: string;
  /** One line saying what it does. */
  readonly detail: string;
  /** The options a request that names only the method gets. */
  readonly defaults: CompressionOptions;
}

export const METHOD_INFO: { readonly [M in CompressionMethod]: MethodInfo } = {
  prune: {
    id: 'prune',
    label: 'Prune (magnitude)',
    detail: 'Set the smallest weights to zero, to a target sparsity',
    defaults: { method: 'prune', sparsity: METHOD_DEFAULTS.sparsity },
  },
  nm: {
    id: 'nm',
    label: 'N:M semi-structured (2:4)',
    detail: 'Keep N of every M consecutive weights along the input dimension',
    defaults: { method: 'nm', n: METHOD_DEFAULTS.n, m: METHOD_DEFAULTS.m },
  },
  int8: {
    id: 'int8',
    label: 'Int8 per channel',
    detail: 'Symmetric int8 weights, one scale per output channel',
    defaults: { method: 'int8' },
  },
  int4: {
    id: 'int4',
    label: 'Int4 block-wise',
    detail: 'Symmetric int4 weights, one scale per block of 32, 64 or 128 inputs',
    defaults: {
      method: 'int4',
      blockSize: METHOD_DEFAULTS.blockSize,
      int4Format: METHOD_DEFAULTS.int4Format,
    },
  },
  lowrank: {
    id: 'lowrank',
    label: 'Low rank (SVD)',
    detail: 'Truncated SVD to a rank or an energy target',
    defaults: { method: 'lowrank', energy: METHOD_DEFAULTS.energy },
  },
  fp16: {
    id: 'fp16',
    label: 'Float16',
    detail: 'Store floating-point weights as float16',
    defaults: { method: 'fp16' },
  },
  bf16: {
    id: 'bf16',
    label: 'BFloat16',
    detail: 'Store floating-point weights as bfloat16',
    defaults: { method: 'bf16' },
  },
  ggml: {
    id: 'ggml',
    label: 'llama.cpp block type',
    detail: 'Quantize to a ggml block type (Q8_0, Q6_K … Q2_K, IQ4_NL) as llama.cpp does',
    defaults: { method: 'ggml', ggmlType: 'Q8_0' },
  },
};

const OPTION_NUMBERS = ['sparsity', 'n', 'm', 'blockSize', 'rank', 'energy'] as const;

/**
 * What is wrong with `options` (unknown method, a value of the wrong type or outside its
 * range), in words, without the method's name; undefined when they can be used. The one
 * check behind the server, the CLI, the quick picks' custom values and the recipe check.
 */
export function optionsProblem(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    return 'options is not an object';
  const value = options as Record<string, unknown>;
  if (!Object.hasOwn(METHOD_INFO, value.method as string))
    return `unknown method ${JSON.stringify(value.method)}`;
  for (const key of OPTION_NUMBERS) {
    if (
      value[key] !== undefined &&
      (typeof value[key] !== 'number' || !Number.isFinite(value[key]))
    )
      return `${key} is not a number`;
  }
  const { sparsity, n, m, blockSize, rank, energy } = value as unknown as CompressionOptions;
  if (sparsity !== undefined && !(sparsity >= 0 && sparsity < 1))
    return `sparsity must be in [0, 1), got ${sparsity}`;
  if (m !== undefined && (!Number.isInteger(m) || m < 1 || m > MAX_NM_GROUP))
    return `m must be an integer in [1, ${MAX_NM_GROUP}], got ${m}`;
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > (m ?? METHOD_DEFAULTS.m)))
    return `n must be an integer in [0, m], got ${n}`;
  if (blockSize !== undefined && !(INT4_BLOCK_SIZES as readonly number[]).includes(blockSize))
    return `block size must be ${INT4_BLOCK_SIZES.slice(0, -1).join(', ')} or ${INT4_BLOCK_SIZES.at(-1)}, got ${blockSize}`;
  if (rank !== undefined && (!Number.isInteger(rank) || rank < 1))
    return `rank must be a positive integer, got ${rank}`;
  if (energy !== undefined && !(energy > 0 && energy <= 1))
    return `energy must be in (0, 1], got ${energy}`;
  if (rank !== undefined && energy !== undefined) return 'give a rank or an energy, not both';
  if (
    value.int4Format !== undefined &&
    !(INT4_FORMATS as readonly unknown[]).includes(value.int4Format)
  )
    return `unknown int4Format ${JSON.stringify(value.int4Format)}`;
  if (
    value.ggmlType !== undefined &&
    !(GGML_QUANT_TYPES as readonly unknown[]).includes(value.ggmlType)
  )
    return `ggmlType must be one of ${GGML_QUANT_TYPES.join(', ')}, got ${JSON.stringify(value.ggmlType)}`;
  if (value.storeQuantized !== undefined && typeof value.storeQuantized !== 'boolean')
    return 'storeQuantized is not a boolean';
  if (
    value.imatrixPath !== undefined &&
    (typeof value.imatrixPath !== 'string' || value.imatrixPath === '')
  )
    return 'imatrixPath is not a file path';
  if (value.imatrixPath !== undefined && value.method !== 'ggml')
    return 'imatrixPath applies to the ggml method';
  return undefined;
}

/** Refuse unusable options with a RangeError "<method>: <problem>". */
export function checkMethodOptions(options: CompressionOptions): void {
  const problem = optionsProblem(options);
  if (problem) throw new RangeError(`${String(options.method)}: ${problem}`);
}

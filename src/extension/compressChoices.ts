/**
 * The choices the Compress… flow offers: which methods apply to a format, and the levels
 * of each method, as quick-pick items. Free of the VS Code API so that tests check it.
 */
import type { CompressionMethod, CompressionOptions } from '../shared/compress';
import type { ModelFormat } from '../shared/model';

export interface MethodChoice {
  readonly method: CompressionMethod;
  readonly label: string;
  readonly detail: string;
}

export interface LevelChoice {
  readonly label: string;
  readonly description?: string;
  /** The options this level stands for; undefined: ask for a custom value. */
  readonly options?: CompressionOptions;
  /** For a custom value: what to ask and how to read the answer. */
  readonly custom?: CustomLevel;
}

export interface CustomLevel {
  readonly prompt: string;
  readonly placeholder: string;
  /** The options, or an error message for the input box. */
  parse(text: string): CompressionOptions | string;
}

const ALL_METHODS: readonly (MethodChoice & { readonly formats: readonly ModelFormat[] })[] = [
  {
    method: 'prune',
    label: 'Prune (magnitude)',
    detail: 'Set the smallest weights to zero, to a target sparsity',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'nm',
    label: 'N:M semi-structured (2:4)',
    detail: 'Keep N of every M consecutive weights along the input dimension',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'int8',
    label: 'Int8 per channel',
    detail: 'Symmetric int8 weights, one scale per output channel',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'int4',
    label: 'Int4 block-wise',
    detail: 'Symmetric int4 weights, one scale per block of 32, 64 or 128 inputs',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'lowrank',
    label: 'Low rank (SVD)',
    detail: 'Truncated SVD to a rank or an energy target',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'fp16',
    label: 'Float16',
    detail: 'Store floating-point weights as float16',
    formats: ['onnx', 'safetensors'],
  },
  {
    method: 'bf16',
    label: 'BFloat16',
    detail: 'Store floating-point weights as bfloat16',
    formats: ['onnx', 'safetensors'],
  },
];

/** The methods that apply to a format, in the order they are offered. */
export function methodChoices(format: ModelFormat): MethodChoice[] {
  return ALL_METHODS.filter((choice) => choice.formats.includes(format)).map(
    ({ method, label, detail }) => ({ method, label, detail }),
  );
}

function parseNumber(text: string): number {
  const trimmed = text.trim().replace(/%$/, '');
  return trimmed === '' ? NaN : Number(trimmed);
}

const customSparsity: CustomLevel = {
  prompt: 'Target sparsity, in percent (0 to 99.9)',
  placeholder: '60',
  parse(text) {
    const percent = parseNumber(text);
    if (!(percent >= 0 && percent < 100)) return 'Enter a percentage from 0 to 99.9';
    return { method: 'prune', sparsity: percent / 100 };
  },
};

const customNM: CustomLevel = {
  prompt: 'N:M — keep N of every M weights (M at most 64)',
  placeholder: '2:4',
  parse(text) {
    const match = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text);
    if (!match) return 'Enter N:M, for example 2:4';
    const n = Number(match[1]);
    const m = Number(match[2]);
    if (m < 1 || m > 64 || n > m) return 'N must be at most M, and M from 1 to 64';
    return { method: 'nm', n, m };
  },
};

const customRank: CustomLevel = {
  prompt: 'Rank to keep (a positive integer), or an energy fraction such as 0.97',
  placeholder: '16',
  parse(text) {
    const value = parseNumber(text);
    if (Number.isInteger(value) && value >= 1) return { method: 'lowrank', rank: value };
    if (value > 0 && value <= 1) return { method: 'lowrank', energy: value };
    return 'Enter a rank (1, 2, …) or an energy fraction in (0, 1]';
  },
};

/** The levels offered for a method on a format; one level means there is nothing to ask. */
export function levelChoices(method: CompressionMethod, format: ModelFormat): LevelChoice[] {
  switch (method) {
    case 'prune':
      return [
        ...[0.3, 0.5, 0.7, 0.9].map((sparsity) => ({
          label: `${Math.round(sparsity * 100)}% sparsity`,
          options: { method, sparsity } as const,
        })),
        { label: 'Other sparsity…', custom: customSparsity },
      ];
    case 'nm':
      return [
        {
          label: '2:4',
          description: 'accelerated by sparse tensor cores',
          options: { method, n: 2, m: 4 },
        },
        { label: '1:4', options: { method, n: 1, m: 4 } },
        { label: '4:8', options: { method, n: 4, m: 8 } },
        { label: 'Other N:M…', custom: customNM },
      ];
    case 'int8':
      return format === 'safetensors'
        ? [
            {
              label: 'Fake-quant',
              description: 'int8 round trip, stored back in the original dtype',
              options: { method },
            },
            {
              label: 'Int8 + scales',
              description: '<name> as I8 and <name>.scale as F32, per output channel',
              options: { method, storeQuantized: true },
            },
          ]
        : [{ label: 'Int8 per channel (DequantizeLinear)', options: { method } }];
    case 'int4': {
      const blocks = [32, 64, 128];
      if (format === 'safetensors') {
        return blocks.map((blockSize) => ({
          label: `Block ${blockSize}`,
          description: 'int4 round trip, stored back in the original dtype',
          options: { method, blockSize },
        }));
      }
      return blocks.flatMap((blockSize) => [
        {
          label: `Block ${blockSize}, MatMulNBits`,
          description: 'com.microsoft operator for MatMul weights',
          options: { method, blockSize, int4Format: 'matmulnbits' } as const,
        },
        {
          label: `Block ${blockSize}, DequantizeLinear`,
          description: 'opset 21 INT4 with block_size',
          options: { method, blockSize, int4Format: 'dequantizelinear' } as const,
        },
      ]);
    }
    case 'lowrank':
      return [
        ...[0.99, 0.95, 0.9].map((energy) => ({
          label: `${Math.round(energy * 100)}% energy`,
          description: 'smallest rank keeping this share of Σσ²',
          options: { method, energy } as const,
        })),
        ...[8, 16, 32, 64].map((rank) => ({
          label: `Rank ${rank}`,
          options: { method, rank } as const,
        })),
        { label: 'Other rank or energy…', custom: customRank },
      ];
    case 'fp16':
    case 'bf16':
      return [{ label: method === 'fp16' ? 'Float16' : 'BFloat16', options: { method } }];
  }
}

/** The custom editor's view type (as `MODEL_EDITOR_VIEW_TYPE`, without importing the VS Code API). */
const MODEL_EDITOR_VIEW_TYPE_ID = 'layerlens.modelEditor';

/** What VS Code passes from a `webview/context` menu: the merged `data-vscode-context`. */
export interface RowContext {
  readonly webview: string;
  readonly webviewSection?: string;
  readonly tensorIndex?: number;
  readonly tensorIndices?: readonly number[];
}

export function isRowContext(value: unknown): value is RowContext {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { webview?: unknown }).webview === MODEL_EDITOR_VIEW_TYPE_ID
  );
}

export function isIndexList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => Number.isInteger(item) && item >= 0);
}

/**
 * The tensors of a row context: the selection when the clicked row is part of it (the
 * table selects a row right-clicked outside the selection), otherwise the row alone.
 */
export function tensorsOfRowContext(context: RowContext): number[] {
  const { tensorIndex, tensorIndices } = context;
  if (tensorIndex === undefined) return isIndexList(tensorIndices) ? [...tensorIndices] : [];
  if (isIndexList(tensorIndices) && tensorIndices.includes(tensorIndex)) return [...tensorIndices];
  return [tensorIndex];
}

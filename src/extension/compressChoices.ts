/**
 * The choices the Compress… flow offers: which methods apply to a format, and the levels
 * of each method, as quick-pick items. Free of the VS Code API so that tests check it.
 */
import {
  COMPRESSION_METHODS,
  type CompressionMethod,
  type CompressionOptions,
} from '../shared/compress';
import {
  describeFileSize,
  GGML_QUANT_TYPES,
  INT4_BLOCK_SIZES,
  METHOD_INFO,
  optionsProblem,
  type StorageChoice,
} from '../shared/compressMethods';
import { DTYPES, type DType } from '../shared/dtypes';
import { MAX_NM_GROUP } from '../shared/heatmap';
import type { ModelCapabilities, ModelSummary } from '../shared/model';
import { isModelEditorViewType } from './editorViewTypes';

export interface MethodChoice {
  readonly method: CompressionMethod;
  readonly label: string;
  readonly detail: string;
  /** What it does to the file's size on this format, from the format's capabilities. */
  readonly description?: string;
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

/**
 * Bits of the model's weights: the floating-point type that holds most of its bytes
 * (undefined when it has none), what the pickers' size factors are stated against.
 */
export function weightBits(summary: Pick<ModelSummary, 'bytesByDType'>): number | undefined {
  let best: { bits: number; bytes: number } | undefined;
  for (const [dtype, bytes] of Object.entries(summary.bytesByDType)) {
    const info = DTYPES[dtype as DType];
    if (!info?.isFloat || !bytes || (best && best.bytes >= bytes)) continue;
    best = { bits: info.bits, bytes };
  }
  return best?.bits;
}

/**
 * What `method` does to the file's size on a format with `capabilities`, in words; each
 * storage way's where they differ ("Fake-quant: same size: …; Int8 + scales: smaller: …").
 * Undefined when the capabilities do not say.
 */
export function fileSizeText(
  method: CompressionMethod,
  capabilities: ModelCapabilities | undefined,
  sourceBits?: number,
  way?: StorageChoice,
): string | undefined {
  const base = capabilities?.fileSize?.[method];
  if (!base) return undefined;
  if (way) return describeFileSize(way.fileSize ?? base, sourceBits);
  const ways = capabilities?.storage?.[method] ?? [];
  const texts = ways.map((choice) => describeFileSize(choice.fileSize ?? base, sourceBits));
  if (ways.length < 2 || new Set(texts).size < 2) return describeFileSize(base, sourceBits);
  return ways.map((choice, i) => `${choice.label}: ${texts[i]}`).join('; ');
}

/**
 * The methods offered for a model, in table order: those its summary's capabilities say
 * can write its format (every method when the server sent no capabilities), each with
 * what it does to the file's size (`sourceBits`: the weights' bits, see weightBits).
 */
export function methodChoices(
  offered: readonly CompressionMethod[] = COMPRESSION_METHODS,
  capabilities?: ModelCapabilities,
  sourceBits?: number,
): MethodChoice[] {
  return COMPRESSION_METHODS.filter((method) => offered.includes(method)).map((method) => {
    const { label, detail } = METHOD_INFO[method];
    const description = fileSizeText(method, capabilities, sourceBits);
    return { method, label, detail, ...(description ? { description } : {}) };
  });
}

/** A storage way's description and its size effect, for a level of that way. */
function wayDescription(
  method: CompressionMethod,
  capabilities: ModelCapabilities | undefined,
  sourceBits: number | undefined,
  way: StorageChoice,
): { description?: string } {
  const size = capabilities?.storage?.[method]
    ? fileSizeText(method, capabilities, sourceBits, way)
    : undefined;
  const description = [way.description, size].filter(Boolean).join(' — ');
  return description ? { description } : {};
}

/** `options` when the shared option check takes them, else what is wrong (for the input box). */
function checked(options: CompressionOptions, hint: string): CompressionOptions | string {
  const problem = optionsProblem(options);
  return problem ? `${hint} (${problem})` : options;
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
    if (Number.isNaN(percent)) return 'Enter a percentage from 0 to 99.9';
    return checked(
      { method: 'prune', sparsity: percent / 100 },
      'Enter a percentage from 0 to 99.9',
    );
  },
};

const customNM: CustomLevel = {
  prompt: `N:M — keep N of every M weights (M at most ${MAX_NM_GROUP})`,
  placeholder: '2:4',
  parse(text) {
    const match = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text);
    if (!match) return 'Enter N:M, for example 2:4';
    const n = Number(match[1]);
    const m = Number(match[2]);
    return checked({ method: 'nm', n, m }, `N must be at most M, and M from 1 to ${MAX_NM_GROUP}`);
  },
};

const customRank: CustomLevel = {
  prompt: 'Rank to keep (a positive integer), or an energy fraction such as 0.97',
  placeholder: '16',
  parse(text) {
    const value = parseNumber(text);
    const hint = 'Enter a rank (1, 2, …) or an energy fraction in (0, 1]';
    if (Number.isNaN(value)) return hint;
    return checked(
      Number.isInteger(value) && value >= 1
        ? { method: 'lowrank', rank: value }
        : { method: 'lowrank', energy: value },
      hint,
    );
  },
};

/**
 * The levels offered for a method on a model whose format has `capabilities`; one level
 * means there is nothing to ask. Where the format stores the method's output in several
 * ways (capabilities.storage), each level is offered in each way.
 */
export function levelChoices(
  method: CompressionMethod,
  capabilities: ModelCapabilities | undefined,
  sourceBits?: number,
): LevelChoice[] {
  const ways: readonly StorageChoice[] = capabilities?.storage?.[method] ?? [
    { label: '', options: {} },
  ];
  // Where the method has one way to store, every level does the same to the size.
  const size = fileSizeText(method, capabilities, sourceBits);
  const sized = size ? { description: size } : {};
  switch (method) {
    case 'prune':
      return [
        ...[0.3, 0.5, 0.7, 0.9].map((sparsity) => ({
          label: `${Math.round(sparsity * 100)}% sparsity`,
          ...sized,
          options: { method, sparsity } as const,
        })),
        { label: 'Other sparsity…', custom: customSparsity },
      ];
    case 'nm':
      return [
        {
          label: '2:4',
          description: ['the pattern sparse tensor cores accelerate', size]
            .filter(Boolean)
            .join(' — '),
          options: { method, n: 2, m: 4 },
        },
        { label: '1:4', ...sized, options: { method, n: 1, m: 4 } },
        { label: '4:8', ...sized, options: { method, n: 4, m: 8 } },
        { label: 'Other N:M…', custom: customNM },
      ];
    case 'int8':
      return ways.map((way) => ({
        label: way.label || METHOD_INFO.int8.label,
        ...wayDescription(method, capabilities, sourceBits, way),
        options: { method, ...way.options },
      }));
    case 'int4': {
      // The quick picks offer the common sizes; the rule (INT4_BLOCK_SIZES) allows 16…256.
      const blocks = INT4_BLOCK_SIZES.filter((size) => size >= 32 && size <= 128);
      return blocks.flatMap((blockSize) =>
        ways.map((way) => ({
          label: way.label ? `Block ${blockSize}, ${way.label}` : `Block ${blockSize}`,
          ...wayDescription(method, capabilities, sourceBits, way),
          options: { method, blockSize, ...way.options },
        })),
      );
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
    case 'ggml':
      return GGML_QUANT_TYPES.map((ggmlType) => ({
        label: ggmlType,
        options: { method, ggmlType },
      }));
  }
}

/** What VS Code passes from a `webview/context` menu: the merged `data-vscode-context`. */
export interface RowContext {
  readonly webview: string;
  readonly webviewSection?: string;
  readonly tensorIndex?: number;
  readonly tensorIndices?: readonly number[];
  /** The right-clicked row's tensor (absent on the graph, whose nodes hold several). */
  readonly tensorName?: string;
}

export function isRowContext(value: unknown): value is RowContext {
  return (
    typeof value === 'object' &&
    value !== null &&
    isModelEditorViewType((value as { webview?: unknown }).webview)
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

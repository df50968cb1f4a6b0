/**
 * The ggml tensor types a GGUF file may name: their numeric ids, how many weights one
 * block holds and how many bytes it takes (from the ggml/GGUF specification), and whether
 * LayerLens decodes them. A leaf module: the reader, the decoders and the jobs share it.
 */
import type { DType } from '../../../shared/dtypes';

export interface GgmlType {
  /** The id stored in a tensor info. */
  readonly id: number;
  /** The name users know (`Q4_K`, `IQ4_XS`). */
  readonly name: string;
  /** Weights per block (1 for plain element types). */
  readonly blockElements: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /**
   * Plain element types: the DType whose little-endian bytes they are (read like any other
   * tensor). Absent for block-quantized types.
   */
  readonly plain?: DType;
  /** Block types LayerLens dequantizes to float32 (see analysis/ggmlDequant.ts). */
  readonly decoded?: boolean;
}

const QK = 32;
const QK_K = 256;

const TYPES: readonly GgmlType[] = [
  { id: 0, name: 'F32', blockElements: 1, blockBytes: 4, plain: 'float32' },
  { id: 1, name: 'F16', blockElements: 1, blockBytes: 2, plain: 'float16' },
  { id: 2, name: 'Q4_0', blockElements: QK, blockBytes: 2 + 16, decoded: true },
  { id: 3, name: 'Q4_1', blockElements: QK, blockBytes: 2 + 2 + 16, decoded: true },
  { id: 6, name: 'Q5_0', blockElements: QK, blockBytes: 2 + 4 + 16, decoded: true },
  { id: 7, name: 'Q5_1', blockElements: QK, blockBytes: 2 + 2 + 4 + 16, decoded: true },
  { id: 8, name: 'Q8_0', blockElements: QK, blockBytes: 2 + 32, decoded: true },
  { id: 9, name: 'Q8_1', blockElements: QK, blockBytes: 4 + 4 + 32 },
  { id: 10, name: 'Q2_K', blockElements: QK_K, blockBytes: 2 + 2 + 16 + 64, decoded: true },
  { id: 11, name: 'Q3_K', blockElements: QK_K, blockBytes: 2 + 64 + 32 + 12, decoded: true },
  { id: 12, name: 'Q4_K', blockElements: QK_K, blockBytes: 2 + 2 + 128 + 12, decoded: true },
  { id: 13, name: 'Q5_K', blockElements: QK_K, blockBytes: 2 + 2 + 128 + 32 + 12, decoded: true },
  { id: 14, name: 'Q6_K', blockElements: QK_K, blockBytes: 2 + 128 + 64 + 16, decoded: true },
  { id: 15, name: 'Q8_K', blockElements: QK_K, blockBytes: 4 + 256 + 32 },
  { id: 16, name: 'IQ2_XXS', blockElements: QK_K, blockBytes: 2 + 64 },
  { id: 17, name: 'IQ2_XS', blockElements: QK_K, blockBytes: 2 + 64 + 8 },
  { id: 18, name: 'IQ3_XXS', blockElements: QK_K, blockBytes: 2 + 64 + 32 },
  { id: 19, name: 'IQ1_S', blockElements: QK_K, blockBytes: 2 + 32 + 16 },
  { id: 20, name: 'IQ4_NL', blockElements: QK, blockBytes: 2 + 16, decoded: true },
  { id: 21, name: 'IQ3_S', blockElements: QK_K, blockBytes: 2 + 64 + 32 + 8 + 4 },
  { id: 22, name: 'IQ2_S', blockElements: QK_K, blockBytes: 2 + 64 + 16 },
  { id: 23, name: 'IQ4_XS', blockElements: QK_K, blockBytes: 2 + 2 + 128 + 4, decoded: true },
  { id: 24, name: 'I8', blockElements: 1, blockBytes: 1, plain: 'int8' },
  { id: 25, name: 'I16', blockElements: 1, blockBytes: 2, plain: 'int16' },
  { id: 26, name: 'I32', blockElements: 1, blockBytes: 4, plain: 'int32' },
  { id: 27, name: 'I64', blockElements: 1, blockBytes: 8, plain: 'int64' },
  { id: 28, name: 'F64', blockElements: 1, blockBytes: 8, plain: 'float64' },
  { id: 29, name: 'IQ1_M', blockElements: QK_K, blockBytes: 32 + 16 + 8 },
  { id: 30, name: 'BF16', blockElements: 1, blockBytes: 2, plain: 'bfloat16' },
  { id: 34, name: 'TQ1_0', blockElements: QK_K, blockBytes: 2 + 4 + 48 },
  { id: 35, name: 'TQ2_0', blockElements: QK_K, blockBytes: 2 + 64 },
  { id: 39, name: 'MXFP4', blockElements: QK, blockBytes: 1 + 16, decoded: true },
  { id: 40, name: 'NVFP4', blockElements: 64, blockBytes: 4 + 32 },
  { id: 41, name: 'Q1_0', blockElements: 128, blockBytes: 2 + 16 },
  { id: 42, name: 'Q2_0', blockElements: 64, blockBytes: 2 + 16 },
];

const BY_ID = new Map(TYPES.map((type) => [type.id, type]));
const BY_NAME = new Map(TYPES.map((type) => [type.name, type]));

/** The type with this id; undefined for ids the specification does not (or no longer) define. */
export function ggmlTypeById(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

/** The type of this name; a RangeError for names outside the table. */
export function ggmlType(name: string): GgmlType {
  const type = BY_NAME.get(name);
  if (!type) throw new RangeError(`no ggml type is named ${name}`);
  return type;
}

/** Bytes that `elements` weights of `type` take (a whole number of blocks). */
export function ggmlByteLength(type: GgmlType, elements: number): number {
  return (elements / type.blockElements) * type.blockBytes;
}

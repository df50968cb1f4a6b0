/**
 * LayerLens's own implementations of ggml's reference quantizers (ggml-quants.c's
 * quantize_row_*_ref, learned from the specification and public code): float32 weights →
 * the bytes of a ggml block type. Block sizes and bytes come from the one type table,
 * formats/gguf/ggmlTypes.ts; analysis/ggmlDequant.ts reads the blocks back.
 */
import { GGML_QUANT_TYPES, type GgmlQuantType } from '../../../shared/compressMethods';
import { ggmlType } from '../../formats/gguf/ggmlTypes';
import { dequantizeReference } from '../../analysis/ggmlDequant';
import { ggmlKernel } from '../../analysis/ggmlKernel';
import { dequantizeBlocks } from '../../analysis/ggmlValues';
import { allFinite } from '../kernels';
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K } from './kquants';
import { quantizeIq4Nl, quantizeQ4_0, quantizeQ5_0, quantizeQ8_0 } from './legacy';
import type { BlockQuantizer } from './types';

const QUANTIZERS: Readonly<Record<GgmlQuantType, BlockQuantizer>> = {
  Q8_0: quantizeQ8_0,
  Q6_K: quantizeQ6_K,
  Q5_K: quantizeQ5_K,
  Q5_0: quantizeQ5_0,
  Q4_K: quantizeQ4_K,
  Q4_0: quantizeQ4_0,
  IQ4_NL: quantizeIq4Nl,
  Q3_K: quantizeQ3_K,
  Q2_K: quantizeQ2_K,
};

export { GGML_QUANT_TYPES };

/** Whether LayerLens quantizes to `typeName`. */
export function quantizesTo(typeName: string): boolean {
  return Object.hasOwn(QUANTIZERS, typeName);
}

/**
 * Quantize `values` (a whole number of blocks) to the bytes of ggml type `typeName`; with
 * `importance` (one value per input column: rows of `importance.length` weights, a whole
 * number of blocks), the scale searches are weighted by it as llama.cpp's quant_weights.
 * Runs the WebAssembly port (wasm/ggml.ts) where it loads and the weights are finite; the
 * TypeScript below is the reference it matches byte for byte (`reference` forces it).
 */
export function quantizeGgml(
  typeName: string,
  values: Float32Array,
  importance?: Float32Array,
  reference = false,
): Uint8Array {
  const type = ggmlType(typeName);
  const quantize = quantizesTo(type.name) ? QUANTIZERS[type.name as GgmlQuantType] : undefined;
  if (!quantize) throw new Error(`LayerLens does not quantize to ${type.name}`);
  if (values.length % type.blockElements !== 0) {
    throw new RangeError(
      `${values.length} weights are not a whole number of ${type.name} blocks of ${type.blockElements}`,
    );
  }
  const rowLength = importance?.length ?? type.blockElements;
  if (rowLength % type.blockElements !== 0 || values.length % rowLength !== 0) {
    throw new RangeError(
      `an importance matrix of ${rowLength} columns does not fit ${values.length} weights in ${type.name} blocks of ${type.blockElements}`,
    );
  }
  const blocks = values.length / type.blockElements;
  const out = new Uint8Array(blocks * type.blockBytes);
  const kernel = reference ? null : ggmlKernel();
  const finite = kernel !== null && allFinite(values) && (!importance || allFinite(importance));
  if (finite && kernel.quantize(type, values, out, importance)) return out;
  for (let block = 0; block < blocks; block++) {
    const from = block * type.blockElements;
    const column = from % rowLength;
    const weights = importance?.subarray(column, column + type.blockElements);
    quantize(values, from, out, block * type.blockBytes, weights);
  }
  return out;
}

/** Ŵ: `values` quantized to `typeName` (weighted by `importance`, see quantizeGgml) and dequantized again. */
export function roundTripGgml(
  typeName: string,
  values: Float32Array,
  importance?: Float32Array,
  reference = false,
): Float32Array {
  const type = ggmlType(typeName);
  const bytes = quantizeGgml(typeName, values, importance, reference);
  const blocks = values.length / type.blockElements;
  const out = new Float32Array(values.length);
  return reference
    ? dequantizeReference(typeName, bytes, blocks, out)
    : dequantizeBlocks(type, bytes, blocks, out);
}

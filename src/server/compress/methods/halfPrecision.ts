/**
 * float16 and bfloat16 storage, the two 16-bit casts: ONNX stores the 16-bit tensor with a
 * Cast back to float32 before use; safetensors stores the tensor as F16 / BF16. fp16.ts and
 * bf16.ts are this module with their dtype.
 *
 * A Cast from bfloat16 needs opset 13. Where a model cannot be raised to it, bfloat16 is
 * written with operators every opset has: the distinct bfloat16 values of the weight as a
 * float32 codebook and one uint16 index a weight, `Gather(codebook, Cast(index → int64))`:
 * the same values, 2 bytes a weight plus 4 a distinct value.
 */
import { DTYPES, type DType } from '../../../shared/dtypes';
import { METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { decodeValues } from '../../analysis/decode';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import { float32ToBfloat16Bits, float32ToFloat16Bits, relativeFrobeniusError } from '../kernels';
import { attr, makeNode } from '../../onnx';
import { bytesOf, floatTensor, needOpset, replaceWeight, Skip } from '../onnx/methods';
import { intAttr, node, tensorProto } from '../onnx/sizes';
import { asFloat32, decodeStored, encodeFloats } from '../safetensorsValues';
import { quantizedProblem, type CompressionMethodModule } from './types';

/** Why a weight of `dtype` takes no 16-bit cast: it is 16-bit already. */
function halfSourceProblem(dtype: DType): string | null {
  return dtype === 'float16' || dtype === 'bfloat16' ? `already a ${dtype} tensor` : null;
}

/** The opset a Cast from bfloat16 needs, and what it is named in reasons. */
const BF16_OPSET = 13;
const BF16_NODE = 'Cast from bfloat16';

/** The distinct 16-bit codes of `bits`, sorted, and each code's index among them. */
function codebookOf(bits: Uint16Array): { codes: Uint16Array; indices: Uint16Array } {
  const codes = Uint16Array.from(new Set(bits)).sort();
  const position = new Map<number, number>();
  codes.forEach((code, at) => position.set(code, at));
  return { codes, indices: bits.map((code) => position.get(code)!) };
}

/** Bytes of the codebook form's nodes beyond its two tensors (Cast to int64, Gather). */
function codebookNodeBytes(name: string): number {
  const index = `${name}_bf16_index`;
  return (
    node('Cast', `${name}_Cast`, [`${name}_bf16`], [index], intAttr('to', ONNX_DATA_TYPE.INT64)) +
    node('Gather', `${name}_Gather`, [`${name}_bf16_codebook`, index], [name], intAttr('axis', 0))
  );
}

/** A 16-bit cast: `method`, the dtype it stores and its ONNX data type. */
export function halfPrecisionMethod(
  method: 'fp16' | 'bf16',
  planLevels: readonly SweepLevel[],
): CompressionMethodModule {
  const dtype: DType = method === 'fp16' ? 'float16' : 'bfloat16';
  const dataType = method === 'fp16' ? ONNX_DATA_TYPE.FLOAT16 : ONNX_DATA_TYPE.BFLOAT16;
  const bitsOf = (values: Float32Array): Uint16Array =>
    method === 'fp16' ? float32ToFloat16Bits(values) : float32ToBfloat16Bits(values);
  return {
    ...METHOD_INFO[method],
    sweepLevels: [],
    planLevels,
    sweepProblem: () => undefined,
    reconstruct: async (values) =>
      Float32Array.from(decodeValues(dtype, new Uint8Array(bitsOf(values).buffer), values.length)),
    formats: {
      onnx: {
        fileSize: { kind: 'bits', bits: DTYPES[dtype].bits },
        feasible: (weight) => quantizedProblem(weight.encoding) ?? halfSourceProblem(weight.dtype),
        async apply(ctx, job) {
          const already = halfSourceProblem(job.entry.info.dtype);
          if (already) throw new Skip(already);
          const bits = bitsOf(job.values);
          const name = job.slot.name;
          if (method === 'bf16' && !ctx.opsetAllows(BF16_OPSET)) {
            const { codes, indices } = codebookOf(bits);
            const indexName = ctx.names.fresh(`${name}_bf16`);
            const codebookName = ctx.names.fresh(`${name}_bf16_codebook`);
            const index64 = ctx.names.fresh(`${name}_bf16_index`);
            const codebook = Float32Array.from(decodeValues(dtype, bytesOf(codes), codes.length));
            replaceWeight(
              ctx,
              job.slot,
              [
                {
                  name: indexName,
                  dataType: ONNX_DATA_TYPE.UINT16,
                  dims: job.entry.info.shape,
                  bytes: bytesOf(indices),
                },
                floatTensor(codebookName, [codes.length], codebook),
              ],
              [
                makeNode('Cast', [indexName], [index64], ctx.names.fresh(`${name}_Cast`), [
                  attr.int('to', ONNX_DATA_TYPE.INT64),
                ]),
                makeNode(
                  'Gather',
                  [codebookName, index64],
                  [name],
                  ctx.names.fresh(`${name}_Gather`),
                  [attr.int('axis', 0)],
                ),
              ],
            );
            const restored = decodeValues(dtype, bytesOf(bits), bits.length);
            return {
              bytesAfter: indices.byteLength + codebook.byteLength,
              relativeError: relativeFrobeniusError(job.values, restored),
              detail: `bfloat16 values as a ${codes.length}-entry codebook with uint16 indices (Gather; ${BF16_NODE} needs opset ${BF16_OPSET}, opset ${ctx.sourceOpset} kept)`,
            };
          }
          if (method === 'bf16') needOpset(ctx, BF16_OPSET, BF16_NODE);
          const halfName = ctx.names.fresh(`${name}_${method}`);
          replaceWeight(
            ctx,
            job.slot,
            [{ name: halfName, dataType, dims: job.entry.info.shape, bytes: bytesOf(bits) }],
            [
              makeNode('Cast', [halfName], [name], ctx.names.fresh(`${name}_Cast`), [
                attr.int('to', ONNX_DATA_TYPE.FLOAT),
              ]),
            ],
          );
          const restored = decodeValues(dtype, bytesOf(bits), bits.length);
          return {
            bytesAfter: bits.byteLength,
            relativeError: relativeFrobeniusError(job.values, restored),
            detail: `${dtype} storage, Cast to float32 before use`,
          };
        },
        async predictBytes(entry, weight, options, values) {
          const { info } = entry;
          const slotName = weight.slot.name;
          const constant = weight.slot.kind !== 'initializer';
          if (method === 'bf16' && !weight.opsetAllows(BF16_OPSET)) {
            const distinct = new Set(bitsOf(values())).size;
            return {
              options,
              bytes:
                tensorProto(`${slotName}_bf16`, info.shape, info.parameterCount * 2, constant) +
                tensorProto(`${slotName}_bf16_codebook`, [distinct], distinct * 4, constant) +
                codebookNodeBytes(slotName) -
                tensorProto(slotName, info.shape, info.byteLength, constant) +
                info.byteLength,
            };
          }
          const half = `${slotName}_${method}`;
          return {
            options,
            bytes:
              tensorProto(half, info.shape, info.parameterCount * 2, constant) +
              node('Cast', `${slotName}_Cast`, [half], [slotName], intAttr('to', 1)) -
              tensorProto(slotName, info.shape, info.byteLength, constant) +
              info.byteLength,
          };
        },
      },
      safetensors: {
        fileSize: { kind: 'bits', bits: DTYPES[dtype].bits },
        feasible: (entry) => halfSourceProblem(entry.info.dtype),
        async apply(tensor) {
          if (tensor.dtype === dtype) return `already ${dtype}`;
          const data = encodeFloats(asFloat32(tensor.original), dtype);
          return {
            tensors: [{ name: tensor.name, dtype, shape: tensor.shape, bytes: data }],
            values: decodeStored(tensor, data, dtype),
            detail: `${tensor.dtype} → ${dtype}`,
          };
        },
        predictBytes: (entry, options) => ({ options, bytes: entry.info.parameterCount * 2 }),
      },
    },
  };
}

/**
 * float16 and bfloat16 storage, the two 16-bit casts: ONNX stores the 16-bit tensor with a
 * Cast back to float32 before use (bfloat16 needs opset 13); safetensors stores the tensor
 * as F16 / BF16. fp16.ts and bf16.ts are this module with their dtype.
 */
import type { DType } from '../../../shared/dtypes';
import { METHOD_INFO } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { decodeValues } from '../../analysis/decode';
import { ONNX_DATA_TYPE } from '../../formats/onnxDataTypes';
import { float32ToBfloat16Bits, float32ToFloat16Bits, relativeFrobeniusError } from '../kernels';
import { attr, makeNode } from '../../onnx';
import { bytesOf, needOpset, replaceWeight, Skip } from '../onnx/methods';
import { intAttr, node, tensorProto } from '../onnx/sizes';
import { asFloat32, decodeStored, encodeFloats } from '../safetensorsValues';
import { quantizedProblem, type CompressionMethodModule } from './types';

/** Why a weight of `dtype` takes no 16-bit cast: it is 16-bit already. */
function halfSourceProblem(dtype: DType): string | null {
  return dtype === 'float16' || dtype === 'bfloat16' ? `already a ${dtype} tensor` : null;
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
        feasible: (weight) => quantizedProblem(weight.encoding) ?? halfSourceProblem(weight.dtype),
        async apply(ctx, job) {
          const already = halfSourceProblem(job.entry.info.dtype);
          if (already) throw new Skip(already);
          if (method === 'bf16') needOpset(ctx, 13, 'Cast from bfloat16');
          const bits = bitsOf(job.values);
          const name = job.slot.name;
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
        async predictBytes(entry, weight, options) {
          const { info } = entry;
          const slotName = weight.slot.name;
          const constant = weight.slot.kind !== 'initializer';
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

/**
 * How many bytes a tensor takes in the written file for each compression option, before
 * anything is written, asked of the model's format (its FormatCompression sizer): the
 * stored data of each method (each method module's `predictBytes`, compress/methods/) plus the protobuf or JSON-header bytes of the tensors and
 * nodes it adds, less those of the tensor it replaces.
 *
 * - int8: one byte per weight and one float32 scale per output channel (symmetric, no zero
 *   point), a DequantizeLinear node (and a Reshape with its shape when W is not 2-D).
 * - int4: half a byte per weight and one float32 scale per block of the input dimension
 *   (MatMulNBits for direct MatMul weights, else DequantizeLinear with block_size).
 * - lowrank: the two float32 factors at the rank the energy gives (rank·(rows + cols)),
 *   one more node per consumer.
 * - fp16 / bf16: two bytes per weight and a Cast node.
 * - prune and N:M store the zeros in the dense tensor: the file is as large as before (they
 *   save only after lossless packing), so size plans leave them out; the same holds on
 *   safetensors for int4 and low rank (stored as reconstructed dense values) and for int8
 *   unless stored with its scales (`storeQuantized`, which plans always use).
 */
import type { CompressionOptions } from '../../shared/compress';
import { decodeValues, type NumericDType } from '../analysis/decode';
import { compressionOf } from '../formats/registry';
import { loadTensorData } from '../formats/onnxTensors';
import type { OpenedModel } from '../formats/types';

/** A compression option on one tensor and what it is predicted to take in the file. */
export interface SizedOption {
  /** The sweep level's key this option comes from. */
  readonly key: string;
  readonly label: string;
  /** As written into the recipe (low rank by an explicit rank, safetensors int8 with scales). */
  readonly options: CompressionOptions;
  /** The tensor's predicted bytes in the file with this option, its overhead included. */
  readonly bytes: number;
}

/** One option that was left out for a tensor, and why. */
export interface DroppedOption {
  readonly key: string;
  readonly reason: string;
}

export interface TensorPrediction {
  readonly index: number;
  readonly name: string;
  /** The tensor's stored bytes now. */
  readonly bytesBefore: number;
  readonly options: readonly SizedOption[];
  readonly dropped: readonly DroppedOption[];
}

/** A level of a sweep as the predictor needs it (SweepLevel's key, label and options). */
export interface LevelOption {
  readonly key: string;
  readonly label: string;
  readonly options: CompressionOptions;
}

export interface SizePrediction {
  readonly fileBytesBefore: number;
  readonly tensors: readonly TensorPrediction[];
  /** Bytes a compressed file adds once whatever is changed (metadata, opset imports). */
  readonly fileOverhead: number;
}

/**
 * Predicted bytes of every tensor of `model` under each of `levels` (tensors with no
 * option that saves bytes are listed with their reasons), and the file's fixed overhead.
 */
export async function predictSizes(
  model: OpenedModel,
  indices: readonly number[],
  levels: readonly LevelOption[],
  signal?: AbortSignal,
): Promise<SizePrediction> {
  const compression = compressionOf(model);
  const fileBytesBefore = compression.modelBytes(model.summary);
  const sizer = compression.sizer(model, await compression.decode(model));
  const tensors: TensorPrediction[] = [];
  for (const index of indices) {
    signal?.throwIfAborted();
    const entry = model.tensors[index];
    if (!entry) continue;
    const { info } = entry;
    const sized: SizedOption[] = [];
    const dropped: DroppedOption[] = [];
    let loaded: Float32Array | undefined;
    const values = (): Float32Array => {
      loaded ??= Float32Array.from(
        decodeValues(info.dtype as NumericDType, loadTensorData(entry.data), info.parameterCount),
      );
      return loaded;
    };
    for (const level of levels) {
      const outcome = await sizer.size(entry, level.options, values);
      if (typeof outcome === 'string') {
        dropped.push({ key: level.key, reason: outcome });
      } else if (outcome.bytes >= info.byteLength) {
        dropped.push({ key: level.key, reason: 'saves no bytes on this tensor' });
      } else {
        sized.push({ key: level.key, label: level.label, ...outcome });
      }
    }
    tensors.push({
      index,
      name: info.name,
      bytesBefore: info.byteLength,
      options: sized,
      dropped,
    });
  }
  return { fileBytesBefore, tensors, fileOverhead: sizer.fileOverhead };
}

/**
 * Why options were left out of a plan, aggregated: one line per reason and set of levels,
 * with how many tensors it holds for, most tensors first — e.g. "12 tensors could not
 * take int4:32 or int4:128 because int4 block-wise DequantizeLinear needs opset 21: …".
 */
export function droppedReasons(prediction: SizePrediction): string[] {
  const groups = new Map<string, { reason: string; keys: string[]; tensors: number }>();
  for (const tensor of prediction.tensors) {
    const byReason = new Map<string, string[]>();
    for (const { key, reason } of tensor.dropped) {
      const keys = byReason.get(reason) ?? [];
      keys.push(key);
      byReason.set(reason, keys);
    }
    for (const [reason, keys] of byReason) {
      const id = `${keys.join('\u0000')}\u0001${reason}`;
      const group = groups.get(id) ?? { reason, keys, tensors: 0 };
      group.tensors++;
      groups.set(id, group);
    }
  }
  return [...groups.values()]
    .sort((a, b) => b.tensors - a.tensors || a.reason.localeCompare(b.reason))
    .map(({ reason, keys, tensors }) => {
      const levels =
        keys.length === 1 ? keys[0]! : `${keys.slice(0, -1).join(', ')} or ${keys.at(-1)!}`;
      return `${tensors} ${tensors === 1 ? 'tensor' : 'tensors'} could not take ${levels} because ${reason}`;
    });
}

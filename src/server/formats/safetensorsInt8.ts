/**
 * LayerLens's own int8 storage in safetensors (written by `layerlens compress` with int8
 * scales): the file's `__metadata__` records the convention under INT8_METADATA_KEY, and
 * each stored weight `<name>` (I8 codes q) has its F32 scales in `<name>.scale`, one per
 * index of the first axis; the weight is q · s[out]. A file that records the convention
 * opens with those weights decoded to their values (the codes stay reachable for the
 * raw-code view and for writers), as ONNX DequantizeLinear weights do. Without the
 * recorded convention, I8 tensors open as the codes they are: names alone decide nothing.
 */
import type { MetadataEntry } from '../../shared/model';
import { decodeAxis } from './onnxQuantized';
import type { TensorEntry } from './types';

/** The `__metadata__` key under which the writer records the convention. */
export const INT8_METADATA_KEY = 'layerlens.int8';

/** The int8 storage convention, as written into `__metadata__` under INT8_METADATA_KEY. */
export const INT8_CONVENTION =
  'symmetric int8 per output channel: tensor <name> holds int8 values q (I8, same shape as the original), ' +
  'tensor <name>.scale holds float32 scales s (F32, shape [out], one per index of the first axis); ' +
  'the weight is q * s[out] broadcast over the other axes';

/** Suffix of the scale tensor next to an int8 tensor stored with `storeQuantized`. */
export const INT8_SCALE_SUFFIX = '.scale';

/** Why the codes and scales of a pair do not follow the convention, or null. */
function pairProblem(codes: TensorEntry, scale: TensorEntry): string | null {
  const { shape } = codes.info;
  if (shape.length === 0) return 'the codes are a scalar';
  if (scale.info.dtype !== 'float32') return `its scales are ${scale.info.dtype}, not F32`;
  if (scale.info.shape.length !== 1 || scale.info.shape[0] !== shape[0]) {
    return `its scales have shape [${scale.info.shape.join(', ')}], not [${shape[0]}]`;
  }
  return null;
}

/**
 * The tensors with each int8 weight of the convention decoded (its scales stay listed);
 * `warnings` gets a line for each pair that does not follow it (left as stored codes).
 */
export function decodeInt8Weights(
  tensors: readonly TensorEntry[],
  metadata: readonly MetadataEntry[],
  warnings: string[],
): TensorEntry[] {
  const recorded = metadata.some(
    (entry) => entry.key === INT8_METADATA_KEY && entry.value === INT8_CONVENTION,
  );
  if (!recorded) return [...tensors];
  const byName = new Map(tensors.map((entry) => [entry.info.name, entry]));
  return tensors.map((entry) => {
    const scale = byName.get(`${entry.info.name}${INT8_SCALE_SUFFIX}`);
    if (entry.info.dtype !== 'int8' || !scale) return entry;
    const problem = pairProblem(entry, scale);
    if (problem) {
      warnings.push(`"${entry.info.name}" is shown as its int8 codes: ${problem}`);
      return entry;
    }
    return decodeAxis({ codes: entry, scale }, { shape: entry.info.shape, axis: 0, blockSize: 0 });
  });
}

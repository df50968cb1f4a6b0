/**
 * llama.cpp's block types as a method: one level per type LayerLens quantizes to
 * (compress/ggml/, ggml's reference quantizers), placed at its bits per weight. Blocks run
 * along each stored row of inputs, as GGUF stores them (ne[0] is the input dimension), so
 * a tensor takes a type only when its rows are a whole number of blocks. GGUF writes it
 * (the re-typing writer, compress/ggml/ggufWriter.ts, through compress/ggufFormat.ts),
 * and the levels enter sweeps as the proxy levels of formats that declare them
 * (FormatSweep.levels) or when a request names them.
 */
import { GGML_QUANT_TYPES, METHOD_INFO, type GgmlQuantType } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import type { CompressionOptions } from '../../../shared/compress';
import { ggmlByteLength, ggmlType } from '../../formats/gguf/ggmlTypes';
import type { TensorEntry } from '../../formats/types';
import { dequantizeAll } from '../../analysis/ggmlValues';
import { sharedGgmlWorkers } from '../../jobs/ggmlJob';
import { layoutDims } from '../kernels';
import {
  LevelNotApplicable,
  needFinite,
  needLayout,
  type CompressionMethodModule,
  type TensorTraits,
} from './types';

/** The sweep level of one ggml type. */
export function ggmlLevel(type: GgmlQuantType): SweepLevel {
  const { blockBytes, blockElements } = ggmlType(type);
  return {
    key: `ggml:${type}`,
    label: type,
    method: 'ggml',
    options: { method: 'ggml', ggmlType: type },
    x: (blockBytes * 8) / blockElements,
  };
}

/** Every type LayerLens quantizes to, as sweep levels (most bits first). */
export const GGML_LEVELS: readonly SweepLevel[] = GGML_QUANT_TYPES.map(ggmlLevel);

function typeOf(level: SweepLevel): GgmlQuantType {
  const name = level.options.ggmlType;
  if (!(GGML_QUANT_TYPES as readonly unknown[]).includes(name)) {
    throw new RangeError(`level ${level.key} names no ggml type LayerLens writes`);
  }
  return name as GgmlQuantType;
}

/** Why a tensor with `traits` cannot be stored as the level's type; undefined when it can. */
function blockProblem(level: SweepLevel, traits: TensorTraits): string | undefined {
  if (!traits.layout) return `${level.label} needs an input axis: ${traits.layoutProblem}`;
  if (traits.layout.inputAxis !== 1) {
    return `${level.label} blocks run along stored rows of inputs; this weight stores its inputs down the columns`;
  }
  const { blockElements } = ggmlType(typeOf(level));
  const { inputs } = layoutDims(traits.layout);
  if (inputs % blockElements !== 0) {
    return `rows of ${inputs} inputs are not a whole number of ${level.label} blocks of ${blockElements}`;
  }
  return undefined;
}

/** The ggml type `options` names (the method's default when none). */
function optionsType(options: CompressionOptions): GgmlQuantType {
  return (options.ggmlType ?? METHOD_INFO.ggml.defaults.ggmlType) as GgmlQuantType;
}

/** Why a vector (a norm, a bias) is not re-typed: llama.cpp quantizes matrices only. */
export const VECTOR_KEPT = 'vector: kept as stored';

/** Why the GGUF tensor `entry` cannot be re-typed to the type of `options`; null when it can. */
function ggufProblem(entry: TensorEntry, options: CompressionOptions): string | null {
  const { info } = entry;
  if (info.encoding) {
    return `${info.encoding.scheme} is already quantized; only F32, F16 and BF16 tensors are re-typed`;
  }
  if ((info.fileShape ?? info.shape).length < 2) return VECTOR_KEPT;
  const type = ggmlType(optionsType(options));
  const rowLength = info.fileShape?.[0] ?? info.shape[info.shape.length - 1] ?? 1;
  if (rowLength % type.blockElements !== 0) {
    return `rows of ${rowLength} weights are not a whole number of ${type.name} blocks of ${type.blockElements}`;
  }
  return null;
}

/** Bits a weight of each type, from the type table: "Q8_0 8.5 … Q2_K 2.625 bits a weight". */
function typeBits(): string {
  const bits = GGML_QUANT_TYPES.map((type) => {
    const { blockBytes, blockElements } = ggmlType(type);
    return `${type} ${+((8 * blockBytes) / blockElements).toFixed(3)}`;
  });
  return `${bits.join(', ')} bits a weight`;
}

export const ggml: CompressionMethodModule = {
  ...METHOD_INFO.ggml,
  sweepLevels: [],
  planLevels: [],
  sweepProblem: blockProblem,
  async reconstruct(values, layout, level, signal) {
    const problem = blockProblem(level, { layout: needLayout(layout, level) });
    if (problem) throw new LevelNotApplicable(problem);
    needFinite(values, level);
    // Quantized in a ggml worker (a copy moves there), dequantized here.
    const type = typeOf(level);
    const quantized = await sharedGgmlWorkers().quantize(type, values.slice(), undefined, signal);
    return dequantizeAll(type, quantized.bytes, values.length);
  },
  formats: {
    gguf: {
      fileSize: { kind: 'depends', when: `by the type chosen: ${typeBits()}` },
      feasible: ggufProblem,
      predictBytes(entry, options) {
        const problem = ggufProblem(entry, options);
        if (problem) return problem;
        const type = ggmlType(optionsType(options));
        return {
          options: { method: 'ggml', ggmlType: type.name },
          bytes: ggmlByteLength(type, entry.info.parameterCount),
        };
      },
    },
  },
};

/**
 * llama.cpp's block types as a method: one level per type LayerLens quantizes to
 * (compress/ggml/, ggml's reference quantizers), placed at its bits per weight. Blocks run
 * along each stored row of inputs, as GGUF stores them (ne[0] is the input dimension), so
 * a tensor takes a type only when its rows are a whole number of blocks. No format writes
 * it through the generic compressor: the GGUF writer (compress/ggml/ggufWriter.ts) does,
 * and the levels enter sweeps as the proxy levels of formats that declare them
 * (FormatSweep.levels) or when a request names them.
 */
import { GGML_QUANT_TYPES, METHOD_INFO, type GgmlQuantType } from '../../../shared/compressMethods';
import type { SweepLevel } from '../../../shared/sensitivity';
import { ggmlType } from '../../formats/gguf/ggmlTypes';
import { roundTripGgml } from '../ggml';
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

export const ggml: CompressionMethodModule = {
  ...METHOD_INFO.ggml,
  sweepLevels: [],
  planLevels: [],
  sweepProblem: blockProblem,
  async reconstruct(values, layout, level) {
    const problem = blockProblem(level, { layout: needLayout(layout, level) });
    if (problem) throw new LevelNotApplicable(problem);
    needFinite(values, level);
    return roundTripGgml(typeOf(level), values);
  },
  formats: {},
};

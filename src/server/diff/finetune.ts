/**
 * What a fine-tune changed in each matrix: the update ΔW = tuned − base, its spectrum
 * (analysis/spectrum.ts) with stable and effective rank and the energy kept at a few
 * ranks; and its extraction as a PEFT LoRA adapter, ΔW ≈ B·A from the same truncated SVD
 * the low-rank compressor uses (compress/lowrank.ts), written as `adapter_model.safetensors`
 * (`base_model.model.<module>.lora_A.weight` [r, in], `lora_B.weight` [out, r]) with its
 * `adapter_config.json` (lora_alpha = r, so that PEFT's scale alpha/r is 1). The rank is one
 * for all, or per matrix the smallest keeping an energy target; matrices whose rank is not
 * the config's `r` are listed in `rank_pattern` and `alpha_pattern`.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  DELTA_ENERGY_RANKS,
  type DeltaSpectrum,
  type LoraExtraction,
  type LoraModule,
} from '../../shared/diff';
import { DTYPES } from '../../shared/dtypes';
import { MAX_DELTA_SPECTRUM_VALUES } from '../../shared/limits';
import { computeSpectrumInThread } from '../analysis/spectrum';
import { effectiveRank } from '../analysis/spectralMetrics';
import { rankForEnergy } from '../../shared/spectrum';
import { loadTensorValues, tensorMatrixShape } from '../analysis/tensorMatrix';
import type { MatrixValues } from '../analysis/heatmap';
import {
  checkLowRankLimits,
  factoriseLowRank,
  LowRankRefusal,
  multiplyFactors,
} from '../compress/lowrank';
import { openModelFile } from '../formats/registry';
import { ModelFileError, type OpenedModel } from '../formats/types';
import { writeSafetensorsFile } from '../formats/safetensorsWriter';
import { onnxModelOf } from '../onnx';
import { pairTensors, type TensorPair } from './pairing';
import { compareValues, valueReader, valuesProblem } from './values';

interface Delta {
  readonly rows: number;
  readonly cols: number;
  readonly base: MatrixValues;
  readonly tuned: MatrixValues;
  readonly delta: Float32Array;
}

/** ΔW of a pair of one float matrix each, in memory; or why it has none. */
async function deltaOf(pair: TensorPair, plainMatrix: boolean): Promise<Delta | string> {
  const { a } = pair;
  const b = pair.b[0]!;
  if (pair.kind === 'factors') return 'the fine-tune stores it as factors';
  if (a.info.shape.join() !== b.info.shape.join()) return 'its shape changed';
  if (plainMatrix && a.info.shape.length !== 2)
    return 'not a 2-D matrix (a LoRA adapts Linear weights)';
  if (!DTYPES[a.info.dtype].isFloat || !DTYPES[b.info.dtype].isFloat) return 'not floating-point';
  let shape;
  try {
    shape = tensorMatrixShape(a, true);
    checkLowRankLimits(shape.rows, shape.cols);
  } catch (error) {
    return (error as Error).message;
  }
  const base = await loadTensorValues(a, shape);
  const tuned = await loadTensorValues(b, tensorMatrixShape(b, true));
  const delta = new Float32Array(base.length);
  for (let i = 0; i < delta.length; i++) delta[i] = tuned[i]! - base[i]!;
  return { rows: shape.rows, cols: shape.cols, base, tuned, delta };
}

export function squaredNorm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return sum;
}

/** The spectrum of a changed pair's ΔW, or why there is none. */
export async function deltaSpectrum(
  pair: TensorPair,
  signal?: AbortSignal,
): Promise<DeltaSpectrum | string> {
  const delta = await deltaOf(pair, false);
  if (typeof delta === 'string') return delta;
  const { rows, cols } = delta;
  return updateSpectrum(pair.a.info.name, rows, cols, delta.delta, squaredNorm(delta.base), signal);
}

/**
 * The fine-tune analysis of an update ΔW (`rows` × `cols`, row-major): its largest singular
 * values, stable and effective rank, and the energy kept at DELTA_ENERGY_RANKS;
 * `baseSquaredNorm` is ‖A‖_F² for the relative change.
 */
export async function updateSpectrum(
  name: string,
  rows: number,
  cols: number,
  delta: Float32Array,
  baseSquaredNorm: number,
  signal?: AbortSignal,
): Promise<DeltaSpectrum> {
  const spectrum = await computeSpectrumInThread(delta, [rows, cols], { method: 'auto' }, () =>
    Boolean(signal?.aborted),
  );
  const sigma = spectrum.singularValues;
  const total = spectrum.frobeniusSquared;
  const energyAt: { rank: number; energy: number }[] = [];
  let kept = 0;
  for (let i = 0; i < sigma.length; i++) {
    kept += sigma[i]! * sigma[i]!;
    if ((DELTA_ENERGY_RANKS as readonly number[]).includes(i + 1)) {
      energyAt.push({ rank: i + 1, energy: total > 0 ? kept / total : 1 });
    }
  }
  const baseNorm = Math.sqrt(baseSquaredNorm);
  return {
    name,
    rows,
    cols,
    relativeChange: baseNorm > 0 ? Math.sqrt(total) / baseNorm : Infinity,
    singularValues: Array.from(sigma.subarray(0, MAX_DELTA_SPECTRUM_VALUES)),
    stableRank: sigma[0]! > 0 ? total / (sigma[0]! * sigma[0]!) : 0,
    effectiveRank: effectiveRank(sigma),
    energyAt,
  };
}

export interface ExtractLoraOptions {
  /** One rank for every matrix (capped at its smaller side); or instead: */
  readonly rank?: number;
  /** Per matrix the smallest rank keeping this share (0…1] of ‖ΔW‖_F², */
  readonly energy?: number;
  /** capped at this rank. */
  readonly maxRank?: number;
  /** Folder for adapter_model.safetensors and adapter_config.json (created; files never overwritten). */
  readonly outDir: string;
  readonly signal?: AbortSignal;
  /** Called after each pair is looked at. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The options' rank choice, checked. */
function rankChoice(
  options: ExtractLoraOptions,
): { rank: number } | { energy: number; maxRank: number } {
  const { rank, energy, maxRank } = options;
  const positive = (value: number | undefined) =>
    value !== undefined && Number.isInteger(value) && value >= 1;
  if ((rank === undefined) === (energy === undefined)) {
    throw new RangeError('extract-lora takes either a rank or an energy target');
  }
  if (rank !== undefined) {
    if (!positive(rank)) throw new RangeError(`--rank must be a positive integer, got ${rank}`);
    return { rank };
  }
  if (!(energy! > 0 && energy! <= 1)) {
    throw new RangeError(`--energy must be in (0, 1], got ${energy}`);
  }
  if (maxRank !== undefined && !positive(maxRank)) {
    throw new RangeError(`--max-rank must be a positive integer, got ${maxRank}`);
  }
  return { energy: energy!, maxRank: maxRank ?? Number.MAX_SAFE_INTEGER };
}

/** The rank of one matrix's adapter: the one asked for, or the smallest keeping the energy. */
async function matrixRank(
  delta: Delta,
  choice: ReturnType<typeof rankChoice>,
  signal: AbortSignal | undefined,
): Promise<number> {
  const side = Math.min(delta.rows, delta.cols);
  if ('rank' in choice) return Math.min(choice.rank, side);
  const spectrum = await computeSpectrumInThread(
    delta.delta,
    [delta.rows, delta.cols],
    { method: 'full' },
    () => Boolean(signal?.aborted),
  );
  const sigma = Array.from(spectrum.singularValues);
  const rank = rankForEnergy(sigma, spectrum.frobeniusSquared, choice.energy);
  return Math.min(rank, choice.maxRank, side);
}

/** PEFT's `r`: the rank most matrices have (the larger on a tie); the others go to rank_pattern. */
export function commonRank(ranks: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const rank of ranks) counts.set(rank, (counts.get(rank) ?? 0) + 1);
  let best = ranks[0] ?? 1;
  for (const [rank, count] of counts) {
    const bestCount = counts.get(best) ?? 0;
    if (count > bestCount || (count === bestCount && rank > best)) best = rank;
  }
  return best;
}

/** The PEFT module name of a weight: its name without the trailing `.weight`. */
export function loraModuleName(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** Both models opened and their tensors paired (pairing.ts). */
export async function modelPairs(
  basePath: string,
  tunedPath: string,
): Promise<{ base: OpenedModel; tuned: OpenedModel; pairs: TensorPair[] }> {
  const base = await openModelFile(basePath);
  const tuned = await openModelFile(tunedPath);
  const onnx = async (m: OpenedModel) => (m.onnx ? onnxModelOf(m, 'compared') : undefined);
  const { pairs } = pairTensors(base, tuned, await onnx(base), await onnx(tuned));
  return { base, tuned, pairs };
}

function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Whether the pair's values differ at all (read whole: the pair is a matrix within the low-rank limits). */
function changed(delta: Delta): boolean {
  return delta.delta.some((d) => d !== 0);
}

/**
 * Extract the fine-tune's update of every 2-D float matrix as a rank-`rank` LoRA and
 * write the adapter; the models are only read.
 */
export async function extractLora(
  basePath: string,
  tunedPath: string,
  options: ExtractLoraOptions,
): Promise<LoraExtraction> {
  const { outDir, signal } = options;
  const choice = rankChoice(options);
  const { base, tuned, pairs } = await modelPairs(basePath, tunedPath);
  const modules: LoraModule[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const tensors: { name: string; shape: number[]; values: Float32Array }[] = [];
  let looked = 0;
  for (const pair of pairs) {
    signal?.throwIfAborted();
    options.onProgress?.(looked++, pairs.length);
    const name = pair.a.info.name;
    const delta = await deltaOf(pair, true);
    if (typeof delta === 'string') {
      if (!(await sameValues(pair))) skipped.push({ name, reason: delta });
      continue;
    }
    if (!changed(delta)) continue;
    const { rows, cols } = delta;
    let factors;
    try {
      const rank = await matrixRank(delta, choice, signal);
      factors = await factoriseLowRank(delta.delta, rows, cols, { rank }, { signal });
    } catch (error) {
      if (!(error instanceof LowRankRefusal || error instanceof RangeError)) throw error;
      skipped.push({ name, reason: error.message });
      continue;
    }
    const product = await multiplyFactors(factors.a, factors.b, rows, factors.rank, cols);
    let missed = 0;
    let offTuned = 0;
    for (let i = 0; i < product.length; i++) {
      missed += (delta.delta[i]! - product[i]!) ** 2;
      offTuned += (delta.base[i]! + product[i]! - delta.tuned[i]!) ** 2;
    }
    const deltaSquared = squaredNorm(delta.delta);
    const module = loraModuleName(name);
    const prefix = `base_model.model.${module}`;
    // A PyTorch Linear weight is [out, in]: ΔW = lora_B [out, r] · lora_A [r, in].
    tensors.push(
      { name: `${prefix}.lora_A.weight`, shape: [factors.rank, cols], values: factors.b },
      { name: `${prefix}.lora_B.weight`, shape: [rows, factors.rank], values: factors.a },
    );
    modules.push({
      name,
      module,
      rows,
      cols,
      rank: factors.rank,
      energy: deltaSquared > 0 ? 1 - missed / deltaSquared : 1,
      updateError: deltaSquared > 0 ? Math.sqrt(missed / deltaSquared) : 0,
      tunedError: Math.sqrt(offTuned / Math.max(squaredNorm(delta.tuned), Number.MIN_VALUE)),
    });
  }
  if (modules.length === 0) {
    throw new ModelFileError(
      tuned.path,
      `no 2-D float matrix changed from ${basename(base.path)} that a LoRA could hold${
        skipped.length > 0
          ? ` (${skipped
              .map((s) => `${s.name}: ${s.reason}`)
              .slice(0, 3)
              .join('; ')})`
          : ''
      }`,
    );
  }
  await mkdir(outDir, { recursive: true });
  const adapterPath = join(outDir, 'adapter_model.safetensors');
  const configPath = join(outDir, 'adapter_config.json');
  for (const path of [adapterPath, configPath]) {
    if (existsSync(path)) {
      throw new ModelFileError(
        path,
        'already exists; LayerLens does not overwrite it (choose another --out folder)',
      );
    }
  }
  await writeSafetensorsFile(
    adapterPath,
    tensors.map((t) => ({
      name: t.name,
      dtype: 'float32',
      shape: t.shape,
      bytes: () => float32Bytes(t.values),
    })),
    { format: 'pt' },
    signal,
  );
  const rank = commonRank(modules.map((m) => m.rank));
  // PEFT scales B·A by lora_alpha / r: alpha = r (per module too) keeps the scale 1.
  const pattern = Object.fromEntries(
    modules.filter((m) => m.rank !== rank).map((m) => [m.module, m.rank]),
  );
  const config = {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: base.path,
    r: rank,
    lora_alpha: rank,
    rank_pattern: pattern,
    alpha_pattern: pattern,
    target_modules: modules.map((m) => m.module),
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    modules_to_save: null,
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' });
  options.onProgress?.(pairs.length, pairs.length);
  const asked =
    'rank' in choice
      ? {}
      : { energy: choice.energy, ...(options.maxRank ? { maxRank: options.maxRank } : {}) };
  return {
    base: base.path,
    tuned: tuned.path,
    adapterPath,
    configPath,
    rank,
    ...asked,
    modules,
    skipped,
  };
}

/** Whether a pair's values are equal everywhere (compared only where they have as many). */
async function sameValues(pair: TensorPair): Promise<boolean> {
  const b = pair.b[0]!;
  if (pair.kind === 'factors' || b.info.parameterCount !== pair.a.info.parameterCount) return false;
  if (valuesProblem(pair.a) || valuesProblem(b)) return false;
  return (await compareValues(valueReader(pair.a), valueReader(b))).identical === 1;
}

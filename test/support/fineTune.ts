/**
 * A synthetic fine-tune written as two safetensors files: each matrix of `SHAPES` is
 * tuned = base + a known low-rank update (rank 8 unless told) + small noise; a 1-D norm changes a little and
 * an embedding stays the same. The update as the stored float32 values carry it and the
 * noise are kept, so tests can check what LoRA extraction and the diff recover.
 */
import { join } from 'node:path';
import { lowRankValues, normalValues } from './matrices';
import { writeSafetensors } from './safetensorsBuilder';

export const FINE_TUNE_NOISE = 1e-4;

export const FINE_TUNE_SHAPES: Readonly<Record<string, readonly [number, number]>> = {
  'model.layers.0.q_proj.weight': [96, 64],
  'model.layers.0.v_proj.weight': [64, 64],
};

export interface SyntheticFineTune {
  readonly basePath: string;
  readonly tunedPath: string;
  /** The update U and the noise N of each matrix (tuned − base = U + N). */
  readonly updates: ReadonlyMap<string, { update: Float32Array; noise: Float32Array }>;
}

/** Writes base.safetensors and tuned.safetensors into `dir`; updates of rank 8 unless `ranks` names another. */
export async function writeSyntheticFineTune(
  dir: string,
  ranks: Readonly<Record<string, number>> = {},
): Promise<SyntheticFineTune> {
  const updates = new Map<string, { update: Float32Array; noise: Float32Array }>();
  const base = [];
  const tuned = [];
  let seed = 10;
  for (const [name, [rows, cols]] of Object.entries(FINE_TUNE_SHAPES)) {
    const w = Float32Array.from(normalValues(rows * cols, seed++, 0.05));
    // A low-rank update about a fifth of W's size, and noise 1e-4 per value.
    const rank = ranks[name] ?? 8;
    const update = Float32Array.from(lowRankValues(rows, cols, rank, seed++), (v) => v * 0.01);
    const noise = Float32Array.from(normalValues(rows * cols, seed++, FINE_TUNE_NOISE));
    const t = w.map((v, i) => v + update[i]! + noise[i]!);
    // What the file holds: U as float32 arithmetic gives it, N the rest.
    const storedUpdate = t.map((v, i) => v - w[i]! - noise[i]!);
    updates.set(name, { update: storedUpdate, noise });
    base.push({ name, dtype: 'F32' as const, shape: [rows, cols], data: w });
    tuned.push({ name, dtype: 'F32' as const, shape: [rows, cols], data: t });
  }
  const norms = Float32Array.from(normalValues(64, 99, 1));
  base.push({ name: 'model.norm.weight', dtype: 'F32' as const, shape: [64], data: norms });
  tuned.push({
    name: 'model.norm.weight',
    dtype: 'F32' as const,
    shape: [64],
    data: norms.map((v) => v * 1.01),
  });
  const embed = Float32Array.from(normalValues(32 * 64, 100, 1));
  base.push({ name: 'embed.weight', dtype: 'F32' as const, shape: [32, 64], data: embed });
  tuned.push({ name: 'embed.weight', dtype: 'F32' as const, shape: [32, 64], data: embed });
  return {
    basePath: await writeSafetensors(join(dir, 'base.safetensors'), base),
    tunedPath: await writeSafetensors(join(dir, 'tuned.safetensors'), tuned),
    updates,
  };
}

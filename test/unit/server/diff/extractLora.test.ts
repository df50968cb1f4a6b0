/**
 * Fine-tune analysis and LoRA extraction on a synthetic fine-tune written in the test:
 * tuned = base + a known rank-8 update + small noise. The rank-8 adapter, read back from
 * the file written, recovers the update, and base + B·A matches the fine-tune within the
 * noise (Eckart–Young: the update itself is a rank-8 candidate, so the best one is at
 * most ‖noise‖ away from the fine-tune, and so at most 2‖noise‖ from the update).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { diffModels } from '../../../../src/server/diff';
import { extractLora } from '../../../../src/server/diff/finetune';
import { openModelFile } from '../../../../src/server/formats/registry';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import {
  FINE_TUNE_SHAPES,
  writeSyntheticFineTune,
  type SyntheticFineTune,
} from '../../../support/fineTune';
import { makeTempDir } from '../../../support/safetensorsBuilder';

let dir: string;
let remove: () => Promise<void>;
let basePath: string;
let tunedPath: string;
let updates: SyntheticFineTune['updates'];
const SHAPES = FINE_TUNE_SHAPES;

function norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return Math.sqrt(sum);
}

before(async () => {
  ({ dir, remove } = await makeTempDir('layerlens-lora-'));
  ({ basePath, tunedPath, updates } = await writeSyntheticFineTune(dir));
});
after(() => remove());

test('the rank-8 LoRA written to disk recovers the update, and base + B·A matches the fine-tune within the noise', async (t) => {
  const outDir = join(dir, 'adapter');
  const result = await extractLora(basePath, tunedPath, { rank: 8, outDir });
  assert.deepEqual(
    result.modules.map((m) => m.module),
    ['model.layers.0.q_proj', 'model.layers.0.v_proj'],
  );
  assert.deepEqual(result.skipped, [
    { name: 'model.norm.weight', reason: 'not a 2-D matrix (a LoRA adapts Linear weights)' },
  ]);
  const config = JSON.parse(await readFile(result.configPath, 'utf8'));
  assert.equal(config.peft_type, 'LORA');
  assert.equal(config.r, 8);
  assert.equal(config.lora_alpha, 8);
  assert.deepEqual(config.target_modules, ['model.layers.0.q_proj', 'model.layers.0.v_proj']);

  const adapter = await openModelFile(result.adapterPath);
  const byName = new Map(adapter.tensors.map((e) => [e.info.name, e]));
  assert.equal(adapter.tensors.length, 4);
  for (const [name, [rows, cols]] of Object.entries(SHAPES)) {
    const module = name.slice(0, -'.weight'.length);
    const a = byName.get(`base_model.model.${module}.lora_A.weight`)!;
    const b = byName.get(`base_model.model.${module}.lora_B.weight`)!;
    assert.deepEqual(a.info.shape, [8, cols]);
    assert.deepEqual(b.info.shape, [rows, 8]);
    const aValues = await loadTensorValues(a, tensorMatrixShape(a, true));
    const bValues = await loadTensorValues(b, tensorMatrixShape(b, true));
    const { update, noise } = updates.get(name)!;
    // B·A against the update U and against the fine-tune's ΔW = U + N.
    const offUpdate = new Float64Array(rows * cols);
    const offTuned = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let ba = 0;
        for (let k = 0; k < 8; k++) ba += bValues[i * 8 + k]! * aValues[k * cols + j]!;
        offUpdate[i * cols + j] = ba - update[i * cols + j]!;
        offTuned[i * cols + j] = ba - update[i * cols + j]! - noise[i * cols + j]!;
      }
    }
    const recovery = norm(offUpdate) / norm(update);
    const noiseShare = norm(noise) / norm(update);
    t.diagnostic(
      `${module}: ‖BA − U‖/‖U‖ = ${recovery.toExponential(3)}, ‖N‖/‖U‖ = ${noiseShare.toExponential(3)}, ‖base + BA − tuned‖/‖N‖ = ${(norm(offTuned) / norm(noise)).toFixed(4)}`,
    );
    assert.ok(
      norm(offTuned) <= 1.01 * norm(noise),
      `${module}: off the fine-tune by more than the noise`,
    );
    assert.ok(norm(offUpdate) <= 2 * norm(noise), `${module}: update not recovered`);
    assert.ok(recovery < 0.01);
    const reported = result.modules.find((m) => m.name === name)!;
    assert.equal(reported.rank, 8);
    assert.ok(reported.energy > 0.999);
    assert.ok(reported.updateError > 0 && reported.updateError < 2 * noiseShare);
  }
  await assert.rejects(
    extractLora(basePath, tunedPath, { rank: 8, outDir }),
    /adapter_model\.safetensors: already exists/,
  );
});

test('the fine-tune analysis finds a rank-8 update: energy at rank 8 near 1, at rank 4 well below', async () => {
  const diff = await diffModels(basePath, tunedPath, { deltas: true });
  assert.deepEqual(
    diff.deltas!.map((d) => d.name),
    ['model.layers.0.q_proj.weight', 'model.layers.0.v_proj.weight'],
  );
  for (const delta of diff.deltas!) {
    const at = (r: number) => delta.energyAt.find((e) => e.rank === r)!.energy;
    // 1 − (‖N‖/‖ΔW‖)² ≈ 0.9998 with this noise.
    assert.ok(at(8) > 0.999, `${delta.name}: ${at(8)}`);
    assert.ok(at(4) < 0.95, `${delta.name}: ${at(4)}`);
    assert.equal(delta.energyAt.map((e) => e.rank).join(), '4,8,16,32,64');
    assert.ok(Math.abs(at(64) - 1) < 1e-9);
    assert.ok(delta.stableRank > 1 && delta.stableRank < 8);
    assert.ok(delta.effectiveRank > 4 && delta.effectiveRank < 64);
    assert.ok(delta.singularValues.length === Math.min(delta.rows, delta.cols));
  }
  assert.equal(diff.pairs.find((p) => p.name === 'embed.weight')!.changed, false);
});

/** The rank of each module as the config gives it: rank_pattern's, else r. */
function configRank(config: { r: number; rank_pattern: Record<string, number> }, module: string) {
  return config.rank_pattern[module] ?? config.r;
}

test('--energy 0.999 picks rank 8 for the rank-8 update and rank 4 for a rank-4 one; rank_pattern and the tensors agree', async () => {
  const { dir: mixedDir, remove: removeMixed } = await makeTempDir('layerlens-lora-energy-');
  try {
    const mixed = await writeSyntheticFineTune(mixedDir, { 'model.layers.0.v_proj.weight': 4 });
    const check = async (outDir: string, options: { energy: number; maxRank?: number }) => {
      const result = await extractLora(mixed.basePath, mixed.tunedPath, { ...options, outDir });
      const config = JSON.parse(await readFile(result.configPath, 'utf8'));
      const adapter = await openModelFile(result.adapterPath);
      const shapes = new Map(adapter.tensors.map((e) => [e.info.name, e.info.shape]));
      for (const m of result.modules) {
        const r = configRank(config, m.module);
        assert.equal(r, m.rank, m.module);
        // PEFT's scale alpha / r stays 1 for every module.
        assert.equal(config.alpha_pattern[m.module] ?? config.lora_alpha, r, m.module);
        assert.deepEqual(shapes.get(`base_model.model.${m.module}.lora_A.weight`), [r, m.cols]);
        assert.deepEqual(shapes.get(`base_model.model.${m.module}.lora_B.weight`), [m.rows, r]);
      }
      return { result, config };
    };
    const { result, config } = await check(join(mixedDir, 'energy'), { energy: 0.999 });
    assert.deepEqual(
      result.modules.map((m) => [m.module, m.rank]),
      [
        ['model.layers.0.q_proj', 8],
        ['model.layers.0.v_proj', 4],
      ],
    );
    for (const m of result.modules) assert.ok(m.energy >= 0.999, `${m.module}: ${m.energy}`);
    assert.equal(result.energy, 0.999);
    // A tie (one module each): r is the larger rank, the other is in the patterns.
    assert.equal(config.r, 8);
    assert.deepEqual(config.rank_pattern, { 'model.layers.0.v_proj': 4 });

    const capped = await check(join(mixedDir, 'capped'), { energy: 0.999, maxRank: 6 });
    assert.deepEqual(
      capped.result.modules.map((m) => m.rank),
      [6, 4],
    );
    assert.ok(capped.result.modules[0]!.energy < 0.999);
    assert.equal(capped.result.maxRank, 6);

    await assert.rejects(
      extractLora(mixed.basePath, mixed.tunedPath, { energy: 1.5, outDir: join(mixedDir, 'x') }),
      /--energy must be in \(0, 1\], got 1\.5/,
    );
    await assert.rejects(
      extractLora(mixed.basePath, mixed.tunedPath, { rank: 4, energy: 0.9, outDir: mixedDir }),
      /either a rank or an energy target/,
    );
  } finally {
    await removeMixed();
  }
});

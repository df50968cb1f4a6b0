/**
 * `layerlens diff`, run as a user runs it (the CLI in a child process): a model against
 * its int8 copy written by `layerlens compress`, as text and as JSON, and bad input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ModelDiff } from '../../../src/shared/diff';
import { lowRankValues, normalValues } from '../../support/matrices';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../support/onnxBuilder';

const CLI = ['--import', 'tsx', 'src/cli/bin.ts'];
let folder: string;
let remove: () => Promise<void>;
let original: string;
let quantized: string;

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8' });
}

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-diff-cli-'));
  original = await writeModel(
    folder,
    'net.onnx',
    model(
      graph({
        initializers: [tensor('w', 'float32', [32, 8], normalValues(256, 4, 0.3))],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 8])],
        nodes: [node('MatMul', ['x', 'w'], ['y'], { name: 'proj' })],
      }),
    ),
  );
  const compressed = layerlens('compress', original, '--method', 'int8', '--json');
  assert.equal(compressed.status, 0, compressed.stderr);
  quantized = (JSON.parse(compressed.stdout) as { output: string }).output;
});
after(() => remove());

test('diff prints the pair, the inserted DequantizeLinear and the outputs', () => {
  const result = layerlens('diff', original, quantized, '--outputs', '--dim', 'batch=2');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /paired: 1 \(by name 0, by node 1, as factors 0\); changed 1/);
  assert.match(
    result.stdout,
    /w\s+same node as w_quantized\s+\[32, 8\]\s+float32 → int8 \(int8 per-channel\)/,
  );
  assert.match(result.stdout, /\+ added w_DequantizeLinear \(DequantizeLinear\)/);
  assert.match(result.stdout, /Outputs on 8 samples, generated \(seeds 0–7\): x \[2, 32\]/);
});

test('diff --json gives the whole diff', () => {
  const result = layerlens('diff', original, quantized, '--json');
  assert.equal(result.status, 0, result.stderr);
  const diff = JSON.parse(result.stdout) as ModelDiff;
  assert.equal(diff.pairs[0]!.namesB[0], 'w_quantized');
  assert.ok(diff.pairs[0]!.values!.relativeError < 0.01);
  assert.deepEqual(diff.structure!.opCountChanges, { DequantizeLinear: 1 });
});

test('a file that is not a model names the file; one file is a usage error', () => {
  const bad = join(folder, 'bad.onnx');
  writeFileSync(bad, 'not a model');
  const result = layerlens('diff', original, bad);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /bad\.onnx: not a valid ONNX model/);
  const usage = layerlens('diff', original);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /diff takes two model files/);
});

test('extract-lora writes the adapter and prints each matrix; --delta shows the rank of the update', async () => {
  const w = Float32Array.from(normalValues(48 * 32, 5, 0.1));
  const update = lowRankValues(48, 32, 2, 6);
  const base = await writeSafetensors(join(folder, 'base.safetensors'), [
    { name: 'proj.weight', dtype: 'F32', shape: [48, 32], data: w },
  ]);
  const tuned = await writeSafetensors(join(folder, 'tuned.safetensors'), [
    { name: 'proj.weight', dtype: 'F32', shape: [48, 32], data: w.map((v, i) => v + update[i]!) },
  ]);
  const out = join(folder, 'lora');
  const result = layerlens('extract-lora', base, tuned, '--rank', '2', '--out', out);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  assert.ok(existsSync(join(out, 'adapter_config.json')));
  assert.match(result.stdout, /proj\.weight\s+proj\s+48 × 32\s+2\s+100\.0%/);
  const delta = layerlens('diff', base, tuned, '--delta');
  assert.equal(delta.status, 0, delta.stderr);
  assert.match(delta.stdout, /Fine-tune analysis \(ΔW = B − A of 1 changed matrices\)/);
  assert.match(delta.stdout, /proj\.weight\s+48 × 32\s+\S+\s+\S+\s+\S+\s+\S+\s+100\.0%\s+100\.0%/);
  const usage = layerlens('extract-lora', base, tuned, '--out', out);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--rank must be a positive integer/);
  // An energy target: the rank-2 update needs rank 2 for 99.99% of its energy.
  const byEnergy = join(folder, 'lora-energy');
  const energy = layerlens(
    'extract-lora',
    base,
    tuned,
    '--energy',
    '0.9999',
    '--out',
    byEnergy,
    '--json',
  );
  assert.equal(energy.status, 0, energy.stderr);
  const extraction = JSON.parse(energy.stdout);
  assert.equal(extraction.energy, 0.9999);
  assert.deepEqual(
    extraction.modules.map((m: { rank: number }) => m.rank),
    [2],
  );
  const both = layerlens(
    'extract-lora',
    base,
    tuned,
    '--rank',
    '2',
    '--energy',
    '0.9',
    '--out',
    out,
  );
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--rank or --energy, not both/);
});

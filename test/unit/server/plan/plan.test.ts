/**
 * The planner end to end on real files: predicted sizes against the files written, size
 * targets met exactly (output file ≤ target) on a generated MLP, a generated safetensors
 * file and the Silero models, a plan no worse than uniform int8 at uniform int8's size
 * (whole-model deviation measured in onnxruntime), the recipe round trip through the CLI,
 * and clear errors for bad or mismatched recipes. Models are copied to a temporary folder.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../../../src/cli/main';
import { compressModel } from '../../../../src/server/compress';
import { compressPerTensor } from '../../../../src/server/compress/perTensor';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import { planLevels, planModel } from '../../../../src/server/plan';
import { applyRecipe } from '../../../../src/server/plan/apply';
import { predictSizes } from '../../../../src/server/plan/predict';
import { parseRecipe, readRecipe } from '../../../../src/server/plan/recipe';
import { outputDeviation } from '../../../../src/server/sensitivity/deviation';
import { scaledGaussian as weights } from '../../../support/matrices';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

let folder: string;
let remove: () => Promise<void>;
let mlp: string;
let safetensors: string;
const silero = new Map<string, string>();

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** X[1,64] → MatMul 64×128 → Relu → MatMul 128×128 → Relu → MatMul 128×16. */
async function writeMlp(path: string): Promise<string> {
  const g = graph({
    nodes: [
      node('MatMul', ['x', 'w1'], ['h1'], { name: 'fc1' }),
      node('Relu', ['h1'], ['a1']),
      node('MatMul', ['a1', 'w2'], ['h2'], { name: 'fc2' }),
      node('Relu', ['h2'], ['a2']),
      node('MatMul', ['a2', 'w3'], ['y'], { name: 'fc3' }),
    ],
    initializers: [
      tensor('w1', 'float32', [64, 128], weights(64, 128, 1, 0.2)),
      tensor('w2', 'float32', [128, 128], weights(128, 128, 2, 0.1)),
      tensor('w3', 'float32', [128, 16], weights(128, 16, 3, 0.1)),
    ],
    inputs: [valueInfo('x', 'float32', [1, 64])],
    outputs: [valueInfo('y', 'float32', [1, 16])],
  });
  return writeModel(folder, path, model(g));
}

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-plan-'));
  mlp = await writeMlp('mlp.onnx');
  safetensors = await writeSafetensors(join(folder, 'mlp.safetensors'), [
    {
      name: 'fc1.weight',
      dtype: 'F32',
      shape: [128, 64],
      data: Float32Array.from(weights(128, 64, 4, 0.1)),
    },
    { name: 'fc1.bias', dtype: 'F32', shape: [128], data: new Float32Array(128).fill(0.5) },
    {
      name: 'fc2.weight',
      dtype: 'F32',
      shape: [32, 128],
      data: Float32Array.from(weights(32, 128, 5, 0.1)),
    },
  ]);
  for (const version of ['legacy', 'v5', 'v6']) {
    const path = join(folder, `silero_vad_${version}.onnx`);
    await copyFile(`node_modules/@ricky0123/vad-web/dist/silero_vad_${version}.onnx`, path);
    silero.set(version, path);
  }
});
after(() => remove());

test('predicted bytes match the files written within 0.5% (ONNX and safetensors)', async () => {
  for (const path of [mlp, silero.get('legacy')!, silero.get('v5')!, safetensors]) {
    const opened = await openModelFile(path);
    const levels = planLevels();
    const prediction = await predictSizes(
      opened,
      opened.tensors.map((t) => t.info.index),
      levels,
    );
    for (const key of ['int8', 'int4:32', 'fp16']) {
      const steps = prediction.tensors.flatMap((t) => {
        const option = t.options.find((o) => o.key === key);
        return option
          ? [{ tensor: t.name, options: option.options, delta: option.bytes - t.bytesBefore }]
          : [];
      });
      if (steps.length === 0) {
        assert.ok(path.endsWith('.safetensors') && key === 'int4:32', `${path} ${key}: no option`);
        continue;
      }
      const predicted =
        prediction.fileBytesBefore +
        prediction.fileOverhead +
        steps.reduce((s, x) => s + x.delta, 0);
      const report = await compressPerTensor(path, steps);
      const actual = (await stat(report.output)).size;
      assert.ok(
        Math.abs(actual - predicted) <= 0.005 * actual + 256,
        `${path} ${key}: predicted ${predicted}, written ${actual}`,
      );
    }
  }
});

test('prune and 2:4 save nothing on disk: left out of size plans with the reason', async () => {
  const opened = await openModelFile(mlp);
  const prediction = await predictSizes(
    opened,
    [0],
    [
      { key: 'prune:0.5', label: 'prune', options: { method: 'prune', sparsity: 0.5 } },
      { key: 'int8', label: 'int8', options: { method: 'int8' } },
    ],
  );
  const [w1] = prediction.tensors;
  assert.deepEqual(
    w1!.options.map((o) => o.key),
    ['int8'],
  );
  assert.match(w1!.dropped[0]!.reason, /no smaller on disk/);
});

for (const [name, target] of [
  ['mlp.onnx', { kind: 'ratio', value: 3 }],
  ['mlp.safetensors', { kind: 'ratio', value: 2.5 }],
  ['silero_vad_legacy.onnx', { kind: 'ratio', value: 4 }],
  ['silero_vad_v5.onnx', { kind: 'sizeMB', value: 1.1 }],
  ['silero_vad_v6.onnx', { kind: 'ratio', value: 2 }],
] as const) {
  test(`plan meets its size target exactly: ${name} at ${target.kind} ${target.value}`, async () => {
    const path =
      name === 'mlp.onnx' ? mlp : name === 'mlp.safetensors' ? safetensors : join(folder, name);
    const before = await sha256(path);
    const plan = await planModel(path, { target, measured: false });
    assert.ok(plan.feasible);
    const limit =
      target.kind === 'sizeMB' ? target.value * 1e6 : plan.fileBytesBefore / target.value;
    assert.ok(plan.predictedFileBytes <= limit);
    const outPath = join(
      folder,
      `${name}.target-${target.value}${name.slice(name.lastIndexOf('.'))}`,
    );
    const result = await applyRecipe(path, plan.recipe, { refine: true, outPath });
    const written = (await stat(result.report.output)).size;
    assert.equal(result.report.output, outPath);
    assert.equal(written, result.report.fileBytesAfter);
    assert.ok(written <= limit, `${written} bytes > ${limit}`);
    assert.ok(result.targetMet);
    assert.equal(await sha256(path), before, 'the original is unchanged');
    const recipe = await readRecipe(result.recipePath);
    assert.deepEqual(recipe.steps, result.recipe.steps);
    const names = await readdir(folder);
    assert.ok(!names.some((n) => n.includes('plan-attempt')), `attempt files left: ${names}`);
  });
}

test('at uniform int8 size, the kept file deviates no more than uniform int8 (whole model, measured)', async () => {
  for (const version of ['legacy', 'v5', 'mlp']) {
    const path = version === 'mlp' ? mlp : silero.get(version)!;
    let uniformDeviation = NaN;
    const uniform = await compressModel(
      path,
      {
        tensors: [],
        options: { method: 'int8' },
        outPath: join(folder, `${version}.uniform-int8.onnx`),
      },
      {
        // Called once per sample input: the worst sample, as the plan's attempts count it.
        onValidationOutputs: (reference, result) => {
          const sample = outputDeviation('relativeL2', reference, result);
          uniformDeviation = Number.isNaN(uniformDeviation)
            ? sample
            : Math.max(uniformDeviation, sample);
        },
      },
    );
    const plan = await planModel(path, {
      target: { kind: 'sizeMB', value: uniform.fileBytesAfter / 1e6 },
      measured: false,
      metric: 'relativeL2',
    });
    const result = await applyRecipe(path, plan.recipe, {
      refine: true,
      outPath: join(folder, `${version}.plan-at-int8.onnx`),
    });
    assert.ok(result.report.fileBytesAfter <= uniform.fileBytesAfter);
    const kept = result.attempts.find((a) => a.output === result.report.output)!;
    assert.ok(Number.isFinite(kept.deviation) && Number.isFinite(uniformDeviation));
    assert.ok(
      kept.deviation <= uniformDeviation,
      `${version}: plan ${kept.deviation} vs uniform int8 ${uniformDeviation}`,
    );
  }
});

test('CLI: plan writes a recipe, apply re-applies it and reports the attempts', async () => {
  const path = silero.get('legacy')!;
  const recipePath = join(folder, 'legacy.cli.recipe.json');
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(' '));
  let planCode: number;
  let applyCode: number;
  const outPath = join(folder, 'legacy.cli.onnx');
  try {
    planCode = await main(['plan', path, '--ratio', '3', '--out', recipePath]);
    applyCode = await main(['apply', path, recipePath, '--out', outPath, '--json']);
  } finally {
    console.log = log;
  }
  assert.equal(planCode, 0);
  assert.equal(applyCode, 0);
  assert.ok(
    lines.some((line) => /TENSOR\s+CHOICE/.test(line)),
    'the plan table is printed',
  );
  const result = JSON.parse(lines[lines.length - 1]!) as {
    targetMet: boolean;
    attempts: { fileBytes: number }[];
  };
  assert.equal(result.targetMet, true);
  assert.ok(result.attempts.length >= 1);
  const recipe = await readRecipe(recipePath);
  assert.equal(recipe.model.sha256, await sha256(path));
  const errors: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(' '));
  try {
    assert.equal(await main(['plan', path, '--ratio', '2', '--out', recipePath]), 1);
    assert.equal(await main(['plan', path, '--ratio', '2', '--target-mb', '1']), 2);
  } finally {
    console.error = error;
  }
  assert.match(errors[0]!, /recipe file exists; LayerLens never overwrites/);
  assert.match(errors[1]!, /exactly one of --target-mb, --ratio or --max-deviation/);
  assert.deepEqual(await readRecipe(recipePath), recipe, 'the recipe is not overwritten');
  const size = (await stat(outPath)).size;
  assert.ok(size <= (await stat(path)).size / 3, `${size} bytes`);
});

test('bad and mismatched recipes are refused with the file and the problem', async () => {
  const plan = await planModel(mlp, { target: { kind: 'ratio', value: 2 }, measured: false });
  await assert.rejects(
    applyRecipe(silero.get('legacy')!, plan.recipe, { refine: false }),
    (error: unknown) =>
      error instanceof ModelFileError && /recipe was made for mlp\.onnx/.test(error.problem),
  );
  assert.throws(
    () => parseRecipe({ ...plan.recipe, version: 2 }, 'r.json'),
    (error: unknown) => error instanceof ModelFileError && /version 2 is not 1/.test(error.message),
  );
  assert.throws(
    () =>
      parseRecipe(
        { ...plan.recipe, steps: [{ tensor: 'w1', options: { method: 'zip' } }] },
        'r.json',
      ),
    /unknown method "zip"/,
  );
  const broken = join(folder, 'broken.recipe.json');
  await writeFile(broken, '{ not json');
  await assert.rejects(
    readRecipe(broken),
    (error: unknown) => error instanceof ModelFileError && error.file === broken,
  );
  await assert.rejects(
    applyRecipe(
      mlp,
      { ...plan.recipe, steps: [{ tensor: 'nope', options: { method: 'int8' } }] },
      { refine: false },
    ),
    /no tensor named "nope"/,
  );
});

test('deviation target (measured): the kept file meets it and is smaller than the original', async () => {
  const path = silero.get('legacy')!;
  const target = { kind: 'deviation', value: 0.02 } as const;
  const plan = await planModel(path, { target, measured: true, metric: 'relativeL2' });
  assert.ok(plan.recipe.measured);
  assert.ok(plan.feasible);
  assert.ok(plan.predictedFileBytes < plan.fileBytesBefore);
  const result = await applyRecipe(path, plan.recipe, {
    refine: true,
    outPath: join(folder, 'legacy.deviation.onnx'),
  });
  assert.ok(result.attempts.length >= 1 && result.attempts.length <= 6);
  for (const attempt of result.attempts.slice(1)) assert.ok(attempt.refinement);
  const kept = result.attempts.find((a) => a.output === result.report.output)!;
  assert.equal(result.targetMet, kept.deviation <= target.value);
  assert.ok(result.targetMet, `kept deviation ${kept.deviation}`);
  assert.ok(result.report.fileBytesAfter < plan.fileBytesBefore);
});

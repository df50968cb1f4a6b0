/**
 * Per-layer sensitivity on models the tests build, where the answer is known: a layer
 * whose output is masked away has zero measured sensitivity, the bottleneck of an MLP
 * ranks first, deviation grows with sparsity; the whole sweep runs in one onnxruntime
 * session and agrees with compressing the file for real; cache, cancel, bad files, and the
 * data-free proxy (also for safetensors).
 */
import assert from 'node:assert/strict';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { onnx } from 'onnx-proto';
import { compressModel } from '../../../../src/server/compress';
import { relativeFrobeniusError } from '../../../../src/server/compress/kernels';
import { ModelFileError } from '../../../../src/server/formats/types';
import { clearSensitivityCache, computeSensitivity } from '../../../../src/server/sensitivity';
import {
  DEFAULT_SWEEP,
  int4Level,
  nmLevel,
  pruneLevel,
} from '../../../../src/server/sensitivity/levels';
import { reconstruct } from '../../../../src/server/sensitivity/proxy';
import type { LayerSensitivity, SensitivityResult } from '../../../../src/shared/sensitivity';
import {
  constantNode,
  graph,
  ifNode,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { normalValues } from '../../../support/matrices';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-sensitivity-');

function randomValues(count: number, seed: number, scale = 0.3): number[] {
  return normalValues(count, seed, scale);
}

const BATCH = { 'validation.dimensions': { batch: 16 } };

function weight(name: string, rows: number, cols: number, seed: number): onnx.ITensorProto {
  return tensor(
    name,
    'float32',
    [rows, cols],
    randomValues(rows * cols, seed, 1 / Math.sqrt(rows)),
  );
}

let counter = 0;
async function save(m: onnx.IModelProto): Promise<string> {
  return writeModel(folder(), `model-${counter++}.onnx`, m);
}

function layer(result: SensitivityResult, name: string): LayerSensitivity {
  const found = result.layers.find((l) => l.name === name);
  assert.ok(found, `no layer ${name}`);
  return found;
}

function deviationAt(result: SensitivityResult, name: string, key: string): number {
  const point = layer(result, name).measured?.find((p) => p.key === key);
  assert.ok(point, `${name} has no measured ${key}`);
  return point.deviation;
}

/** y = x·A + (x·B)·0 : B's output is masked away. */
async function maskedModel(): Promise<string> {
  return save(
    model(
      graph({
        initializers: [
          weight('A', 32, 32, 1),
          weight('B', 32, 32, 2),
          tensor('zero', 'float32', [1], [0]),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 32])],
        nodes: [
          node('MatMul', ['x', 'A'], ['a'], { name: 'kept' }),
          node('MatMul', ['x', 'B'], ['b'], { name: 'masked' }),
          node('Mul', ['b', 'zero'], ['bz']),
          node('Add', ['a', 'bz'], ['y']),
        ],
      }),
    ),
  );
}

test('a layer whose output is masked away has zero measured sensitivity, in one session', async () => {
  const path = await maskedModel();
  const steps: [number, number][] = [];
  const result = await computeSensitivity(
    path,
    { indices: [], measured: true },
    { settings: BATCH, onProgress: (done, total) => steps.push([done, total]) },
  );
  assert.equal(result.sessions, 1);
  // Progress ends at its total: one step per (tensor, level), skipped levels included.
  assert.deepEqual(steps.at(-1), [2 * DEFAULT_SWEEP.length, 2 * DEFAULT_SWEEP.length]);
  assert.deepEqual(
    result.layers.map((l) => l.name),
    ['A', 'B'],
  );
  const masked = layer(result, 'B');
  const kept = layer(result, 'A');
  // Low-rank at these energies would not save parameters on a random 32 × 32 matrix.
  assert.equal(masked.measured!.length + masked.skipped!.length, DEFAULT_SWEEP.length);
  assert.ok(masked.skipped!.every((s) => s.key.startsWith('lowrank:')));
  assert.match(masked.skipped![0]!.reason, /not fewer than/);
  for (const point of masked.measured!) assert.equal(point.deviation, 0, point.key);
  for (const point of kept.measured!) assert.ok(point.deviation > 0, point.key);
  // Zero everywhere while the weight moved: flagged, so that plans fall back to the proxy.
  assert.equal(masked.unreached, true);
  assert.match(masked.note!, /did not move/);
  assert.equal(kept.unreached, undefined);
  // The proxy does not know about the mask: B's weights change as much as A's.
  assert.ok(masked.proxy.find((p) => p.key === 'prune:0.5')!.relativeError > 0.1);
  // One baseline run, then one per applicable (tensor, level), on each of the samples.
  const points = result.layers.reduce((sum, l) => sum + l.measured!.length, 0);
  assert.equal(result.samples, 8);
  assert.equal(result.runs, result.samples * (1 + points));
  assert.match(result.inputs, /generated \(seeds 0–7\): x \[16, 32\]/);
  assert.match(result.backend, /^cpu/);
});

test('the bottleneck of an MLP ranks most sensitive', async () => {
  // h = x + 0.1·relu(x·W1);  z = relu(h·down)·up;  y = z + 0.1·relu(z·W4)
  const path = await save(
    model(
      graph({
        initializers: [
          weight('wide1', 32, 32, 11),
          weight('down', 32, 2, 12),
          weight('up', 2, 32, 13),
          weight('wide2', 32, 32, 14),
          tensor('small', 'float32', [1], [0.1]),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 32])],
        nodes: [
          node('MatMul', ['x', 'wide1'], ['w1']),
          node('Relu', ['w1'], ['r1']),
          node('Mul', ['r1', 'small'], ['s1']),
          node('Add', ['x', 's1'], ['h']),
          node('MatMul', ['h', 'down'], ['d']),
          node('Relu', ['d'], ['rd']),
          node('MatMul', ['rd', 'up'], ['z']),
          node('MatMul', ['z', 'wide2'], ['w2']),
          node('Relu', ['w2'], ['r2']),
          node('Mul', ['r2', 'small'], ['s2']),
          node('Add', ['z', 's2'], ['y']),
        ],
      }),
    ),
  );
  for (const key of ['prune:0.5', 'int4:32', 'int8']) {
    const result = await computeSensitivity(
      path,
      {
        indices: [],
        measured: true,
        levels: [pruneLevel(0.5), int4Level(32), ...DEFAULT_SWEEP.filter((l) => l.key === 'int8')],
      },
      { settings: BATCH },
    );
    const ranking = result.layers
      .map((l) => ({ name: l.name, deviation: deviationAt(result, l.name, key) }))
      .sort((a, b) => b.deviation - a.deviation);
    assert.deepEqual(
      new Set(ranking.slice(0, 2).map((r) => r.name)),
      new Set(['down', 'up']),
      `${key}: ${JSON.stringify(ranking)}`,
    );
  }
});

test('deviation grows with sparsity on a random MLP, for every metric', async () => {
  const path = await save(
    model(
      graph({
        initializers: [
          weight('fc1', 32, 64, 21),
          weight('fc2', 64, 64, 22),
          weight('fc3', 64, 16, 23),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 16])],
        nodes: [
          node('MatMul', ['x', 'fc1'], ['a']),
          node('Tanh', ['a'], ['ta']),
          node('MatMul', ['ta', 'fc2'], ['b']),
          node('Tanh', ['b'], ['tb']),
          node('MatMul', ['tb', 'fc3'], ['y']),
        ],
      }),
    ),
  );
  const sparsities = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99];
  for (const metric of ['relativeL2', 'cosine', 'kl'] as const) {
    const result = await computeSensitivity(
      path,
      { indices: [], measured: true, metric, levels: sparsities.map(pruneLevel) },
      { settings: BATCH },
    );
    assert.equal(result.metric, metric);
    assert.equal(result.sessions, 1);
    for (const l of result.layers) {
      const curve = l.measured!.map((p) => p.deviation);
      for (let i = 1; i < curve.length; i++) {
        assert.ok(curve[i]! > curve[i - 1]!, `${metric} ${l.name}: ${curve.join(', ')}`);
      }
      const errors = l.proxy.map((p) => p.relativeError);
      for (let i = 1; i < errors.length; i++) assert.ok(errors[i]! > errors[i - 1]!);
    }
  }
});

test('a measured point equals the deviation of the file the compressor writes (subgraph and Constant weights)', async () => {
  const thenBranch = graph({
    name: 'then',
    nodes: [
      constantNode('inner.weight', weight('inner.weight', 32, 8, 31)),
      node('MatMul', ['x', 'inner.weight'], ['t'], { name: 'inner' }),
    ],
    outputs: [valueInfo('t', 'float32', ['batch', 8])],
  });
  const elseBranch = graph({
    name: 'else',
    initializers: [weight('else.weight', 32, 8, 34)],
    nodes: [
      node('MatMul', ['x', 'outer.weight'], ['e1']),
      node('MatMul', ['x', 'else.weight'], ['e2']),
      node('Add', ['e1', 'e2'], ['e']),
    ],
    outputs: [valueInfo('e', 'float32', ['batch', 8])],
  });
  const path = await save(
    model(
      graph({
        initializers: [weight('outer.weight', 32, 8, 32), tensor('flag', 'bool', [], [0])],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 8])],
        nodes: [
          constantNode('main.weight', weight('main.weight', 8, 8, 33)),
          ifNode('flag', ['z'], thenBranch, elseBranch, 'If_0'),
          node('MatMul', ['z', 'main.weight'], ['y'], { name: 'head' }),
        ],
      }),
    ),
  );
  const result = await computeSensitivity(
    path,
    { indices: [], measured: true },
    { settings: BATCH },
  );
  assert.equal(result.sessions, 1);
  assert.deepEqual(result.layers.map((l) => l.name).sort(), [
    'else.weight',
    'inner.weight',
    'main.weight',
    'outer.weight',
  ]);
  // flag is false: the then branch never runs.
  for (const point of layer(result, 'inner.weight').measured!) assert.equal(point.deviation, 0);
  const mismatches: string[] = [];
  for (const name of ['outer.weight', 'else.weight', 'main.weight']) {
    for (const method of ['nm', 'prune'] as const) {
      const key = method === 'nm' ? 'nm:2:4' : 'prune:0.5';
      const report = await compressModel(
        path,
        {
          tensors: [],
          tensorPattern: `^${name.replace('.', '\\.')}$`,
          options: { method, sparsity: 0.5 },
        },
        { settings: BATCH },
      );
      const expected = report.outputs[0]!.relativeL2;
      const measured = deviationAt(result, name, key);
      assert.ok(expected > 0);
      if (Math.abs(measured - expected) > 1e-5 * expected)
        mismatches.push(`${name} ${key}: sweep ${measured}, compressed file ${expected}`);
    }
  }
  assert.deepEqual(mismatches, []);
});

test('name clashes between branches and initializers listed as graph inputs (IR 3)', async () => {
  // Both branches hold their own initializer named "w"; the main graph's is also an input.
  const branch = (name: string, seed: number) =>
    graph({
      name,
      initializers: [weight('w', 32, 8, seed)],
      nodes: [node('MatMul', ['x', 'w'], [`${name}_out`])],
      outputs: [valueInfo(`${name}_out`, 'float32', ['batch', 8])],
    });
  const path = await save(
    model(
      graph({
        initializers: [weight('head', 8, 8, 61), tensor('flag', 'bool', [], [1])],
        inputs: [
          valueInfo('x', 'float32', ['batch', 32]),
          valueInfo('head', 'float32', [8, 8]),
          valueInfo('flag', 'bool', []),
        ],
        outputs: [valueInfo('y', 'float32', ['batch', 8])],
        nodes: [
          ifNode('flag', ['z'], branch('then', 62), branch('else', 63), 'If_0'),
          node('MatMul', ['z', 'head'], ['y']),
        ],
      }),
      { irVersion: 3, opsets: { '': 11 } },
    ),
  );
  const result = await computeSensitivity(
    path,
    { indices: [], measured: true, levels: [pruneLevel(0.5)] },
    { settings: BATCH },
  );
  assert.equal(result.sessions, 1);
  assert.match(result.inputs, /x \[16, 32\]/);
  assert.doesNotMatch(result.inputs, /head|flag/, 'weights are not sample inputs');
  const deviations = result.layers.map((l) => [l.name, l.measured![0]!.deviation > 0]);
  // flag is true: the then branch's "w" (listed first) moves the output, the else one does not.
  assert.deepEqual(deviations, [
    ['head', true],
    ['w', true],
    ['w', false],
  ]);
});

test('results are cached per file identity, metric and levels', async () => {
  clearSensitivityCache();
  const path = await maskedModel();
  const request = { indices: [], measured: true };
  const first = await computeSensitivity(path, request, { settings: BATCH });
  assert.equal(first.cached, false);
  const second = await computeSensitivity(path, request, { settings: BATCH });
  assert.equal(second.cached, true);
  assert.deepEqual(second.layers, first.layers);
  assert.equal(
    (await computeSensitivity(path, { ...request, metric: 'cosine' }, { settings: BATCH })).cached,
    false,
  );
  assert.equal(
    (
      await computeSensitivity(path, request, {
        settings: { 'validation.dimensions': { batch: 4 } },
      })
    ).cached,
    false,
  );
  const later = new Date(Date.now() + 5000);
  await utimes(path, later, later);
  assert.equal((await computeSensitivity(path, request, { settings: BATCH })).cached, false);
});

test('cancelling stops the sweep', async () => {
  clearSensitivityCache();
  const path = await maskedModel();
  const controller = new AbortController();
  let calls = 0;
  await assert.rejects(
    computeSensitivity(
      path,
      { indices: [], measured: true },
      {
        settings: BATCH,
        signal: controller.signal,
        onProgress: (done) => {
          calls++;
          if (done >= 3) controller.abort();
        },
      },
    ),
    (error: Error) => error.name === 'AbortError',
  );
  assert.ok(calls < 8, `${calls} progress calls after the cancel`);
  // Nothing was cached for the cancelled request.
  const fresh = await computeSensitivity(
    path,
    { indices: [], measured: true },
    { settings: BATCH },
  );
  assert.equal(fresh.cached, false);
});

test('a broken file is a ModelFileError naming it', async () => {
  const path = join(folder(), 'broken.onnx');
  await writeFile(path, new Uint8Array([0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0x0f, 0x01]));
  await assert.rejects(
    computeSensitivity(path, { indices: [], measured: true }),
    (error: Error) => {
      assert.ok(error instanceof ModelFileError, String(error));
      assert.equal(error.file, path);
      return true;
    },
  );
  const ok = await maskedModel();
  await assert.rejects(computeSensitivity(ok, { indices: [99], measured: false }), ModelFileError);
  await assert.rejects(
    computeSensitivity(ok, { indices: [], measured: false, levels: [pruneLevel(1.5)] }),
    /level prune:1\.5: prune: sparsity must be in \[0, 1\)/,
  );
});

test('the proxy: reconstruct matches the relative error and SQNR; levels a tensor cannot take are skipped with the reason', async () => {
  const path = await save(
    model(
      graph({
        initializers: [
          weight('fc', 32, 64, 41),
          tensor('bias', 'float32', [64], randomValues(64, 42)),
          weight('narrow', 2, 8, 43),
          tensor('W', 'float32', [1, 64, 16], randomValues(1024, 44)),
          tensor('R', 'float32', [1, 64, 16], randomValues(1024, 45)),
        ],
        inputs: [valueInfo('x', 'float32', [1, 1, 32])],
        outputs: [valueInfo('y', 'float32', [1, 1, 16]), valueInfo('n', 'float32', [1, 1, 8])],
        nodes: [
          node('MatMul', ['x', 'fc'], ['a']),
          node('Add', ['a', 'bias'], ['b']),
          node('Slice', ['b', 'starts', 'ends', 'axes'], ['b2']),
          node('LSTM', ['b', 'W', 'R'], ['', 'yh'], {
            attributes: [{ name: 'hidden_size', type: 2, i: 16 }],
          }),
          node('Reshape', ['yh', 'shape'], ['y']),
          node('MatMul', ['b2', 'narrow'], ['n']),
        ],
      }),
    ),
  );
  const result = await computeSensitivity(path, { indices: [], measured: false });
  assert.equal(result.sessions, 0);
  assert.equal(result.runs, 0);
  assert.deepEqual(
    result.layers.map((l) => l.name),
    ['fc', 'narrow', 'W', 'R'],
  );
  const fc = layer(result, 'fc');
  assert.equal(fc.measured, undefined);
  assert.equal(fc.proxy.length + (fc.skipped?.length ?? 0), DEFAULT_SWEEP.length);
  assert.ok(fc.proxy.length >= 8);
  for (const point of fc.proxy) {
    assert.ok(Math.abs(point.sqnrDb + 20 * Math.log10(point.relativeError)) < 1e-9);
  }
  const lstm = layer(result, 'W');
  assert.ok(lstm.skipped!.every((s) => s.key.startsWith('lowrank')));
  assert.match(lstm.skipped![0]!.reason, /MatMul, Gemm and Conv/);
  const narrow = layer(result, 'narrow');
  assert.ok(narrow.skipped!.some((s) => s.key === 'nm:2:4' && /too short/.test(s.reason)));
  // An explicitly named bias comes back with the reason it is not swept.
  const bias = await computeSensitivity(path, { indices: [1], measured: false });
  assert.match(bias.layers[0]!.note!, /1-D tensor/);
  assert.deepEqual(bias.layers[0]!.proxy, []);
  // reconstruct on its own: 2:4 keeps exactly half of each group of 4 along the input axis.
  const values = Float32Array.from(randomValues(32 * 64, 41, 1 / Math.sqrt(32)));
  const restored = await reconstruct(values, { rows: 32, cols: 64, inputAxis: 0 }, nmLevel(2, 4));
  for (let c = 0; c < 64; c++) {
    for (let g = 0; g < 32; g += 4) {
      let kept = 0;
      for (let i = g; i < g + 4; i++) if (restored[i * 64 + c] !== 0) kept++;
      assert.equal(kept, 2);
    }
  }
  assert.ok(
    Math.abs(
      relativeFrobeniusError(values, restored) -
        fc.proxy.find((p) => p.key === 'nm:2:4')!.relativeError,
    ) < 1e-12,
  );
});

test('safetensors: the proxy alone, even when measured is asked for', async () => {
  const path = await writeSafetensors(join(folder(), 'mlp.safetensors'), [
    {
      name: 'fc1.weight',
      dtype: 'F32',
      shape: [16, 32],
      data: Float32Array.from(randomValues(512, 51)),
    },
    { name: 'fc1.bias', dtype: 'F32', shape: [16], data: Float32Array.from(randomValues(16, 52)) },
  ]);
  const result = await computeSensitivity(path, { indices: [], measured: true });
  assert.equal(result.sessions, 0);
  assert.deepEqual(
    result.layers.map((l) => l.name),
    ['fc1.weight'],
  );
  assert.equal(result.layers[0]!.measured, undefined);
  const only = result.layers[0]!;
  assert.equal(only.proxy.length + (only.skipped?.length ?? 0), DEFAULT_SWEEP.length);
  const prune = result.layers[0]!.proxy.filter((p) => p.key.startsWith('prune:'));
  for (let i = 1; i < prune.length; i++)
    assert.ok(prune[i]!.relativeError > prune[i - 1]!.relativeError);
});

for (const version of ['legacy', 'v5', 'v6']) {
  test(`Silero VAD ${version}: the measured sweep runs end to end in one session`, async () => {
    const path = join(
      'node_modules',
      '@ricky0123',
      'vad-web',
      'dist',
      `silero_vad_${version}.onnx`,
    );
    const levels = [pruneLevel(0.5), int4Level(32)];
    const result = await computeSensitivity(path, { indices: [], measured: true, levels });
    assert.equal(result.sessions, 1);
    assert.ok(result.layers.length >= 8, `${result.layers.length} layers`);
    const measured = result.layers.filter((l) => l.measured && l.measured.length > 0);
    assert.equal(measured.length, result.layers.length);
    assert.ok(measured.some((l) => l.measured!.some((p) => p.deviation > 1e-3)));
    for (const l of measured) {
      for (const p of l.measured!) assert.ok(Number.isFinite(p.deviation) && p.deviation >= 0);
    }
    // v5 and v6 hold a 16 kHz and an 8 kHz branch; the sample inputs (sr = 16000) take one.
    if (version !== 'legacy') {
      // (In v6 the LSTM's recurrent weight is flagged too: from the zero sample state it does
      // not move the outputs.)
      const elseBranch = result.layers.filter((l) => l.name.includes('else_branch'));
      assert.ok(elseBranch.length > 0);
      for (const l of elseBranch) assert.equal(l.unreached, true, l.name);
      assert.ok(result.layers.some((l) => l.name.includes('then_branch') && !l.unreached));
    }
    // Each sample's baseline, then every point on each sample; finding the inputs may take
    // a few more runs (a retry with another length, or a size search).
    const points = measured.reduce((sum, l) => sum + l.measured!.length, 0);
    const baseline = result.runs - result.samples * points;
    assert.ok(baseline >= result.samples && baseline <= result.samples + 20, `${result.runs} runs`);
  });
}

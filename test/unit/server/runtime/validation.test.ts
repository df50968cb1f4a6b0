/**
 * Validation you can trust: sizes for open dimensions that exercise the model, several
 * samples, and "not validated" with the reason when the comparison could not have seen a
 * difference (flat or pinned outputs, compressed layers the inputs never reach). Every
 * failure path of validation gives its verdict or error and leaves no file behind.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { WaveFile } from 'wavefile';
import { compressModel } from '../../../../src/server/compress';
import { verdictText } from '../../../../src/shared/compress';
import { withOutputFiles } from '../../../../src/server/compress/output';
import { openModelFile } from '../../../../src/server/formats/registry';
import { grow, proposeSizes } from '../../../../src/server/runtime/inputSizing';
import { responseProblems } from '../../../../src/server/runtime/responsiveness';
import { findSampleSet } from '../../../../src/server/runtime/sampleSet';
import { validateOnnx } from '../../../../src/server/runtime/validate';
import { clearSensitivityCache, computeSensitivity } from '../../../../src/server/sensitivity';
import { planModel } from '../../../../src/server/plan';
import {
  encodeModel,
  graph,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import {
  reluDeadNet,
  saturatedSigmoidNet,
  spatialContrastNet,
  unreachedBranchNet,
} from '../../../support/validationModels';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-validation-');

const noSettings = { dimensions: {}, shapes: {} };

test('sizing: an image input with open height and width gets a realistic size, never 1, with the reason', () => {
  const specs = [{ name: 'image', dtype: 'float32', shape: [1, 3, 'height', 'width'] }];
  const proposal = proposeSizes(specs, [], noSettings);
  assert.deepEqual(proposal.shapes.get('image'), [1, 3, 256, 256]);
  assert.ok(proposal.choices.every((c) => c.role === 'spatial' && /image input/.test(c.why)));
  // A strip image (a text line): the open side follows the fixed one.
  const strip = proposeSizes(
    [{ name: 'x', dtype: 'float32', shape: [1, 3, 48, null] }],
    [],
    noSettings,
  );
  assert.deepEqual(strip.shapes.get('x'), [1, 3, 48, 192]);
  assert.match(strip.choices[0]!.why, /fixed height 48/);
  // The model's metadata wins over the convention; settings win over both.
  const fromMetadata = proposeSizes(specs, [{ key: 'imgsz', value: '[640, 480]' }], noSettings);
  assert.deepEqual(fromMetadata.shapes.get('image'), [1, 3, 640, 480]);
  assert.match(fromMetadata.choices[0]!.why, /metadata/);
  const fromSettings = proposeSizes(specs, [], {
    dimensions: { height: 32, width: 64 },
    shapes: {},
  });
  assert.deepEqual(fromSettings.shapes.get('image'), [1, 3, 32, 64]);
  assert.ok(fromSettings.choices.every((c) => c.fixed));
  // Sequences: [batch, time] gets the batch 1 and the sequence length.
  const audio = proposeSizes(
    [{ name: 'pcm', dtype: 'float32', shape: [null, null] }],
    [],
    noSettings,
  );
  assert.deepEqual(audio.shapes.get('pcm'), [1, 512]);
  // Growth doubles what may be searched, never what settings fixed.
  const grown = grow(proposeSizes(specs, [], noSettings))!;
  assert.deepEqual(grown.shapes.get('image'), [1, 3, 512, 512]);
  assert.equal(grow(fromSettings), null);
});

test('responsiveness: flat, pinned and all-zero outputs are named; varying ones pass', () => {
  const t = (values: number[]) => ({
    y: new ort.Tensor('float32', Float32Array.from(values), [2]),
  });
  assert.deepEqual(responseProblems([t([0.1, 0.5]), t([0.3, 0.2])], ['y']), []);
  assert.match(responseProblems([t([0.2, 0.5]), t([0.2, 0.5])], ['y'])[0]!, /same for every/);
  assert.match(
    responseProblems([t([0.9991, 0.9993]), t([0.9992, 0.9993])], ['y'])[0]!,
    /pinned near 1/,
  );
  assert.match(responseProblems([t([0, 0]), t([0, 0])], ['y'])[0]!, /is 0 for every/);
  // A probability near 0 everywhere (a detector on noise) is pinned, however it spreads.
  assert.match(
    responseProblems([t([0.001, 0.004]), t([0.003, 0.0001])], ['y'])[0]!,
    /pinned near 0/,
  );
  assert.deepEqual(responseProblems([t([0.001, 0.4]), t([0.003, 0.0001])], ['y']), []);
  // A few stray values in between (≤ 0.1%) do not unpin a map of thousands.
  const map = (k: number) => {
    const values = new Float32Array(4000).map((_, i) => ((i * (k + 1)) % 7 === 0 ? 0.002 : 0));
    values[k] = 0.3;
    return { y: new ort.Tensor('float32', values, [4000]) };
  };
  assert.match(responseProblems([map(0), map(1)], ['y'])[0]!, /pinned near 0 .*all but 2 of 8000/);
  assert.match(responseProblems([t([0.1, 0.5])], ['y'])[0]!, /only 1 sample/);
});

test('the verdict text: validated with the worst cosine, substantial changes named, reasons when not', () => {
  assert.equal(
    verdictText({ validated: true, reasons: [], worstCosine: 0.99951, samples: 8 }),
    'validated: worst output cosine 0.9995 over 8 samples',
  );
  assert.match(
    verdictText({ validated: true, reasons: [], worstCosine: 7e-6, samples: 8 }),
    /^validated, and the outputs changed substantially: worst output cosine 7\.0e-6/,
  );
  assert.equal(verdictText({ validated: false, reasons: ['a', 'b'] }), 'not validated: a; b');
});

test('a conv net that is constant at 1×1: the size search grows the open axes until it responds', async () => {
  // Eight channels: not an image input, so its open axes start at 1 and are searched.
  const proto = spatialContrastNet({ channels: 8, dims: ['rows', 'cols'] });
  const session = await ort.InferenceSession.create(encodeModel(proto));
  const specs = [{ name: 'image', dtype: 'float32', shape: [1, 8, 'rows', 'cols'] }];
  assert.deepEqual(proposeSizes(specs, [], noSettings).shapes.get('image'), [1, 8, 1, 1]);
  const found = await findSampleSet(
    join(folder(), 'x.onnx'),
    { inputs: specs, metadata: [] },
    {},
    (f) => session.run(f),
  );
  await session.release();
  assert.ok(!('skipped' in found));
  assert.deepEqual(found.problems, []);
  const shape = found.feeds[0]!['image']!.dims;
  assert.ok(shape[2]! > 1 && shape[3]! > 1, `${shape}`);
  assert.match(found.description, /grown to \d+ because the outputs did not respond at 1/);
  assert.equal(found.feeds.length, 8);
});

test('an image model with open height and width is validated at a realistic size; at 1×1 it is not', async () => {
  const path = await writeModel(folder(), 'contrast.onnx', spatialContrastNet());
  const report = await compressModel(path, { tensors: [], options: { method: 'int8' } });
  assert.equal(report.verdict.validated, true, report.verdict.reasons.join('; '));
  assert.match(report.inputs, /8 samples/);
  assert.match(report.inputs, /image \[1, 3, 256, 256\] \(height=256: image input/);
  const logits = report.outputs[0]!;
  assert.equal(logits.samples, 8);
  assert.ok(logits.cosine <= logits.meanCosine! && logits.cosine > 0.9, `${logits.cosine}`);
  // What validation used to do (every open dimension 1): the outputs cannot move.
  const tiny = await compressModel(
    path,
    { tensors: [], options: { method: 'int4' } },
    { settings: { 'validation.dimensions': { height: 1, width: 1 } } },
  );
  assert.equal(tiny.verdict.validated, false);
  assert.match(tiny.verdict.reasons.join(), /output 'logits' is the same for every sample input/);
});

test('a saturated sigmoid head is not validated, with the reason', async () => {
  const path = await writeModel(folder(), 'sigmoid.onnx', saturatedSigmoidNet());
  const report = await compressModel(path, { tensors: [], options: { method: 'int4' } });
  assert.equal(report.verdict.validated, false);
  assert.match(report.verdict.reasons.join(), /output 'score' is pinned near 1/);
  // The deviation itself is tiny: exactly what made the old report look fine.
  assert.ok(report.outputs[0]!.relativeL2 < 1e-3);
});

test('outputs that are 0 for every input are not validated', async () => {
  const path = await writeModel(folder(), 'dead.onnx', reluDeadNet());
  const report = await compressModel(path, { tensors: [], options: { method: 'int8' } });
  assert.equal(report.verdict.validated, false);
  assert.match(report.verdict.reasons.join(), /is 0 for every sample input/);
});

test('compressing only a layer the inputs never reach is not validated; the sweep flags the layer', async () => {
  const path = await writeModel(folder(), 'branch.onnx', unreachedBranchNet());
  const report = await compressModel(path, {
    tensors: [],
    tensorPattern: '^unused\\.weight$',
    options: { method: 'int4' },
  });
  assert.ok(report.tensors.some((t) => !t.skipped && t.relativeError > 0));
  assert.equal(report.verdict.validated, false);
  assert.match(report.verdict.reasons.join(), /do not reach the compressed layers/);
  const reached = await compressModel(path, {
    tensors: [],
    tensorPattern: '^used\\.weight$',
    options: { method: 'int4' },
  });
  assert.equal(reached.verdict.validated, true, reached.verdict.reasons.join('; '));
  clearSensitivityCache();
  const sensitivity = await computeSensitivity(path, { indices: [], measured: true });
  const unused = sensitivity.layers.find((l) => l.name === 'unused.weight')!;
  const used = sensitivity.layers.find((l) => l.name === 'used.weight')!;
  assert.equal(unused.unreached, true);
  assert.equal(used.unreached, undefined);
  assert.equal(sensitivity.inputProblems, undefined);
});

test('a plan on inputs that cannot show a deviation says so; one whose every measurement is 0 uses the proxy', async () => {
  const path = await writeModel(folder(), 'sigmoid-plan.onnx', saturatedSigmoidNet());
  clearSensitivityCache();
  const plan = await planModel(path, {
    target: { kind: 'ratio', value: 4 },
    measured: true,
    metric: 'relativeL2',
  });
  assert.equal(plan.warnings.length, 1);
  assert.match(
    plan.warnings[0]!,
    /cannot fully show a deviation .*pinned near 1.*may understate it/,
  );
  // A model whose sample inputs never move the output at all: every measurement is 0.
  const dead = await writeModel(folder(), 'dead-plan.onnx', reluDeadNet());
  clearSensitivityCache();
  const deadPlan = await planModel(dead, {
    target: { kind: 'ratio', value: 3 },
    measured: true,
    metric: 'relativeL2',
  });
  assert.match(deadPlan.warnings.join(), /every measured sensitivity is 0.*proxy stood in/);
  // Proxy deviations are not zero: a zero would make every level look free.
  const changed = deadPlan.steps.filter((s) => s.options);
  assert.ok(changed.length > 0 && changed.every((s) => s.predictedDeviation > 0));
});

/** A float model y = ReduceSum(Reshape(x, shape)) with input x [1, 'n']. */
function reshapeModel(shape: readonly number[]) {
  return model(
    graph({
      initializers: [tensor('shape', 'int64', [shape.length], shape.map(BigInt))],
      inputs: [valueInfo('x', 'float32', [1, 'n'])],
      outputs: [valueInfo('y', 'float32', [])],
      nodes: [
        node('Reshape', ['x', 'shape'], ['r']),
        node('ReduceSum', ['r'], ['y'], { attributes: [] }),
      ],
    }),
  );
}

async function leftFiles(): Promise<string[]> {
  return (await readdir(folder())).filter((name) => name.startsWith('failing'));
}

/** Run validateOnnx inside the output-file job as compression does, writing `bytes`. */
async function validateWritten(
  original: string,
  written: ReturnType<typeof reshapeModel>,
  bytes: Uint8Array,
) {
  const opened = await openModelFile(original);
  const output = { name: 'int8', outPath: join(folder(), 'failing.int8.onnx') };
  return withOutputFiles(original, output, async (files) => {
    await writeFile(files.temp(files.path), bytes);
    await files.commit();
    return validateOnnx(original, files.path, written, opened.summary, true);
  });
}

test('validation failures: malformed, unloadable, failing output models throw and leave no file', async () => {
  const original = await writeModel(folder(), 'failing.onnx', reshapeModel([1, -1]));
  const good = reshapeModel([1, -1]);
  // Malformed: a node reads a name nothing produces.
  const malformed = reshapeModel([1, -1]);
  malformed.graph!.node![1]!.input = ['missing'];
  await assert.rejects(
    validateWritten(original, malformed, encodeModel(malformed)),
    /compressed model is malformed: .*'missing'/,
  );
  assert.deepEqual(await leftFiles(), ['failing.onnx']);
  // Not loadable by onnxruntime.
  await assert.rejects(
    validateWritten(original, good, new Uint8Array([1, 2, 3, 4])),
    /onnxruntime cannot load the compressed model/,
  );
  assert.deepEqual(await leftFiles(), ['failing.onnx']);
  // Loads, but fails on inputs the original accepts ([1, 512] cannot become [1, 16]).
  const narrow = reshapeModel([1, 16]);
  await assert.rejects(
    validateWritten(original, narrow, encodeModel(narrow)),
    /fails on inputs the original accepts/,
  );
  assert.deepEqual(await leftFiles(), ['failing.onnx']);
  // The original itself fails on every sample size tried: not validated, with the reason.
  const picky = await writeModel(folder(), 'picky.onnx', reshapeModel([1, 7]));
  const pickyProto = reshapeModel([1, 7]);
  const result = await (async () => {
    const opened = await openModelFile(picky);
    return validateOnnx(picky, picky, pickyProto, opened.summary, true);
  })();
  assert.equal(result.verdict.validated, false);
  assert.match(result.verdict.reasons[0]!, /original model fails on the sample inputs/);
  assert.deepEqual(result.outputs, []);
});

test('a folder of PNG images feeds the image input, one sample per image, in NCHW and NHWC', async () => {
  const images = join(folder(), 'images');
  await mkdir(images);
  // Three 64 × 32 images; pixel (x, y) of image k holds R = 3(k+1)x, G = 5(k+1)y, B = 200 − 60k.
  for (let k = 0; k < 3; k++) {
    const png = new PNG({ width: 64, height: 32 });
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 64; x++)
        png.data.set([3 * (k + 1) * x, 5 * (k + 1) * y, 200 - 60 * k, 255], (y * 64 + x) * 4);
    }
    await writeFile(join(images, `img${k}.png`), PNG.sync.write(png));
  }
  const path = await writeModel(folder(), 'contrast-images.onnx', spatialContrastNet());
  const report = await compressModel(
    path,
    { tensors: [], options: { method: 'int8' } },
    { settings: { 'validation.inputsFolder': 'images' } },
  );
  assert.match(
    report.inputs,
    /^3 samples, 3 of 3 image files from .*images for input 'image': image \[1, 3, 32, 64\]/,
  );
  assert.equal(report.outputs[0]!.samples, 3);
  assert.equal(report.verdict.validated, true, report.verdict.reasons.join('; '));
  // The values fed: channel planes in NCHW, scaled to [0, 1].
  for (const [layout, shape] of [
    ['NCHW', [1, 3, 'height', 'width']],
    ['NHWC', [1, 'height', 'width', 3]],
  ] as const) {
    const found = await findSampleSet(
      path,
      { inputs: [{ name: 'image', dtype: 'float32', shape }], metadata: [] },
      { 'validation.inputsFolder': 'images' },
      async (feeds) => ({
        y: new ort.Tensor(
          'float32',
          Float32Array.from(feeds['image']!.data as Float32Array).slice(0, 4),
          [4],
        ),
      }),
    );
    assert.ok(!('skipped' in found));
    const fed = found.feeds[2]!['image']!;
    const data = fed.data as Float32Array;
    const at = (c: number, y: number, x: number) =>
      layout === 'NCHW' ? data[c * 32 * 64 + y * 64 + x]! : data[(y * 64 + x) * 3 + c]!;
    assert.deepEqual(fed.dims, layout === 'NCHW' ? [1, 3, 32, 64] : [1, 32, 64, 3]);
    assert.ok(Math.abs(at(0, 5, 7) - 63 / 255) < 1e-6, `${layout} R`);
    assert.ok(Math.abs(at(1, 5, 7) - 75 / 255) < 1e-6, `${layout} G`);
    assert.ok(Math.abs(at(2, 5, 7) - 80 / 255) < 1e-6, `${layout} B`);
  }
});

test('WAV files feed an audio input at the model rate: Silero on three recordings', async () => {
  const sounds = join(folder(), 'sounds');
  await mkdir(sounds);
  // 1024 samples at 8 kHz each: resampled to 16 kHz they are 2048 samples long.
  for (let k = 0; k < 3; k++) {
    const wav = new WaveFile();
    const tone = Array.from({ length: 1024 }, (_, i) =>
      Math.round(12000 * Math.sin((2 * Math.PI * (220 + 110 * k) * i) / 8000)),
    );
    wav.fromScratch(1, 8000, '16', tone);
    await writeFile(join(sounds, `tone${k}.wav`), wav.toBuffer());
  }
  const path = join(folder(), 'silero_vad_legacy.onnx');
  await copyFile('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx', path);
  const opened = await openModelFile(path);
  const session = await ort.InferenceSession.create(path);
  const found = await findSampleSet(
    path,
    opened.summary,
    { 'validation.inputsFolder': 'sounds' },
    (feeds) => session.run(feeds),
  );
  await session.release();
  assert.ok(!('skipped' in found));
  assert.match(found.description, /3 of 3 WAV files from .*sounds for input 'input'/);
  assert.equal(found.feeds.length, 8);
  const pcm = found.feeds[1]!['input']!;
  assert.deepEqual(pcm.dims, [1, 2048]);
  // Sample 2i at 16 kHz is sample i at 8 kHz: 12000/32768 · sin(2π·330·i/8000).
  const values = pcm.data as Float32Array;
  const i = 37;
  assert.ok(
    Math.abs(
      values[2 * i]! - Math.round(12000 * Math.sin((2 * Math.PI * 330 * i) / 8000)) / 32768,
    ) < 1e-3,
  );
});

test('when growing does not help, the first sizes are kept and the search is reported', async () => {
  const specs = [{ name: 'image', dtype: 'float32', shape: [1, 8, 'rows', 'cols'] }];
  // A constant stand-in for the model: its outputs never respond at any size.
  let runs = 0;
  const found = await findSampleSet(
    join(folder(), 'y.onnx'),
    { inputs: specs, metadata: [] },
    {},
    async () => {
      runs++;
      return { y: new ort.Tensor('float32', Float32Array.from([0.5, 0.25]), [2]) };
    },
  );
  assert.ok(!('skipped' in found));
  assert.deepEqual(found.feeds[0]!['image']!.dims, [1, 8, 1, 1]);
  assert.match(
    found.description,
    /growing the open axes up to image \[1, 8, \d+, \d+\] did not make the outputs respond; the first sizes were kept/,
  );
  assert.match(found.problems[0]!, /same for every sample input/);
  assert.ok(runs > 8, `${runs} runs: the search ran`);
});

/**
 * A real model at opset 9 whose opset cannot be raised: the ddddocr recognizer (PyTorch,
 * fetched by scripts/fetch-models.mjs, shipped at opset 12) stamped opset 9 with a no-op
 * Clip in the old attribute form by python3-onnx (test/support/derivedModels.ts says how;
 * the checker verifies it against opset 9). Every method reaches every weight it takes,
 * with no tensor refused for the opset: int8 is written as Cast + Mul and int4 as codes
 * two per byte unpacked with standard operators. The written model keeps opset 9, runs in
 * onnxruntime (output cosine printed), passes the ONNX checker, and the planner's
 * predicted sizes match the written files.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { onnx } from 'onnx-proto';
import type { CompressionOptions } from '../../../../src/shared/compress';
import { compressModel } from '../../../../src/server/compress';
import { compressPerTensor } from '../../../../src/server/compress/perTensor';
import { openModelFile } from '../../../../src/server/formats/registry';
import { planLevels } from '../../../../src/server/plan';
import { predictSizes } from '../../../../src/server/plan/predict';
import { deriveHalfModel, deriveOldOpsetModel } from '../../../support/derivedModels';
import { makeTempFolder } from '../../../support/onnxBuilder';
import { checkOnnxModel } from '../../../support/python';

let folder: string;
let remove: () => Promise<void>;
let path: string;

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-opset9-'));
  const source = join(folder, 'ddddocr.onnx');
  await copyFile('.tmp/models/ddddocr-common.onnx', source);
  path = join(folder, 'ddddocr-opset9.onnx');
  deriveOldOpsetModel(source, path, 9);
});
after(() => remove());

/** The float weights of two or more dimensions no method takes: the LSTM's bias. */
const NOT_WEIGHTS = 1;

const CASES: readonly { options: CompressionOptions; detail: RegExp; cosine: number }[] = [
  { options: { method: 'int8' }, detail: /Cast and Mul, opset 9 kept/, cosine: 0.999 },
  {
    options: { method: 'int4', blockSize: 32, int4Format: 'dequantizelinear' },
    detail: /two per byte, unpacked with Cast, Div, Floor, Mul and Sub; opset 9 kept/,
    cosine: 0.95,
  },
  { options: { method: 'prune', sparsity: 0.5 }, detail: /magnitude pruning/, cosine: 0.5 },
  { options: { method: 'nm' }, detail: /2:4 pruning/, cosine: 0.5 },
  // An explicit rank keeps the SVD of the 8210 × 1024 Gemm short.
  { options: { method: 'lowrank', rank: 8 }, detail: /rank 8 of/, cosine: 0.5 },
  { options: { method: 'fp16' }, detail: /float16 storage/, cosine: 0.9999 },
];

for (const { options, detail, cosine } of CASES) {
  test(`ddddocr at opset 9: ${options.method} reaches every weight and keeps opset 9`, async () => {
    const opened = await openModelFile(path);
    const weights = opened.tensors.filter(
      (t) => t.info.dtype === 'float32' && t.info.shape.length >= 2,
    ).length;
    const report = await compressModel(path, {
      tensors: [],
      options,
      outPath: join(folder, `ddddocr-opset9-${options.method}.onnx`),
    });
    const done = report.tensors.filter((t) => !t.skipped);
    for (const t of report.tensors.filter((r) => r.skipped)) {
      assert.doesNotMatch(t.detail, /opset|DequantizeLinear/, `${t.name}: ${t.detail}`);
    }
    if (options.method === 'lowrank') {
      // Only Gemm and Conv weights: the LSTM's and the embedding-like ones are not matrices it splits.
      assert.ok(done.length >= 10, `${done.length} weights`);
    } else {
      assert.equal(done.length, weights - NOT_WEIGHTS);
    }
    for (const t of done) assert.match(t.detail, detail);
    assert.ok(report.verdict.validated, report.validation.join('; '));
    const worst = report.outputs[0]!.cosine;
    console.log(`ddddocr opset 9, ${options.method}: output cosine ${worst.toFixed(6)}`);
    assert.ok(worst > cosine, `${worst}`);
    const written = onnx.ModelProto.decode(await readFile(report.output));
    assert.equal(Number(written.opsetImport!.find((o) => !o.domain)!.version), 9);
    assert.equal(checkOnnxModel(report.output).error, null);
  });
}

test('ddddocr at opset 9: the planner predicts the Cast + Mul and unpacked int4 forms', async () => {
  const opened = await openModelFile(path);
  const prediction = await predictSizes(
    opened,
    opened.tensors.map((t) => t.info.index),
    planLevels(),
  );
  for (const key of ['int8', 'int4:32']) {
    const steps = prediction.tensors.flatMap((t) => {
      const option = t.options.find((o) => o.key === key);
      return option
        ? [{ tensor: t.name, options: option.options, delta: option.bytes - t.bytesBefore }]
        : [];
    });
    assert.ok(steps.length >= 20, `${key}: ${steps.length} tensors offered`);
    const predicted =
      prediction.fileBytesBefore + prediction.fileOverhead + steps.reduce((s, x) => s + x.delta, 0);
    const report = await compressPerTensor(path, steps);
    const actual = (await stat(report.output)).size;
    console.log(`ddddocr opset 9, plan ${key}: predicted ${predicted}, written ${actual}`);
    assert.ok(
      Math.abs(actual - predicted) <= 0.005 * actual + 256,
      `${key}: predicted ${predicted}, written ${actual}`,
    );
  }
});

for (const options of [
  { method: 'int8' },
  { method: 'int4', blockSize: 32, int4Format: 'dequantizelinear' },
] as const) {
  test(`ddddocr at opset 9 derived to float16: ${options.method} in the old forms, Cast to float16`, async () => {
    const half = join(folder, `ddddocr-opset9-float16-${options.method}.onnx`);
    const converted = deriveHalfModel(path, half, 'float16');
    const report = await compressModel(half, {
      tensors: [],
      options,
      outPath: join(folder, `ddddocr-opset9-float16-${options.method}-out.onnx`),
    });
    const done = report.tensors.filter((t) => !t.skipped);
    assert.equal(done.length, converted - NOT_WEIGHTS);
    for (const t of done) assert.match(t.detail, /opset 9 kept.*Cast to float16\)/);
    assert.ok(report.verdict.validated, report.validation.join('; '));
    const worst = report.outputs[0]!.cosine;
    console.log(`ddddocr opset 9 float16, ${options.method}: output cosine ${worst.toFixed(6)}`);
    assert.ok(worst > 0.95, `${worst}`);
    assert.equal(checkOnnxModel(report.output).error, null);
  });
}

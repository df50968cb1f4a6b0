/**
 * A plan on a real image model with an open spatial axis: ddddocr's CRNN text recognizer
 * (PyTorch export, opset 12, input [1, 1, 64, image_width]; fetched by
 * scripts/fetch-models.mjs). Validation must choose a realistic width, and the plan's
 * file must either keep the output at a realistic size, measured here independently of
 * LayerLens's own validation, or say "not validated".
 */
import assert from 'node:assert/strict';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { planModel } from '../../../../src/server/plan';
import { applyRecipe } from '../../../../src/server/plan/apply';
import { seededUniform } from '../../../../src/server/runtime/sampleInputs';
import { makeTempFolder } from '../../../support/onnxBuilder';

const FETCHED = '.tmp/models/ddddocr-common.onnx';

let folder: string;
let remove: () => Promise<void>;
let path: string;
before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-real-validation-'));
  path = join(folder, 'recognizer.onnx');
  await copyFile(FETCHED, path).catch(() => {
    throw new Error(`${FETCHED} is missing: run node scripts/fetch-models.mjs`);
  });
});
after(() => remove());

/** Mean cosine of two models' outputs over `count` seeded inputs of `shape`. */
async function realisticCosine(a: string, b: string, shape: number[], count: number) {
  const [first, second] = await Promise.all([
    ort.InferenceSession.create(a),
    ort.InferenceSession.create(b),
  ]);
  let sum = 0;
  for (let k = 0; k < count; k++) {
    const next = seededUniform(1000 + k);
    const data = Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, next);
    const feed = { [first.inputNames[0]!]: new ort.Tensor('float32', data, shape) };
    const x = (await first.run(feed))[first.outputNames[0]!]!.data as Float32Array;
    const y = (await second.run(feed))[second.outputNames[0]!]!.data as Float32Array;
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < x.length; i++) {
      xy += x[i]! * y[i]!;
      xx += x[i]! * x[i]!;
      yy += y[i]! * y[i]!;
    }
    sum += xy / Math.sqrt(xx * yy);
  }
  await Promise.all([first.release(), second.release()]);
  return sum / count;
}

test('a 4× plan on a CRNN recognizer with an open width keeps its output at a realistic width, or says not validated', async () => {
  const plan = await planModel(path, {
    target: { kind: 'ratio', value: 4 },
    measured: false,
    metric: 'relativeL2',
  });
  const result = await applyRecipe(path, plan.recipe, { refine: false });
  const report = result.report;
  // The open width got a realistic size, and the report says which and why.
  assert.match(report.inputs, /input1 \[1, 1, 64, 256\] \(image_width=256: 4× the fixed height 64/);
  assert.ok(report.fileBytesAfter * 3.9 < report.fileBytesBefore, `${report.fileBytesAfter}`);
  // Checked here at another realistic width (a 320-pixel text line), on inputs of its own.
  const cosine = await realisticCosine(path, report.output, [1, 1, 64, 320], 4);
  if (result.verdict.validated) {
    assert.ok(cosine > 0.99, `validated, but the cosine at 64 × 320 is ${cosine}`);
  } else {
    assert.match(result.verdict.reasons.join(), /\S/);
  }
  console.log(
    `ddddocr recognizer, 4× plan: ${report.fileBytesAfter} bytes, ${result.verdict.validated ? 'validated' : 'not validated'}, cosine at 64 × 320: ${cosine.toFixed(5)}`,
  );
  // Nothing but the original, the kept file and its outputs folder (report and recipe) is left.
  const left = (await readdir(folder)).sort();
  assert.equal(left.length, 3, `${left}`);
  const outputs = left.find((name) => name.endsWith('.layerlens'));
  assert.ok(outputs, `${left}`);
  assert.equal((await readdir(join(folder, outputs))).length, 2, `${outputs}`);
});

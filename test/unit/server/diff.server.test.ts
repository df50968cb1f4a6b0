/**
 * layerlens/diff over the real server process: a model against its int8 copy, with the
 * outputs run, and a request naming a file that is not a model.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LspMethods, MODEL_ERROR_CODE } from '../../../src/shared/lsp';
import { compressModel } from '../../../src/server/compress';
import { normalValues } from '../../support/matrices';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../support/onnxBuilder';
import { startServer, type ServerProcess } from '../../support/serverProcess';

let server: ServerProcess;
let folder: string;
let remove: () => Promise<void>;
let original: string;
let quantized: string;

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-diff-server-'));
  original = await writeModel(
    folder,
    'net.onnx',
    model(
      graph({
        initializers: [tensor('w', 'float32', [32, 8], normalValues(256, 8, 0.3))],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 8])],
        nodes: [node('MatMul', ['x', 'w'], ['y'], { name: 'proj' })],
      }),
    ),
  );
  quantized = (await compressModel(original, { tensors: [], options: { method: 'int8' } })).output;
  server = await startServer({ 'stats.workerCount': 1 });
});
after(async () => {
  server.stop();
  await remove();
});

test('layerlens/diff pairs the renamed weight, lists the inserted DequantizeLinear and compares the outputs', async () => {
  const diff = await server.request(LspMethods.diff, {
    uri: pathToFileURL(original).toString(),
    other: pathToFileURL(quantized).toString(),
    outputs: true,
    workDoneToken: 'diff-1',
  });
  assert.equal(diff.pairs.length, 1);
  assert.deepEqual(diff.pairs[0]!.namesB, ['w_quantized']);
  assert.equal(diff.pairs[0]!.pairing, 'node');
  assert.deepEqual(diff.structure!.opCountChanges, { DequantizeLinear: 1 });
  assert.ok(diff.outputs!.outputs[0]!.cosine > 0.999);
  const progress = server.progressByToken.get('diff-1') ?? [];
  assert.equal(progress[0]?.kind, 'begin');
  assert.match(progress[0]!.title!, /comparing net\.onnx with net\.int8\.onnx/);
});

test('a file that is not a model is a model error naming it', async () => {
  const bad = join(folder, 'notes.onnx');
  await writeFile(bad, 'hello');
  await assert.rejects(
    server.request(LspMethods.diff, {
      uri: pathToFileURL(original).toString(),
      other: pathToFileURL(bad).toString(),
    }),
    (error: { code: number; data: { file: string } }) =>
      error.code === MODEL_ERROR_CODE && error.data.file === bad,
  );
});

test('layerlens/pairDetail gives the int8 pair both spectra, |ΔW| and its analysis, with progress on the token', async () => {
  const detail = await server.request(LspMethods.pairDetail, {
    uri: pathToFileURL(original).toString(),
    other: pathToFileURL(quantized).toString(),
    indexA: 0,
    workDoneToken: 'detail-1',
  });
  // B's decoded int8 values are within a quantization step of A's.
  assert.equal(detail.spectrumA!.singularValues.length, 8);
  assert.equal(detail.spectrumB!.singularValues.length, 8);
  const [sigmaA, sigmaB] = [
    detail.spectrumA!.singularValues[0]!,
    detail.spectrumB!.singularValues[0]!,
  ];
  assert.ok(Math.abs(sigmaA - sigmaB) < 0.01 * sigmaA, `${sigmaA} vs ${sigmaB}`);
  assert.deepEqual([detail.heatmap!.info.rows, detail.heatmap!.info.cols], [32, 8]);
  assert.ok(detail.delta!.relativeChange > 0 && detail.delta!.relativeChange < 0.02);
  const progress = server.progressByToken.get('detail-1') ?? [];
  assert.equal(progress[0]?.kind, 'begin');
  assert.equal(progress.at(-1)?.kind, 'end');
});

/**
 * layerlens/compress over JSON-RPC against the real server process: a compressed file and
 * its report come back with work-done progress; a model error names the file; a cancelled
 * job answers RequestCancelled and leaves no file; the server keeps answering.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../../../src/shared/lsp';
import type { CompressionReport } from '../../../src/shared/compress';
import { writeModel } from '../../support/onnxBuilder';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import { startServer, type ServerProcess } from '../../support/serverProcess';
import { spatialContrastNet } from '../../support/validationModels';

let server: ServerProcess;
let folder: string;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'layerlens-server-compress-'));
  server = await startServer({ 'stats.workerCount': 1 });
});

after(async () => {
  server?.stop();
  await rm(folder, { recursive: true, force: true });
});

function ramp(count: number): Float32Array {
  return new Float32Array(count).map((_, index) => Math.sin(index * 0.37) * (1 + (index % 5)));
}

test('compresses a safetensors model: new file, JSON report and progress', async () => {
  const file = await writeSafetensors(path.join(folder, 'mlp.safetensors'), [
    { name: 'fc1.weight', dtype: 'F32', shape: [16, 32], data: ramp(512) },
    { name: 'fc1.bias', dtype: 'F32', shape: [16], data: ramp(16) },
    { name: 'fc2.weight', dtype: 'F32', shape: [8, 16], data: ramp(128) },
  ]);
  const uri = pathToFileURL(file).toString();
  server.progress.length = 0;
  const report = await server.request(LspMethods.compress, {
    uri,
    request: { tensors: [0, 2], options: { method: 'int8', storeQuantized: true } },
  });
  assert.equal(report.output, path.join(folder, 'mlp.int8.safetensors'));
  assert.deepEqual(
    report.tensors.map((tensor) => [tensor.name, tensor.skipped]),
    [
      ['fc1.weight', false],
      ['fc2.weight', false],
    ],
  );
  const saved = JSON.parse(await readFile(report.reportPath, 'utf8')) as CompressionReport;
  assert.equal(saved.fileBytesAfter, report.fileBytesAfter);
  const summary = await server.request(LspMethods.openModel, {
    uri: pathToFileURL(report.output).toString(),
  });
  assert.equal(summary.tensorCount, 5, 'two weights, their two scales, and the bias');
  assert.equal(summary.bytesByDType.int8, 512 + 128);
  const begin = server.progress.find((value) => value.kind === 'begin');
  assert.match(begin?.title ?? '', /compressing mlp\.safetensors/);
  assert.ok(server.progress.some((value) => value.kind === 'end'));

  const second = await server.request(LspMethods.compress, {
    uri,
    request: { tensors: [], options: { method: 'int8' } },
  });
  assert.equal(path.basename(second.output), 'mlp.int8-1.safetensors', 'never overwrites');
});

test('layerlens.output.folder sends new models and their .layerlens folder there; nothing loose beside the model', async () => {
  const models = path.join(folder, 'setting');
  await mkdir(models);
  const file = await writeSafetensors(path.join(models, 'net.safetensors'), [
    { name: 'fc.weight', dtype: 'F32', shape: [16, 32], data: ramp(512) },
  ]);
  const uri = pathToFileURL(file).toString();
  await server.changeSettings({ 'output.folder': 'compressed' });
  try {
    const report = await server.request(LspMethods.compress, {
      uri,
      request: { tensors: [], options: { method: 'fp16' } },
    });
    const out = path.join(models, 'compressed');
    assert.equal(report.output, path.join(out, 'net.fp16.safetensors'));
    assert.equal(
      report.reportPath,
      path.join(out, 'net.safetensors.layerlens', 'net.fp16.safetensors.report.json'),
    );
    assert.equal(JSON.parse(await readFile(report.reportPath, 'utf8')).output, report.output);
    const packed = await server.request(LspMethods.pack, { uri });
    assert.equal(packed.out, path.join(out, 'net.safetensors.llz'));
    assert.deepEqual((await readdir(models)).sort(), ['compressed', 'net.safetensors']);
    assert.deepEqual((await readdir(out)).sort(), [
      'net.fp16.safetensors',
      'net.safetensors.layerlens',
      'net.safetensors.llz',
    ]);
  } finally {
    await server.changeSettings({ 'output.folder': '' });
  }
});

test('a request the file cannot satisfy is a model error naming it; the server keeps answering', async () => {
  const file = await writeSafetensors(path.join(folder, 'ints.safetensors'), [
    { name: 'ids', dtype: 'I32', shape: [4], data: new Int32Array([1, 2, 3, 4]) },
  ]);
  const uri = pathToFileURL(file).toString();
  await assert.rejects(
    server.request(LspMethods.compress, {
      uri,
      request: { tensors: [], options: { method: 'fp16' } },
    }),
    (error: unknown) => {
      assert.ok(error instanceof ResponseError);
      assert.equal(error.code, MODEL_ERROR_CODE);
      assert.equal((error.data as ModelErrorData).file, file);
      assert.match(error.message, /nothing to compress with fp16: int32 is not a floating-point/);
      return true;
    },
  );
  const summary = await server.request(LspMethods.openModel, { uri });
  assert.equal(summary.tensorCount, 1);
});

test('a cancelled compression answers RequestCancelled and leaves no file', async () => {
  // Many small tensors: the job checks for cancellation between tensors.
  const tensors = Array.from({ length: 400 }, (_, index) => ({
    name: `blocks.${index}.weight`,
    dtype: 'F32' as const,
    shape: [64, 64],
    data: ramp(64 * 64),
  }));
  const file = await writeSafetensors(path.join(folder, 'many.safetensors'), tensors);
  const uri = pathToFileURL(file).toString();
  await server.request(LspMethods.openModel, { uri });
  const before = (await readdir(folder)).sort();
  const cancellation = new CancellationTokenSource();
  const pending = server.request(
    LspMethods.compress,
    { uri, request: { tensors: [], options: { method: 'lowrank', rank: 8 } } },
    cancellation.token,
  );
  setTimeout(() => cancellation.cancel(), 50);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });
  assert.deepEqual((await readdir(folder)).sort(), before);
});

test('an ONNX model goes through the same request: validated in onnxruntime, outputs compared', async () => {
  const file = path.join(folder, 'silero_vad_v5.onnx');
  await copyFile(path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), file);
  const report = await server.request(LspMethods.compress, {
    uri: pathToFileURL(file).toString(),
    request: { tensors: [], options: { method: 'fp16' } },
  });
  assert.equal(report.output, path.join(folder, 'silero_vad_v5.fp16.onnx'));
  assert.ok(report.outputs.length > 0, 'the outputs of both models were compared');
  for (const output of report.outputs) assert.ok(output.cosine > 0.99, JSON.stringify(output));
  assert.ok(report.fileBytesAfter < report.fileBytesBefore);
});

test('a request carries the sample-input folder chosen for its model, over the setting', async () => {
  const images = path.join(folder, 'chosen-images');
  await mkdir(images);
  for (let k = 0; k < 2; k++) {
    const png = new PNG({ width: 32, height: 32 });
    for (let i = 0; i < 32 * 32; i++)
      png.data.set([(i * (k + 3)) % 256, i % 97, 40 * k, 255], i * 4);
    await writeFile(path.join(images, `frame${k}.png`), PNG.sync.write(png));
  }
  const file = await writeModel(folder, 'contrast.onnx', spatialContrastNet());
  const report = await server.request(LspMethods.compress, {
    uri: pathToFileURL(file).toString(),
    request: { tensors: [], options: { method: 'int8' } },
    inputsFolder: images,
  });
  assert.match(
    report.inputs,
    /^2 samples, 2 of 2 image files from .*chosen-images for input 'image'/,
  );
  assert.equal(report.outputs[0]!.samples, 2);
});

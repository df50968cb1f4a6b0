/**
 * The real server process over JSON-RPC (stdio), as the extension's language client
 * talks to it: custom requests, model errors, and that a bad file leaves it running.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CancellationTokenSource,
  ResponseError,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  LspMethods,
  MODEL_ERROR_CODE,
  type LspMethod,
  type ModelErrorData,
} from '../../../src/shared/lsp';
import { isStatsError } from '../../../src/shared/model';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import { startServer, type ProgressValue, type ServerProcess } from '../../support/serverProcess';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let server: ServerProcess;
let connection: MessageConnection;
let folder: string;

let progress: ProgressValue[] = [];

async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function request<P, R>(method: LspMethod<P, R>, params: P): Promise<R> {
  return server.request(method, params);
}

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-server-'));
  server = await startServer({ 'stats.workerCount': 2 });
  ({ connection, progress } = server);
});

after(() => {
  server.stop();
  rmSync(folder, { recursive: true, force: true });
});

test('answers openModel, tensors and tensorStats for a real model', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const summary = await request(LspMethods.openModel, { uri });
  assert.equal(summary.format, 'onnx');
  assert.ok(summary.parameterCount > 100_000, `parameters: ${summary.parameterCount}`);

  const page = await request(LspMethods.tensors, { uri, offset: 0, limit: 10 });
  assert.equal(page.total, summary.tensorCount);
  assert.equal(page.tensors.length, Math.min(10, summary.tensorCount));

  const largest = [...page.tensors].sort((a, b) => b.parameterCount - a.parameterCount)[0]!;
  const [stats] = await request(LspMethods.tensorStats, { uri, indices: [largest.index] });
  assert.ok(stats && !isStatsError(stats));
  assert.equal(stats.count, largest.parameterCount);
  assert.equal(
    stats.histogram?.counts.reduce((sum, count) => sum + count, 0),
    stats.count,
  );

  const info = await request(LspMethods.serverInfo, undefined);
  assert.equal(info.workerCount, 2);
});

test('weightTensors: Silero v5 has 341 tensors, of which only the conv and LSTM matrices are weights', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const page = await request(LspMethods.tensors, { uri, offset: 0, limit: 1000 });
  const { indices } = await request(LspMethods.weightTensors, { uri });
  const names = indices.map((index) => page.tensors[index]!.name);
  assert.ok(page.total > 300, `tensors: ${page.total}`);
  // Per branch: the STFT basis, four encoder convolutions, the LSTM's two matrices and the
  // decoder's convolution; no bias, shape constant or scalar.
  assert.equal(names.length, 16, names.join(', '));
  assert.ok(names.every((name) => /(weight|weight_ih|weight_hh|forward_basis_buffer)$/.test(name)));
  assert.ok(names.some((name) => name.includes('else_branch')));
  assert.ok(names.some((name) => name.includes('then_branch')));
  for (const index of indices) {
    const info = page.tensors[index]!;
    assert.ok(info.shape.length >= 2 && info.dtype === 'float32', info.name);
  }
});

test('sampleInputs names the folder chosen for the model over the setting, and its inputs', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const summary = await request(LspMethods.openModel, { uri });
  const generated = await request(LspMethods.sampleInputs, { uri });
  assert.deepEqual(generated, {
    folder: null,
    chosen: false,
    inputs: summary.inputs,
    samples: generated.samples,
  });
  assert.ok(generated.samples >= 1);
  const chosen = await request(LspMethods.sampleInputs, { uri, inputsFolder: folder });
  assert.equal(chosen.folder, folder);
  assert.equal(chosen.chosen, true);
  assert.deepEqual(
    chosen.inputs.map((input) => input.name),
    summary.inputs.map((input) => input.name),
  );
});

test('a corrupt file is a model error naming the file, and the server keeps answering', async () => {
  const broken = join(folder, 'broken.onnx');
  writeFileSync(broken, Buffer.from('this is not a protobuf at all, just text \u0000\u00ff'));
  const uri = pathToFileURL(broken).toString();
  await assert.rejects(request(LspMethods.openModel, { uri }), (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, MODEL_ERROR_CODE);
    assert.equal((error.data as ModelErrorData).file, broken);
    assert.match(error.message, /broken\.onnx/);
    return true;
  });
  const summary = await request(LspMethods.openModel, { uri: pathToFileURL(SILERO_V5).toString() });
  assert.equal(summary.format, 'onnx');
});

test('a URI that is not a local file is refused clearly', async () => {
  await assert.rejects(
    request(LspMethods.openModel, { uri: 'https://example.invalid/model.onnx' }),
    /local files only/,
  );
});

test('statistics report work-done progress until every tensor of the model is done', async () => {
  const model = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v6.onnx');
  const uri = pathToFileURL(model).toString();
  const { tensorCount } = await request(LspMethods.openModel, { uri });
  progress.length = 0;
  await request(LspMethods.tensorStats, { uri, indices: [0, 1] });
  await eventually('a progress report', () => progress.some((value) => value.kind === 'report'));
  const begin = progress.find((value) => value.kind === 'begin');
  assert.match(begin?.title ?? '', /statistics of silero_vad_v6\.onnx/);
  assert.match(
    progress.find((value) => value.kind === 'report')?.message ?? '',
    /2 \/ \d+ tensors/,
  );
  assert.ok(!progress.some((value) => value.kind === 'end'));

  const rest = Array.from({ length: tensorCount - 2 }, (_, index) => index + 2);
  await request(LspMethods.tensorStats, { uri, indices: rest });
  await eventually('the end of the progress', () => progress.some((value) => value.kind === 'end'));
});

test('a cancelled statistics request stops with RequestCancelled; the next one computes it whole', async () => {
  // 64 MiB of float32: long enough to be cancelled while the worker reads it.
  const elements = 16 * 1024 * 1024;
  const values = new Float32Array(elements).map((_, index) => Math.sin(index));
  const file = await writeSafetensors(join(folder, 'large.safetensors'), [
    { name: 'layer.weight', dtype: 'F32', shape: [4096, elements / 4096], data: values },
  ]);
  const uri = pathToFileURL(file).toString();
  await request(LspMethods.openModel, { uri });

  const cancellation = new CancellationTokenSource();
  const pending = connection.sendRequest(
    LspMethods.tensorStats.method,
    { uri, indices: [0] },
    cancellation.token,
  );
  setTimeout(() => cancellation.cancel(), 5);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });

  const [stats] = await request(LspMethods.tensorStats, { uri, indices: [0] });
  assert.ok(stats && !isStatsError(stats));
  assert.equal(stats.count, elements);
});

test('spectrum of a Silero LSTM weight over JSON-RPC: singular values, metrics, cached answer', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const { tensors } = await request(LspMethods.tensors, { uri, offset: 0, limit: 5000 });
  const lstm = tensors.find((tensor) => tensor.name.endsWith('decoder.rnn.weight_ih'))!;
  const spectrum = await request(LspMethods.spectrum, { uri, index: lstm.index });
  assert.equal(spectrum.index, lstm.index);
  assert.deepEqual([spectrum.rows, spectrum.cols], [512, 128]);
  assert.equal(spectrum.singularValues.length, 128);
  for (let i = 1; i < spectrum.singularValues.length; i++) {
    assert.ok(spectrum.singularValues[i]! <= spectrum.singularValues[i - 1]!, 'descending');
  }
  // Σσ² = ‖W‖²_F, and the statistics' L2 norm is ‖W‖_F.
  const energy = spectrum.singularValues.reduce((sum, sigma) => sum + sigma * sigma, 0);
  assert.ok(Math.abs(energy / spectrum.frobeniusSquared - 1) < 1e-4);
  const [stats] = await request(LspMethods.tensorStats, { uri, indices: [lstm.index] });
  assert.ok(stats && !isStatsError(stats));
  assert.ok(Math.abs(stats.l2Norm ** 2 / spectrum.frobeniusSquared - 1) < 1e-6);
  assert.equal(spectrum.metrics.spectralNorm, spectrum.singularValues[0]);
  assert.ok(spectrum.metrics.rank90 <= spectrum.metrics.rank99);

  const again = await request(LspMethods.spectrum, { uri, index: lstm.index });
  assert.deepEqual(again, spectrum, 'the cached result is the same');
  const float64 = await request(LspMethods.spectrum, {
    uri,
    index: lstm.index,
    options: { precision: 'float64' },
  });
  assert.equal(float64.precision, 'float64');
});

test('heatmap info and tiles over JSON-RPC; tiles are base64 float32 pixels', async () => {
  const rows = 300;
  const cols = 600;
  const values = new Float32Array(rows * cols).map((_, i) => (i % 3 === 0 ? 0 : Math.cos(i)));
  const file = await writeSafetensors(join(folder, 'heatmap.safetensors'), [
    { name: 'fc.weight', dtype: 'F32', shape: [rows, cols], data: values },
  ]);
  const uri = pathToFileURL(file).toString();
  const info = await request(LspMethods.heatmapInfo, { uri, index: 0, layer: { kind: 'zeros' } });
  assert.deepEqual([info.rows, info.cols, info.maxLevel, info.tileSize], [300, 600, 2, 256]);
  assert.equal(info.structured.zeroRows, 0);
  const tile = await request(LspMethods.heatmapTile, {
    uri,
    index: 0,
    layer: { kind: 'zeros' },
    level: 2,
    tileX: 0,
    tileY: 0,
  });
  assert.deepEqual([tile.width, tile.height], [150, 75]);
  const pixels = new Float32Array(Buffer.from(tile.values, 'base64').buffer.slice(0));
  assert.equal(pixels.length, 150 * 75);
  // Each pixel is the fraction of zeros among the 4 × 4 values it covers.
  for (const [x, y] of [
    [0, 0],
    [1, 0],
    [149, 74],
    [77, 31],
  ] as const) {
    let zeros = 0;
    for (let r = y * 4; r < y * 4 + 4; r++) {
      for (let c = x * 4; c < x * 4 + 4; c++) if (values[r * cols + c] === 0) zeros++;
    }
    assert.ok(Math.abs(pixels[y * 150 + x]! - zeros / 16) < 1e-7, `pixel ${x}, ${y}`);
  }
});

test('a spectrum of a 1-D tensor is a clear error, and the server keeps answering', async () => {
  const uri = pathToFileURL(SILERO_V5).toString();
  const { tensors } = await request(LspMethods.tensors, { uri, offset: 0, limit: 5000 });
  const vector = tensors.find((tensor) => tensor.shape.length === 1 && tensor.dtype === 'float32')!;
  await assert.rejects(
    request(LspMethods.spectrum, { uri, index: vector.index }),
    (error: unknown) => {
      assert.ok(error instanceof ResponseError);
      assert.match(error.message, /two non-empty dimensions/);
      assert.ok(error.message.includes(vector.name));
      return true;
    },
  );
  const summary = await request(LspMethods.openModel, { uri });
  assert.equal(summary.format, 'onnx');
});

test('a cancelled heatmap stops with RequestCancelled; asked again, it is built whole', async () => {
  const rows = 4096;
  const cols = 2048;
  const values = new Float32Array(rows * cols).map((_, index) => (index % 5 === 0 ? 0 : 1));
  const file = await writeSafetensors(join(folder, 'cancelled-heatmap.safetensors'), [
    { name: 'proj.weight', dtype: 'F32', shape: [rows, cols], data: values },
  ]);
  const uri = pathToFileURL(file).toString();
  await request(LspMethods.openModel, { uri });
  const cancellation = new CancellationTokenSource();
  const params = { uri, index: 0, layer: { kind: 'zeros' as const } };
  const pending = connection.sendRequest(LspMethods.heatmapInfo.method, params, cancellation.token);
  setTimeout(() => cancellation.cancel(), 5);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });
  const info = await request(LspMethods.heatmapInfo, params);
  assert.deepEqual([info.rows, info.cols], [rows, cols]);
  assert.equal(info.structured.zeroRows, 0);
  assert.equal(info.structured.compliantGroups, 0);
  assert.equal(info.structured.groups, rows * (cols / 4));
});

test('a changed setting takes effect without a restart', async () => {
  const own = await startServer({ 'stats.workerCount': 1 });
  try {
    const uri = pathToFileURL(SILERO_V5).toString();
    const request = { indices: [], measured: false };
    assert.equal((await own.request(LspMethods.serverInfo, undefined)).workerCount, 1);
    const before = await own.request(LspMethods.sensitivity, { uri, request });
    assert.equal(before.metric, 'relativeL2');

    // Statistics running when the worker count changes finish on the pool they began on.
    const values = new Float32Array(4 * 1024 * 1024).map((_, index) => Math.cos(index));
    const large = await writeSafetensors(join(folder, 'settings.safetensors'), [
      { name: 'layer.weight', dtype: 'F32', shape: [2048, 2048], data: values },
    ]);
    const largeUri = pathToFileURL(large).toString();
    await own.request(LspMethods.openModel, { uri: largeUri });
    const running = own.request(LspMethods.tensorStats, { uri: largeUri, indices: [0] });

    await own.changeSettings({ 'stats.workerCount': 3, 'sensitivity.metric': 'cosine' });
    const [finished] = await running;
    assert.ok(finished && !isStatsError(finished), JSON.stringify(finished));
    assert.equal((await own.request(LspMethods.serverInfo, undefined)).workerCount, 3);
    const after = await own.request(LspMethods.sensitivity, { uri, request });
    assert.equal(after.metric, 'cosine', 'the next request uses the changed metric');
    const [stats] = await own.request(LspMethods.tensorStats, { uri, indices: [0] });
    assert.ok(stats && !isStatsError(stats), 'the new worker pool computes statistics');

    // The section as VS Code nests it works too; values of the wrong kind are ignored.
    await own.connection.sendNotification('workspace/didChangeConfiguration', {
      settings: { layerlens: { stats: { workerCount: 2 }, sensitivity: { metric: 7 } } },
    });
    assert.equal((await own.request(LspMethods.serverInfo, undefined)).workerCount, 2);
    const nested = await own.request(LspMethods.sensitivity, { uri, request });
    assert.equal(nested.metric, 'cosine');
  } finally {
    own.stop();
  }
});

/** Threads of a process (Linux): worker threads are among them while they run. */
function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

test(
  'shutdown stops every service’s worker threads, and exit ends the process',
  { skip: process.platform !== 'linux' && 'counts threads in /proc' },
  async () => {
    const own = await startServer({ 'stats.workerCount': 2 });
    try {
      // 2048 × 2048 float32: large enough to be split over every pool's workers.
      const side = 2048;
      const values = new Float32Array(side * side).map((_, index) => Math.sin(index));
      const file = await writeSafetensors(join(folder, 'shutdown.safetensors'), [
        { name: 'layer.weight', dtype: 'F32', shape: [side, side], data: values },
      ]);
      const uri = pathToFileURL(file).toString();
      const idle = threadCount(own.pid);
      // Opening a model starts the statistics workers (the editor asks for statistics next).
      await own.request(LspMethods.openModel, { uri });
      let threads = threadCount(own.pid);
      assert.ok(threads > idle, `${threads} threads after opening, ${idle} before`);
      await own.request(LspMethods.tensorStats, { uri, indices: [0] });
      const afterStats = threadCount(own.pid);
      assert.ok(afterStats <= threads, `${afterStats} threads after statistics: no new workers`);

      // Each other service starts its own workers: lossless, heatmap pyramids.
      for (const run of [
        () => own.request(LspMethods.compressibility, { uri, indices: [0] }),
        () => own.request(LspMethods.heatmapInfo, { uri, index: 0, layer: { kind: 'zeros' } }),
      ]) {
        await run();
        const now = threadCount(own.pid);
        assert.ok(now > threads, `${now} threads after ${threads}`);
        threads = now;
      }

      await own.connection.sendRequest('shutdown');
      await eventually('the worker threads to end', () => threadCount(own.pid) <= idle);

      own.connection.sendNotification('exit');
      const code = await Promise.race([
        own.exited,
        new Promise((resolve) => setTimeout(() => resolve('still running'), 5000)),
      ]);
      assert.equal(code, 0);
    } finally {
      own.stop();
    }
  },
);

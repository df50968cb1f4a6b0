/**
 * layerlens/plan and layerlens/applyPlan over JSON-RPC against the real server process: a
 * plan and its application to Silero legacy with work-done progress, a recipe for another
 * file refused as a model error naming the model, and a cancelled application that
 * answers RequestCancelled and leaves no file behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../../../src/shared/lsp';
import { startServer, type ServerProcess } from '../../support/serverProcess';

let server: ServerProcess;
let folder: string;
let file: string;
let uri: string;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'layerlens-server-plan-'));
  server = await startServer({ 'stats.workerCount': 1 });
  file = path.join(folder, 'silero_vad_legacy.onnx');
  await copyFile(path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx'), file);
  uri = pathToFileURL(file).toString();
});

after(async () => {
  server?.stop();
  await rm(folder, { recursive: true, force: true });
});

test('plan then applyPlan with progress: the file meets 3× and the recipe is saved', async () => {
  const plan = await server.request(LspMethods.plan, {
    uri,
    request: { target: { kind: 'ratio', value: 3 }, measured: true },
    workDoneToken: 'plan-1',
  });
  assert.equal(plan.metric, 'relativeL2', 'the metric comes from the settings');
  assert.ok(plan.feasible);
  assert.match(
    server.progressByToken.get('plan-1')?.[0]?.title ?? '',
    /planning silero_vad_legacy/,
  );
  const result = await server.request(LspMethods.applyPlan, {
    uri,
    recipe: plan.recipe,
    refine: true,
    workDoneToken: 'apply-1',
  });
  const values = server.progressByToken.get('apply-1') ?? [];
  assert.match(values[0]?.title ?? '', /applying a plan to silero_vad_legacy/);
  assert.equal(values.at(-1)?.kind, 'end');
  assert.ok(result.targetMet);
  assert.equal(result.report.output, path.join(folder, 'silero_vad_legacy.plan.onnx'));
  assert.ok((await stat(result.report.output)).size <= (await stat(file)).size / 3);
  assert.equal(
    result.recipePath,
    path.join(
      folder,
      'silero_vad_legacy.onnx.layerlens',
      'silero_vad_legacy.plan.onnx.recipe.json',
    ),
  );
  await stat(result.recipePath);
});

test('a recipe for another file is a model error; a cancelled apply leaves no file', async () => {
  const plan = await server.request(LspMethods.plan, {
    uri,
    request: { target: { kind: 'ratio', value: 2 }, measured: false },
  });
  const other = path.join(folder, 'other.onnx');
  await copyFile(path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'), other);
  await assert.rejects(
    server.request(LspMethods.applyPlan, {
      uri: pathToFileURL(other).toString(),
      recipe: plan.recipe,
      refine: false,
    }),
    (error: unknown) => {
      assert.ok(error instanceof ResponseError);
      assert.equal(error.code, MODEL_ERROR_CODE);
      assert.equal((error.data as ModelErrorData).file, other);
      assert.match((error.data as ModelErrorData).problem, /made for silero_vad_legacy\.onnx/);
      return true;
    },
  );
  const before = (await readdir(folder)).sort();
  const cancellation = new CancellationTokenSource();
  const pending = server.request(
    LspMethods.applyPlan,
    { uri, recipe: plan.recipe, refine: true, outPath: path.join(folder, 'cancelled.onnx') },
    cancellation.token,
  );
  setTimeout(() => cancellation.cancel(), 150);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof ResponseError);
    assert.equal(error.code, -32800);
    return true;
  });
  assert.deepEqual((await readdir(folder)).sort(), before, 'no file is left behind');
  const summary = await server.request(LspMethods.openModel, { uri });
  assert.ok(summary.tensorCount > 0, 'the server keeps answering');
});

/**
 * The LayerLens language server: a separate Node process started by the extension over
 * IPC. It owns every byte of every model file; the extension and webviews only see
 * summaries, pages of rows and statistics.
 */
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { version as nodeVersion } from 'node:process';
import {
  createConnection,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  type CancellationToken,
} from 'vscode-languageserver/node';
import {
  LspMethods,
  MODEL_ERROR_CODE,
  type LspMethod,
  type ModelErrorData,
  type SampleInputsParams,
} from '../shared/lsp';
import type { LayerLensSettings } from '../shared/settings';
import { compressModel } from './compress';
import { ServerContext, settingsFromClient, type Services } from './context';
import { ModelFileError } from './formats/types';
import { isAbortError, JobAbortedError } from './jobs/workerPool';
import { planModel } from './plan';
import { graphIndexOf } from './graph/graphIndex';
import { hasGraph } from '../shared/model';
import { buildModuleTree } from './graph/moduleTree';
import { graphStructureDiff } from './graph/structureOverlay';
import { sampleCount } from './runtime/sampleSet';
import { applyRecipe } from './plan/apply';
import { parseRecipe } from './plan/recipe';
import { progressTitle, withWorkDone } from './progress';
import { PYTHON_CAPABILITIES } from './python/lspPython';
import { computeSensitivity } from './sensitivity';
import { diffModels } from './diff';
import { pairDetail } from './diff/detail';
import { extractLora } from './diff/finetune';
import { sweepTemporaryFolders } from './tempFiles';

// A cancel that arrives while its request still waits in the queue (the server busy with
// other work) answers the request at once; by default the request would run later anyway.
const connection = createConnection(ProposedFeatures.all, {
  connectionStrategy: {
    cancelUndispatched: (message) =>
      'id' in message && message.id !== null
        ? {
            jsonrpc: '2.0',
            id: message.id as number | string,
            error: { code: LSPErrorCodes.RequestCancelled, message: 'cancelled' },
          }
        : undefined,
  },
});
const context = new ServerContext(connection);

/**
 * Register a typed handler for one of the custom methods, mapping errors to JSON-RPC
 * errors. The handler works with the services current when the request arrived.
 */
function handle<P, R>(
  method: LspMethod<P, R>,
  handler: (params: P, signal: AbortSignal, services: Services) => Promise<R>,
): void {
  connection.onRequest(method.method, async (params: P, token: CancellationToken) => {
    const controller = new AbortController();
    // A token cancelled before the handler ran calls its listeners only a tick later: the
    // request is answered as cancelled without starting its work.
    if (token.isCancellationRequested) throw toResponseError(new JobAbortedError());
    const subscription = token.onCancellationRequested(() => controller.abort());
    try {
      return await context.serve((services) => handler(params, controller.signal, services));
    } catch (error) {
      throw toResponseError(error);
    } finally {
      subscription.dispose();
    }
  });
}

function toResponseError(error: unknown): ResponseError<ModelErrorData | undefined> {
  if (error instanceof ModelFileError) {
    return new ResponseError(MODEL_ERROR_CODE, error.message, {
      file: error.file,
      problem: error.problem,
    });
  }
  if (isAbortError(error)) {
    return new ResponseError(LSPErrorCodes.RequestCancelled, 'cancelled', undefined);
  }
  const message = error instanceof Error ? error.message : String(error);
  connection.console.error(
    `LayerLens request failed: ${error instanceof Error ? error.stack : message}`,
  );
  return new ResponseError(-32603, message, undefined);
}

/** The sample-input folder chosen for the request's model, over the setting's. */
function chosenInputs(params: SampleInputsParams): Partial<LayerLensSettings> | undefined {
  return params.inputsFolder ? { 'validation.inputsFolder': params.inputsFolder } : undefined;
}

/** Model URIs from the client; LayerLens reads local files only. */
function modelPath(uri: string): string {
  if (!uri.startsWith('file:')) {
    throw new ModelFileError(uri, 'LayerLens reads local files only (file: URIs)');
  }
  return fileURLToPath(uri);
}

connection.onInitialize((params) => {
  context.initialize(params);
  return {
    capabilities: { ...PYTHON_CAPABILITIES },
    serverInfo: { name: 'layerlens-server' },
  };
});
// The extension sends the flat settings (as in initializationOptions) when any changes.
connection.onDidChangeConfiguration(({ settings }) => {
  context.applySettings(settingsFromClient(settings));
});
connection.onShutdown(() => context.dispose());

const graphIndex = async (models: Services['models'], uri: string) =>
  graphIndexOf(await models.openedModel(modelPath(uri)));
handle(LspMethods.openModel, async (params, _signal, { models }) => {
  // The editor asks for every tensor's statistics next: the workers start meanwhile.
  models.startStatsWorkers();
  const summary = await models.openModel(modelPath(params.uri));
  // The Graph tab's first request then finds the graph built (a 20,000-node graph takes the
  // better part of a second); a failure here is the Graph tab's to report, when it asks.
  if (hasGraph(summary)) {
    const opened = await models.openedModel(modelPath(params.uri));
    setImmediate(() => void graphIndexOf(opened).catch(() => {}));
  }
  return summary;
});
handle(LspMethods.tensors, (params, _signal, { models }) =>
  models.tensors(modelPath(params.uri), params.offset, params.limit),
);
handle(LspMethods.graph, async (params, _signal, { models }) =>
  (await graphIndex(models, params.uri)).overview(),
);
handle(LspMethods.graphGroup, async (params, _signal, { models }) =>
  (await graphIndex(models, params.uri)).contents(params.group),
);
handle(LspMethods.graphFind, async (params, _signal, { models }) =>
  (await graphIndex(models, params.uri)).find(params.query),
);
/** Per model (B's URI): the model it was last compared with (A's URI), for its graph's overlay. */
const lastComparedWith = new Map<string, string>();
handle(LspMethods.graphStructureDiff, async (params, _signal, { models }) => {
  const other = params.other ?? lastComparedWith.get(params.uri);
  if (other === undefined) return null;
  lastComparedWith.set(params.uri, other);
  const [b, a] = await Promise.all([
    models.openedModel(modelPath(params.uri)),
    models.openedModel(modelPath(other)),
  ]);
  return graphStructureDiff(b, a, other);
});
handle(LspMethods.moduleTree, async (params, _signal, { models }) =>
  buildModuleTree((await models.openedModel(modelPath(params.uri))).tensors.map((t) => t.info)),
);
handle(LspMethods.weightTensors, (params, _signal, { models }) =>
  models.weightTensors(modelPath(params.uri)),
);
handle(LspMethods.tensorStats, async (params, signal, { models, statsProgress }) => {
  const path = modelPath(params.uri);
  const results = await models.tensorStats(path, params.indices, signal);
  statsProgress.update(path);
  return results;
});
handle(LspMethods.closeModel, async (params, _signal, { models, analysis }) => {
  models.close(modelPath(params.uri));
  analysis.close(modelPath(params.uri));
});
handle(LspMethods.serverInfo, async (_params, _signal, { models }) => ({
  version: '0.1.0',
  workerCount: models.workerCount,
  nodeVersion,
}));
// Model jobs take the model as the editor opened it: its decoded ONNX model is reused.
handle(LspMethods.compress, (params, signal, { models }) => {
  const path = modelPath(params.uri);
  return withWorkDone(connection, progressTitle('compressing', path), {}, async (progress) =>
    compressModel(
      path,
      params.request,
      {
        signal,
        settings: context.settingsFor(chosenInputs(params)),
        onProgress: (done, total, message) => progress.report(done, total, message),
      },
      await models.openedModel(path),
    ),
  );
});

// Spectra and heatmaps are often quick: progress shows only when they take a while.
const ANALYSIS_PROGRESS_AFTER_MS = 400;
const analysisProgress = { showAfterMs: ANALYSIS_PROGRESS_AFTER_MS, percentage: false };

handle(LspMethods.spectrum, (params, signal, { analysis }) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    progressTitle(`spectrum of tensor ${params.index} of`, path),
    analysisProgress,
    () => analysis.spectrum(path, params.index, params.options, signal),
  );
});
handle(LspMethods.tensorCodes, (params, _signal, { analysis }) =>
  analysis.tensorCodes(modelPath(params.uri), params.index),
);
handle(LspMethods.blockScales, (params, _signal, { analysis }) =>
  analysis.blockScales(modelPath(params.uri), params.index),
);
handle(LspMethods.heatmapInfo, (params, signal, { analysis }) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    progressTitle(`heatmap of tensor ${params.index} of`, path),
    analysisProgress,
    () => analysis.heatmapInfo(path, params.index, params.layer, signal),
  );
});
handle(LspMethods.heatmapTile, (params, signal, { analysis }) => {
  const { index, layer, level, tileX, tileY } = params;
  return analysis.heatmapTile(modelPath(params.uri), index, layer, level, tileX, tileY, signal);
});

handle(LspMethods.compressibility, (params, signal, { lossless }) =>
  lossless.compressibility(modelPath(params.uri), params.indices, signal),
);
handle(LspMethods.pack, async (params, signal, { lossless }) => {
  const path = modelPath(params.uri);
  const result = await withWorkDone(
    connection,
    progressTitle('packing', path),
    { token: params.workDoneToken },
    (progress) =>
      lossless.pack(path, {
        out: params.outUri ? modelPath(params.outUri) : undefined,
        folder: context.settingsFor()['output.folder'],
        base: params.baseUri ? modelPath(params.baseUri) : undefined,
        signal,
        onProgress: (done, total) => progress.report(done, total),
      }),
  );
  const { out, originalBytes, packedBytes, digest, tensors, deltaTensors } = result;
  return { out, originalBytes, packedBytes, digest, tensors, deltaTensors };
});
handle(LspMethods.unpack, (params, signal, { lossless }) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    progressTitle('unpacking', path),
    { token: params.workDoneToken },
    (progress) =>
      lossless.unpack(path, {
        out: params.outUri ? modelPath(params.outUri) : undefined,
        folder: context.settingsFor()['output.folder'],
        base: params.baseUri ? modelPath(params.baseUri) : undefined,
        signal,
        onProgress: (done, total) => progress.report(done, total),
      }),
  );
});
handle(LspMethods.deltaStats, (params, _signal, { lossless }) =>
  lossless.deltaStats(modelPath(params.uri), params.indices),
);

handle(LspMethods.sensitivity, (params, signal, { models }) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    progressTitle('sensitivity of', path),
    { token: params.workDoneToken },
    async (progress) =>
      computeSensitivity(
        path,
        params.request,
        {
          signal,
          settings: context.settingsFor(chosenInputs(params)),
          onProgress: (done, total) => progress.report(done, total),
        },
        await models.openedModel(path),
      ),
  );
});

handle(LspMethods.diff, (params, signal) => {
  const [a, b] = [modelPath(params.uri), modelPath(params.other)];
  lastComparedWith.set(params.other, params.uri);
  return withWorkDone(
    connection,
    `LayerLens: comparing ${basename(a)} with ${basename(b)}`,
    { token: params.workDoneToken },
    (progress) =>
      diffModels(a, b, {
        outputs: params.outputs,
        deltas: params.deltas,
        signal,
        settings: context.settingsFor(chosenInputs(params)),
        onProgress: (done, total) => progress.report(done, total),
      }),
  );
});

handle(LspMethods.pairDetail, (params, signal) => {
  const [a, b] = [modelPath(params.uri), modelPath(params.other)];
  return withWorkDone(
    connection,
    `LayerLens: comparing tensor ${params.indexA} of ${basename(a)} with ${basename(b)}`,
    // The panel's own progress (no token) shows only when the detail takes a while.
    {
      token: params.workDoneToken,
      showAfterMs: params.workDoneToken === undefined ? ANALYSIS_PROGRESS_AFTER_MS : 0,
    },
    (progress) =>
      pairDetail(a, b, params.indexA, {
        signal,
        settings: { backend: context.settingsFor()['compute.backend'] },
        onProgress: (done, total) => progress.report(done, total),
      }),
  );
});

handle(LspMethods.extractLora, (params, signal) => {
  const [base, tuned] = [modelPath(params.uri), modelPath(params.other)];
  const { rank, energy, maxRank } = params;
  return withWorkDone(
    connection,
    `LayerLens: extracting a LoRA of ${basename(tuned)} from ${basename(base)}`,
    { token: params.workDoneToken },
    (progress) =>
      extractLora(base, tuned, {
        rank,
        energy,
        maxRank,
        outDir: modelPath(params.outUri),
        signal,
        onProgress: (done, total) => progress.report(done, total),
      }),
  );
});

handle(LspMethods.sampleInputs, async (params, _signal, { models }) => {
  const { inputs } = await models.openModel(modelPath(params.uri));
  const settings = context.settingsFor(chosenInputs(params));
  const folder = settings['validation.inputsFolder'];
  const chosen = Boolean(params.inputsFolder);
  return { folder: folder || null, chosen, inputs, samples: sampleCount(settings) };
});

handle(LspMethods.plan, (params, signal, { models }) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    progressTitle('planning', path),
    { token: params.workDoneToken },
    async (progress) =>
      planModel(
        path,
        params.request,
        {
          signal,
          settings: context.settingsFor(chosenInputs(params)),
          onProgress: (done, total) => progress.report(done, total),
        },
        await models.openedModel(path),
      ),
  );
});
handle(LspMethods.applyPlan, (params, signal, { models }) => {
  const path = modelPath(params.uri);
  const recipe = parseRecipe(params.recipe, `recipe for ${basename(path)}`);
  const outPath = params.outPath?.startsWith('file:') ? modelPath(params.outPath) : params.outPath;
  return withWorkDone(
    connection,
    progressTitle('applying a plan to', path),
    { token: params.workDoneToken },
    async (progress) =>
      applyRecipe(
        path,
        recipe,
        { refine: params.refine, outPath },
        {
          signal,
          settings: context.settingsFor(chosenInputs(params)),
          onProgress: (done, total) => progress.report(done, total),
        },
        await models.openedModel(path),
      ),
  );
});

// Temporary files of LayerLens processes that were killed before they could remove them.
sweepTemporaryFolders();
connection.listen();

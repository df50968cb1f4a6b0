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
  type Connection,
} from 'vscode-languageserver/node';
import { LspMethods, MODEL_ERROR_CODE, type LspMethod, type ModelErrorData } from '../shared/lsp';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../shared/settings';
import { compressModel } from './compress';
import { beginCompressProgress } from './compressProgress';
import { ModelFileError } from './formats/types';
import { isAbortError } from './jobs/workerPool';
import { LosslessService } from './lossless/service';
import { packTitle, withWorkDone } from './losslessProgress';
import { ModelService } from './modelService';
import { PYTHON_CAPABILITIES, PythonFeatures } from './python/lspPython';
import { StatsProgress } from './statsProgress';
import { AnalysisService } from './analysisService';
import { withWorkDoneProgress } from './analysisProgress';
import { planModel } from './plan';
import { applyRecipe } from './plan/apply';
import { parseRecipe } from './plan/recipe';
import { computeSensitivity } from './sensitivity';

const connection = createConnection(ProposedFeatures.all);
let service = new ModelService();
let progress = new StatsProgress(connection, service);
let analysis = new AnalysisService(service);
let initialSettings: Partial<LayerLensSettings> = {};
// The analysis service is replaced on initialize: look it up when a lens asks.
const python = new PythonFeatures(connection, service, (path, index) =>
  analysis.effectiveRankIfSmall(path, index),
);
let lossless = new LosslessService(service, service.workerCount);

/** Register a typed handler for one of the custom methods, mapping errors to JSON-RPC errors. */
function handle<P, R>(
  connection: Connection,
  method: LspMethod<P, R>,
  handler: (params: P, signal: AbortSignal) => Promise<R>,
): void {
  connection.onRequest(method.method, async (params: P, token: CancellationToken) => {
    const controller = new AbortController();
    const subscription = token.onCancellationRequested(() => controller.abort());
    try {
      return await handler(params, controller.signal);
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

/** Model URIs from the client; LayerLens reads local files only. */
function modelPath(uri: string): string {
  if (!uri.startsWith('file:')) {
    throw new ModelFileError(uri, 'LayerLens reads local files only (file: URIs)');
  }
  return fileURLToPath(uri);
}

connection.onInitialize((params) => {
  const settings: Partial<LayerLensSettings> =
    (params.initializationOptions as { settings?: Partial<LayerLensSettings> } | undefined)
      ?.settings ?? {};
  const workerCount = settings['stats.workerCount'] ?? DEFAULT_SETTINGS['stats.workerCount'];
  initialSettings = settings;
  service.dispose();
  service = new ModelService({ workerCount });
  progress = new StatsProgress(connection, service);
  analysis.dispose();
  analysis = new AnalysisService(service, {
    computeBackend: settings['compute.backend'] ?? DEFAULT_SETTINGS['compute.backend'],
  });
  python.initialize(params, service);
  lossless.dispose();
  lossless = new LosslessService(service, service.workerCount);
  return {
    capabilities: { ...PYTHON_CAPABILITIES },
    serverInfo: { name: 'layerlens-server' },
  };
});

handle(connection, LspMethods.openModel, (params) => service.openModel(modelPath(params.uri)));
handle(connection, LspMethods.tensors, (params) =>
  service.tensors(modelPath(params.uri), params.offset, params.limit),
);
handle(connection, LspMethods.tensorStats, async (params, signal) => {
  const path = modelPath(params.uri);
  const results = await service.tensorStats(path, params.indices, signal);
  progress.update(path);
  return results;
});
handle(connection, LspMethods.closeModel, async (params) => {
  service.close(modelPath(params.uri));
  analysis.close(modelPath(params.uri));
});
handle(connection, LspMethods.serverInfo, async () => ({
  version: '0.1.0',
  workerCount: service.workerCount,
  nodeVersion,
}));
handle(connection, LspMethods.compress, async (params, signal) => {
  const path = modelPath(params.uri);
  const jobProgress = beginCompressProgress(connection, path);
  try {
    // The model as the editor opened it: its decoded ONNX model is reused, not decoded again.
    const opened = await service.openedModel(path);
    return await compressModel(
      path,
      params.request,
      {
        signal,
        settings: initialSettings,
        onProgress: (done, total, message) => jobProgress.report(done, total, message),
      },
      opened,
    );
  } finally {
    jobProgress.done();
  }
});

handle(connection, LspMethods.spectrum, (params, signal) => {
  const path = modelPath(params.uri);
  return withWorkDoneProgress(
    connection,
    `LayerLens: spectrum of tensor ${params.index} of ${basename(path)}`,
    analysis.spectrum(path, params.index, params.options, signal),
  );
});
handle(connection, LspMethods.heatmapInfo, (params, signal) => {
  const path = modelPath(params.uri);
  return withWorkDoneProgress(
    connection,
    `LayerLens: heatmap of tensor ${params.index} of ${basename(path)}`,
    analysis.heatmapInfo(path, params.index, params.layer, signal),
  );
});
handle(connection, LspMethods.heatmapTile, (params, signal) => {
  const { index, layer, level, tileX, tileY } = params;
  return analysis.heatmapTile(modelPath(params.uri), index, layer, level, tileX, tileY, signal);
});

connection.onShutdown(() => {
  service.dispose();
  analysis.dispose();
});
handle(connection, LspMethods.compressibility, (params, signal) =>
  lossless.compressibility(modelPath(params.uri), params.indices, signal),
);
handle(connection, LspMethods.pack, async (params, signal) => {
  const path = modelPath(params.uri);
  const result = await withWorkDone(
    connection,
    params.workDoneToken,
    packTitle('packing', path),
    (onProgress) =>
      lossless.pack(path, {
        out: params.outUri ? modelPath(params.outUri) : undefined,
        base: params.baseUri ? modelPath(params.baseUri) : undefined,
        signal,
        onProgress,
      }),
  );
  const { out, originalBytes, packedBytes, sha256, tensors, deltaTensors } = result;
  return { out, originalBytes, packedBytes, sha256, tensors, deltaTensors };
});
handle(connection, LspMethods.unpack, (params, signal) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    params.workDoneToken,
    packTitle('unpacking', path),
    (onProgress) =>
      lossless.unpack(path, {
        out: params.outUri ? modelPath(params.outUri) : undefined,
        base: params.baseUri ? modelPath(params.baseUri) : undefined,
        signal,
        onProgress,
      }),
  );
});
handle(connection, LspMethods.deltaStats, (params) =>
  lossless.deltaStats(modelPath(params.uri), params.indices),
);

handle(connection, LspMethods.sensitivity, (params, signal) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    params.workDoneToken,
    `LayerLens: sensitivity of ${basename(path)}`,
    async (onProgress) =>
      computeSensitivity(
        path,
        params.request,
        { signal, settings: initialSettings, onProgress },
        await service.openedModel(path),
      ),
  );
});

handle(connection, LspMethods.plan, (params, signal) => {
  const path = modelPath(params.uri);
  return withWorkDone(
    connection,
    params.workDoneToken,
    `LayerLens: planning ${basename(path)}`,
    async (onProgress) =>
      planModel(
        path,
        params.request,
        { signal, settings: initialSettings, onProgress },
        await service.openedModel(path),
      ),
  );
});
handle(connection, LspMethods.applyPlan, (params, signal) => {
  const path = modelPath(params.uri);
  const recipe = parseRecipe(params.recipe, `recipe for ${basename(path)}`);
  const outPath = params.outPath?.startsWith('file:') ? modelPath(params.outPath) : params.outPath;
  return withWorkDone(
    connection,
    params.workDoneToken,
    `LayerLens: applying a plan to ${basename(path)}`,
    async (onProgress) =>
      applyRecipe(
        path,
        recipe,
        { refine: params.refine, outPath },
        { signal, settings: initialSettings, onProgress },
        await service.openedModel(path),
      ),
  );
});

connection.onShutdown(() => service.dispose());
connection.listen();

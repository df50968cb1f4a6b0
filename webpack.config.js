// Three bundles: the extension (VS Code's extension host), the server with its worker
// and the CLI (plain Node), and the webview (browser). Type checking is `npm run typecheck`;
// ts-loader only transpiles here so that builds stay fast.
'use strict';
const fs = require('fs');
const path = require('path');
const webpack = require('webpack');

/** WebAssembly the server loads at run time (the Python parser), copied next to dist/server.js. */
const SERVER_WASM_FILES = [
  'node_modules/web-tree-sitter/web-tree-sitter.wasm',
  'node_modules/tree-sitter-python/tree-sitter-python.wasm',
];

/** Emits files unchanged into the output folder (and rebuilds when they change). */
class CopyFilesPlugin {
  /** @param {string[]} files paths relative to this folder */
  constructor(files) {
    this.files = files.map((file) => path.resolve(__dirname, file));
  }

  /** @param {webpack.Compiler} compiler */
  apply(compiler) {
    compiler.hooks.thisCompilation.tap('CopyFilesPlugin', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'CopyFilesPlugin', stage: webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL },
        () => {
          for (const file of this.files) {
            compilation.fileDependencies.add(file);
            compilation.emitAsset(
              path.basename(file),
              new webpack.sources.RawSource(fs.readFileSync(file)),
            );
          }
        },
      );
    });
  }
}

const tsRule = (configFile) => ({
  test: /\.ts$/,
  exclude: /node_modules/,
  use: [{ loader: 'ts-loader', options: { transpileOnly: true, configFile } }],
});

/** @param {string} mode */
function common(mode) {
  return {
    mode,
    devtool: mode === 'production' ? 'source-map' : 'eval-cheap-module-source-map',
    resolve: { extensions: ['.ts', '.js'] },
    infrastructureLogging: { level: 'warn' },
    stats: 'errors-warnings',
  };
}

module.exports = (_env, argv) => {
  const mode = argv.mode ?? 'production';
  // WebAssembly kernels (AssemblyScript) → dist/wasm/, loaded beside the server bundle.
  require('child_process').execFileSync(
    process.execPath,
    [path.resolve(__dirname, 'scripts', 'build-wasm.mjs')],
    { stdio: 'inherit' },
  );
  const nodeOutput = {
    path: path.resolve(__dirname, 'dist'),
    filename: '[name].js',
    libraryTarget: 'commonjs2',
    devtoolModuleFilenameTemplate: '../[resource-path]',
  };
  return [
    {
      ...common(mode),
      name: 'extension',
      target: 'node',
      entry: { extension: './src/extension/extension.ts' },
      output: nodeOutput,
      externals: { vscode: 'commonjs vscode' },
      module: { rules: [tsRule(path.resolve(__dirname, 'tsconfig.json'))] },
    },
    {
      ...common(mode),
      name: 'server',
      target: 'node',
      // The server, its worker threads and the CLI share the same core.
      entry: {
        server: './src/server/server.ts',
        statsWorker: './src/server/jobs/statsWorker.ts',
        heatmapWorker: './src/server/jobs/heatmapWorker.ts',
        spectrumWorker: './src/server/jobs/spectrumWorker.ts',
        compressWorker: './src/server/jobs/compressWorker.ts',
        losslessWorker: './src/server/jobs/losslessWorker.ts',
        ggmlWorker: './src/server/jobs/ggmlWorker.ts',
        cli: './src/cli/bin.ts',
      },
      output: nodeOutput,
      // Keep __dirname real: workers and native modules are found next to the bundle.
      node: { __dirname: false, __filename: false },
      // Native binaries: loaded from node_modules at run time, never bundled.
      externals: { 'onnxruntime-node': 'commonjs onnxruntime-node' },
      plugins: [
        new webpack.BannerPlugin({
          banner: '#!/usr/bin/env node',
          raw: true,
          entryOnly: true,
          include: 'cli',
        }),
        new CopyFilesPlugin(SERVER_WASM_FILES),
      ],
      module: { rules: [tsRule(path.resolve(__dirname, 'tsconfig.json'))] },
    },
    {
      ...common(mode),
      name: 'webview',
      target: 'web',
      // graphLayout: the graph view's layout worker (webview-ui/src/graph/layoutClient.ts); diff: the model
      // diff panel's page (webview-ui/src/diff/); report: the shared HTML report's page
      // (webview-ui/src/report/), inlined into the file `layerlens report` writes.
      entry: {
        main: './webview-ui/src/main.ts',
        graphLayout: './webview-ui/src/graph/layoutWorker.ts',
        diff: './webview-ui/src/diff/main.ts',
        report: './webview-ui/src/report/main.ts',
      },
      // The webview's CSP forbids eval, which webpack's eval-based dev source maps need.
      devtool: mode === 'production' ? 'source-map' : 'inline-source-map',
      output: { path: path.resolve(__dirname, 'dist', 'webview'), filename: '[name].js' },
      module: { rules: [tsRule(path.resolve(__dirname, 'webview-ui', 'tsconfig.json'))] },
      performance: { hints: false },
    },
  ];
};

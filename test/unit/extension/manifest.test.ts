/** The extension manifest agrees with the code: settings, editors, commands, bundles. */
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL_FILE_EXTENSIONS } from '../../../src/shared/model';
import { COMPUTE_BACKENDS, DEFAULT_SETTINGS, SETTINGS_SECTION } from '../../../src/shared/settings';

interface Manifest {
  main: string;
  contributes: {
    customEditors: { viewType: string; selector: { filenamePattern: string }[] }[];
    commands: { command: string }[];
    configuration: { properties: Record<string, { default: unknown; enum?: unknown[] }> };
  };
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;

test('every typed setting is contributed with the same default', () => {
  const properties = manifest.contributes.configuration.properties;
  for (const [key, value] of Object.entries(DEFAULT_SETTINGS)) {
    const contributed = properties[`${SETTINGS_SECTION}.${key}`];
    assert.ok(contributed, `layerlens.${key} is not in package.json`);
    assert.deepEqual(contributed.default, value, key);
  }
  assert.deepEqual(properties['layerlens.compute.backend']?.enum, [...COMPUTE_BACKENDS]);
});

test('the custom editor covers every format the server reads, and packed .llz files', () => {
  const editor = manifest.contributes.customEditors.find(
    (e) => e.viewType === 'layerlens.modelEditor',
  );
  assert.ok(editor);
  const patterns = editor.selector.map((s) => s.filenamePattern);
  for (const extension of MODEL_FILE_EXTENSIONS) {
    assert.ok(
      patterns.some((pattern) => pattern.endsWith(`*${extension}`)),
      `no editor pattern opens ${extension} files`,
    );
  }
  assert.deepEqual(patterns.sort(), [
    '*.ckpt',
    '*.gguf',
    '*.llz',
    '*.onnx',
    '*.pt',
    '*.pth',
    '*.safetensors',
    'pytorch_model*.bin',
  ]);
});

test('every contributed command is registered in the command table, and the reverse', () => {
  const source = readFileSync('src/extension/commands.ts', 'utf8');
  const registered = [...source.matchAll(/id: '(layerlens\.[A-Za-z.]+)'/g)].map((m) => m[1]).sort();
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(registered, contributed);
  const editorSource = readFileSync('src/extension/modelEditor.ts', 'utf8');
  assert.match(editorSource, /MODEL_EDITOR_VIEW_TYPE = 'layerlens\.modelEditor'/);
});

test('the extension entry point is the webpack bundle', () => {
  assert.equal(manifest.main, './dist/extension.js');
  const webpackConfig = readFileSync('webpack.config.js', 'utf8');
  for (const entry of [
    "extension: './src/extension/extension.ts'",
    "server: './src/server/server.ts'",
    "main: './webview-ui/src/main.ts'",
  ]) {
    assert.ok(webpackConfig.includes(entry), entry);
  }
});

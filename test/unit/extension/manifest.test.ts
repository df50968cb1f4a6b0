/** The extension manifest agrees with the code: settings, editors, commands, bundles. */
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BIN_EDITOR_VIEW_TYPE,
  isModelEditorViewType,
  MODEL_EDITOR_VIEW_TYPE,
  MODEL_EDITOR_VIEW_TYPES,
} from '../../../src/extension/editorViewTypes';
import { MODEL_FILE_EXTENSIONS } from '../../../src/shared/model';
import {
  COMPUTE_BACKENDS,
  DEFAULT_SETTINGS,
  SETTINGS_SECTION,
  SPECTRUM_METHOD_SETTINGS,
} from '../../../src/shared/settings';

interface Manifest {
  main: string;
  contributes: {
    customEditors: {
      viewType: string;
      selector: { filenamePattern: string }[];
      priority: string;
    }[];
    commands: { command: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
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
  assert.deepEqual(properties['layerlens.spectrum.method']?.enum, [...SPECTRUM_METHOD_SETTINGS]);
});

test('the custom editor covers every format the server reads, and packed .llz files', () => {
  const editor = manifest.contributes.customEditors.find(
    (e) => e.viewType === MODEL_EDITOR_VIEW_TYPE,
  );
  assert.ok(editor);
  assert.equal(editor.priority, 'default');
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

test('other *.bin files get LayerLens as an option only, from the same editor', () => {
  const editors = manifest.contributes.customEditors;
  assert.deepEqual(editors.map((e) => e.viewType).sort(), [...MODEL_EDITOR_VIEW_TYPES].sort());
  const bin = editors.find((e) => e.viewType === BIN_EDITOR_VIEW_TYPE);
  assert.ok(bin);
  assert.equal(bin.priority, 'option');
  assert.deepEqual(
    bin.selector.map((s) => s.filenamePattern),
    ['*.bin'],
  );
  assert.ok(isModelEditorViewType(BIN_EDITOR_VIEW_TYPE));
  assert.ok(!isModelEditorViewType('layerlens.modelEditorX'));
  assert.ok(!isModelEditorViewType(undefined));
});

test('menus that name the editor accept every one of its view types, and nothing else', () => {
  const clauses = Object.values(manifest.contributes.menus)
    .flat()
    .map((item) => item.when ?? '')
    .filter((when) => when.includes('modelEditor'));
  assert.ok(clauses.length >= 5, `only ${clauses.length} menu items name the editor`);
  for (const when of clauses) {
    const match = /(?:activeCustomEditorId|webviewId) =~ \/(\S+)\/(?:\s|$)/.exec(when);
    assert.ok(match, `"${when}" does not match the editor's id with a regular expression`);
    const pattern = new RegExp(match[1]!);
    for (const viewType of MODEL_EDITOR_VIEW_TYPES) assert.match(viewType, pattern, when);
    assert.doesNotMatch('layerlens.modelEditorX', pattern, when);
    assert.doesNotMatch('layerlens.modelEditor.binary', pattern, when);
  }
});

test('every contributed command is registered in the command table, and the reverse', () => {
  const source = readFileSync('src/extension/commands.ts', 'utf8');
  const registered = [...source.matchAll(/id: '(layerlens\.[A-Za-z.]+)'/g)].map((m) => m[1]).sort();
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(registered, contributed);
  assert.equal(MODEL_EDITOR_VIEW_TYPE, 'layerlens.modelEditor');
});

test("Reveal in Graph: hidden from the palette, in a table row's menu only where the model has a graph", () => {
  const { menus } = manifest.contributes;
  const palette = menus.commandPalette!.find((item) => item.command === 'layerlens.revealInGraph');
  assert.equal(palette?.when, 'false');
  const rowMenu = menus['webview/context']!.filter(
    (item) => item.command === 'layerlens.revealInGraph',
  );
  assert.equal(rowMenu.length, 1);
  // The keys the table's rows and grid write into data-vscode-context.
  assert.match(rowMenu[0]!.when ?? '', /webviewSection == 'tensorRow' && modelHasGraph$/);
  assert.match(readFileSync('webview-ui/src/table/layerTable.ts', 'utf8'), /modelHasGraph: true/);
});

test('Compress… and Plan in the webview menu need a model that can be compressed', () => {
  const menu = manifest.contributes.menus['webview/context']!;
  for (const command of ['layerlens.compress', 'layerlens.plan']) {
    const items = menu.filter((item) => item.command === command);
    assert.equal(items.length, 1, command);
    assert.match(items[0]!.when ?? '', /&& modelCompresses$/, command);
  }
  // The key the page writes from the server's capabilities.
  assert.match(readFileSync('webview-ui/src/app.ts', 'utf8'), /modelCompresses: true/);
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

test('the walkthrough: open, compress, plan, sensitivity; its media exist and its commands are contributed', () => {
  const { walkthroughs, commands } = (
    manifest as unknown as {
      contributes: {
        walkthroughs: {
          id: string;
          steps: { id: string; description: string; media: Record<string, string> }[];
        }[];
        commands: { command: string }[];
      };
    }
  ).contributes;
  assert.equal(walkthroughs.length, 1);
  const steps = walkthroughs[0]!.steps;
  for (const id of ['openModel', 'compress', 'plan', 'sensitivity']) {
    assert.ok(
      steps.some((step) => step.id === id),
      `no ${id} step`,
    );
  }
  const contributed = new Set(commands.map((command) => command.command));
  for (const step of steps) {
    for (const file of [step.media.image, step.media.markdown].filter(Boolean)) {
      assert.ok(existsSync(file!), `${step.id}: ${file} is missing`);
      assert.ok(file!.startsWith('media/'), `${step.id}: ${file} is not shipped (media/ only)`);
    }
    for (const [, command] of step.description.matchAll(/\(command:(layerlens\.[\w.]+)/g)) {
      assert.ok(contributed.has(command!), `${step.id}: ${command} is not a contributed command`);
    }
  }
});

test('the example workspace opens on a model and turns off the Welcome page and git prompts', () => {
  const settings = JSON.parse(readFileSync('example/.vscode/settings.json', 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(settings['workbench.startupEditor'], 'none');
  assert.equal(settings['git.enabled'], false);
  assert.equal(settings['git.openRepositoryInParentFolders'], 'never');
  // It opens on a model in the LayerLens editor (src/extension/openOnStartup.ts).
  const model = settings['layerlens.openOnStartup'];
  assert.equal(typeof model, 'string');
  // One of the Silero models scripts/example-workspace.mjs copies into the ignored models/.
  const name = /^models\/([\w.]+\.onnx)$/.exec(String(model))?.[1];
  assert.ok(name, String(model));
  assert.ok(existsSync(`node_modules/@ricky0123/vad-web/dist/${name}`), name);
});

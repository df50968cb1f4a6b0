/**
 * Code lenses and hovers for Python scripts, over JSON-RPC with the real server process:
 * a workspace with real model files, scripts opened, edited and changed on disk.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type { CodeLens, Hover, MarkupContent } from 'vscode-languageserver-protocol';
import {
  COMPRESS_COMMAND,
  REVEAL_IN_GRAPH_COMMAND,
  SHOW_TENSOR_COMMAND,
} from '../../../src/shared/codeLens';
import { LspMethods } from '../../../src/shared/lsp';
import {
  attribute,
  graph,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../support/onnxBuilder';
import { writeSafetensors, type SafetensorsTensor } from '../../support/safetensorsBuilder';
import { writeTorchCheckpoints } from '../../support/torchCheckpoints';

interface RunningServer {
  readonly process: ChildProcessWithoutNullStreams;
  readonly connection: MessageConnection;
  readonly refreshes: () => number;
}

let workspace: string;
let server: RunningServer;
let version = 1;

const MODEL_SCRIPT = `
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
`;

const TRAIN_SCRIPT = `
import os
import torch
import torch.nn as nn
import onnx
from safetensors.torch import save_file as sf
from model import Encoder

MODELS = "models"

class Classifier(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(256, classes)

model = Classifier()
sf(model.state_dict(), os.path.join(MODELS, "net.safetensors"))
torch.onnx.export(model, torch.randn(1, 784), f"{MODELS}/dynamic.onnx")
torch.onnx.export(model, torch.randn(1, 784), MODELS + "/net.onnx")
onnx.load("models/broken.onnx")
torch.load("models/checkpoint.pt")
`;

/** Lines (0-based) of TRAIN_SCRIPT. */
const lineOf = (text: string, needle: string): number =>
  text.split('\n').findIndex((line) => line.includes(needle));

function halfZeros(count: number): Float32Array {
  return new Float32Array(count).map((_, index) => (index % 2 === 0 ? 0 : 0.25 + index / count));
}

function netTensors(headClasses: number): SafetensorsTensor[] {
  return [
    { name: 'encoder.fc1.weight', dtype: 'F32', shape: [256, 784], data: halfZeros(256 * 784) },
    { name: 'encoder.fc1.bias', dtype: 'F32', shape: [256], data: new Float32Array(256).fill(1) },
    {
      name: 'head.weight',
      dtype: 'F32',
      shape: [headClasses, 256],
      data: new Float32Array(headClasses * 256).fill(0.5),
    },
    { name: 'head.bias', dtype: 'F32', shape: [headClasses], data: new Float32Array(headClasses) },
  ];
}

async function startServer(args: string[]): Promise<RunningServer> {
  const child = spawn(process.execPath, [...args, '--stdio'], { stdio: 'pipe' });
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin),
  );
  let refreshCount = 0;
  connection.onRequest('workspace/codeLens/refresh', () => {
    refreshCount++;
    return null;
  });
  connection.onRequest('window/workDoneProgress/create', () => null);
  connection.listen();
  const folderUri = pathToFileURL(workspace).toString();
  const initialized = (await connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: folderUri,
    workspaceFolders: [{ uri: folderUri, name: 'project' }],
    capabilities: { workspace: { codeLens: { refreshSupport: true }, workspaceFolders: true } },
    initializationOptions: { settings: { 'stats.workerCount': 1 } },
  })) as { capabilities: Record<string, unknown> };
  assert.deepEqual(initialized.capabilities.codeLensProvider, { resolveProvider: true });
  assert.equal(initialized.capabilities.hoverProvider, true);
  connection.sendNotification('initialized', {});
  return { process: child, connection, refreshes: () => refreshCount };
}

function stopServer(running: RunningServer | undefined): void {
  running?.connection.dispose();
  running?.process.kill();
}

function uriOf(file: string): string {
  return pathToFileURL(join(workspace, file)).toString();
}

function open(running: RunningServer, file: string, text: string): void {
  running.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri: uriOf(file), languageId: 'python', version: version++, text },
  });
}

/** Lenses with resolve applied where the server left the command out, as VS Code does. */
async function lenses(running: RunningServer, file: string): Promise<CodeLens[]> {
  const found = (await running.connection.sendRequest('textDocument/codeLens', {
    textDocument: { uri: uriOf(file) },
  })) as CodeLens[];
  return Promise.all(
    found.map(async (lens) =>
      lens.command
        ? lens
        : ((await running.connection.sendRequest('codeLens/resolve', lens)) as CodeLens),
    ),
  );
}

function titlesOn(found: readonly CodeLens[], line: number): string[] {
  return found.filter((lens) => lens.range.start.line === line).map((lens) => lens.command!.title);
}

async function hover(running: RunningServer, file: string, line: number): Promise<string> {
  const result = (await running.connection.sendRequest('textDocument/hover', {
    textDocument: { uri: uriOf(file) },
    position: { line, character: 10 },
  })) as Hover | null;
  return result ? (result.contents as MarkupContent).value : '';
}

async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

before(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'layerlens-python-'));
  await mkdir(join(workspace, 'models'));
  await writeSafetensors(join(workspace, 'models', 'net.safetensors'), netTensors(10));
  await writeFile(join(workspace, 'models', 'broken.onnx'), 'not a model, only text\n');
  await writeTorchCheckpoints(join(workspace, 'pt'));
  await copyFile(
    join(workspace, 'pt', 'checkpoint.pt'),
    join(workspace, 'models', 'checkpoint.pt'),
  );
  await writeFile(join(workspace, 'model.py'), MODEL_SCRIPT);
  await writeFile(join(workspace, 'train.py'), TRAIN_SCRIPT);
  server = await startServer(['--import', 'tsx', 'src/server/server.ts']);
  open(server, 'train.py', TRAIN_SCRIPT);
});

after(async () => {
  stopServer(server);
  await rm(workspace, { recursive: true, force: true });
});

test('model-file calls get a lens with the model numbers, or what keeps it from having one', async () => {
  const found = await lenses(server, 'train.py');
  const saved = titlesOn(found, lineOf(TRAIN_SCRIPT, 'sf(model'));
  // 256·784 + 256 + 10·256 + 10 parameters; the file is the header plus 4 bytes each.
  assert.equal(saved.length, 1);
  assert.match(saved[0]!, /^LayerLens: 204K params · 7\d\d\.\d KB · 2 layers · Open$/);
  const save = found.find((lens) => lens.range.start.line === lineOf(TRAIN_SCRIPT, 'sf(model'))!;
  assert.equal(save.command?.command, SHOW_TENSOR_COMMAND);
  assert.deepEqual(save.command?.arguments, [uriOf('models/net.safetensors')]);

  // An f-string with a placeholder is not a literal: no lens rather than a guess.
  assert.deepEqual(titlesOn(found, lineOf(TRAIN_SCRIPT, 'dynamic.onnx')), []);
  assert.deepEqual(titlesOn(found, lineOf(TRAIN_SCRIPT, '/net.onnx')), [
    'LayerLens: not written yet',
  ]);
  const broken = titlesOn(found, lineOf(TRAIN_SCRIPT, 'broken.onnx'));
  assert.equal(broken.length, 1);
  assert.match(broken[0]!, /^LayerLens: broken\.onnx: \S+( \S+){2,}/);
  // A torch.save checkpoint (written by Python's pickle and zipfile): its real numbers.
  // 70 473 parameters in 14 tensors; layers: the 6 name prefixes of the floating-point ones.
  assert.deepEqual(titlesOn(found, lineOf(TRAIN_SCRIPT, 'checkpoint.pt')), [
    'LayerLens: 70.5K params · 78.5 KB · 6 layers · Open',
  ]);
});

// head.weight is constant (rank 1): its effective rank is exactly 1.
test('layer definitions get a shape check, parameters, sparsity, effective rank and actions', async () => {
  const found = await lenses(server, 'train.py');
  const headLine = lineOf(TRAIN_SCRIPT, 'self.head');
  assert.deepEqual(titlesOn(found, headLine), [
    'LayerLens: ✓ 10×256 · 2.57K params · sparsity 0.0% · eff. rank 1',
    'Show in LayerLens',
    'Compress…',
  ]);
  const [info, show, compress] = found.filter((lens) => lens.range.start.line === headLine);
  assert.equal(info?.command?.command, '');
  assert.deepEqual(show?.command?.arguments, [uriOf('models/net.safetensors'), 'head.weight']);
  assert.equal(compress?.command?.command, COMPRESS_COMMAND);
  assert.deepEqual(compress?.command?.arguments, [uriOf('models/net.safetensors'), [2]]);

  // Encoder lives in model.py (not open): train.py's own lenses cover its own layers only.
  assert.equal(found.filter((lens) => lens.command?.title === 'Show in LayerLens').length, 1);
});

test('a script that only defines modules maps through the workspace scripts that save them', async () => {
  open(server, 'model.py', MODEL_SCRIPT);
  const found = await lenses(server, 'model.py');
  const [title, ...actions] = titlesOn(found, lineOf(MODEL_SCRIPT, 'self.fc1'));
  assert.match(
    title!,
    /^LayerLens: ✓ 256×784 · 201K params · sparsity 50\.0% · eff\. rank [\d.]+$/,
  );
  assert.deepEqual(actions, ['Show in LayerLens', 'Compress…']);
  const show = found.find((lens) => lens.command?.title === 'Show in LayerLens');
  assert.deepEqual(show?.command?.arguments, [
    uriOf('models/net.safetensors'),
    'encoder.fc1.weight',
  ]);
});

test('a hover on a layer gives every number; on a model call, the model summary', async () => {
  const text = await hover(server, 'model.py', lineOf(MODEL_SCRIPT, 'self.fc1'));
  assert.match(text, /`nn\.Linear` at `fc1`, `encoder\.fc1`/);
  assert.match(text, /Declared: weight 256×784, bias 256/);
  assert.ok(text.includes(join(workspace, 'models', 'net.safetensors')), text);
  const row = text.split('\n').find((line) => line.startsWith('| `encoder.fc1.weight`'));
  // shape, dtype, params, min, max, mean, std, sparsity, norm
  assert.ok(row, text);
  const cells = row.split('|').map((cell) => cell.trim());
  assert.deepEqual(cells.slice(2, 5), ['[256, 784]', 'float32', '200,704']);
  assert.equal(cells[5], '0');
  assert.equal(cells[9], '50.0%');
  assert.ok(Number(cells[10]) > 0, `L2 norm: ${cells[10]}`);

  const call = await hover(server, 'train.py', lineOf(TRAIN_SCRIPT, 'sf(model'));
  assert.match(call, /`safetensors\.torch\.save_file` writes/);
  assert.match(call, /safetensors · 203,530 parameters \(204K\)/);
  assert.equal(await hover(server, 'train.py', lineOf(TRAIN_SCRIPT, 'MODELS = ')), '');
});

test('an edit to the script changes the shape check', async () => {
  const edited = TRAIN_SCRIPT.replace('nn.Linear(256, classes)', 'nn.Linear(128, classes)');
  server.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: uriOf('train.py'), version: version++ },
    contentChanges: [{ text: edited }],
  });
  const found = await lenses(server, 'train.py');
  assert.equal(
    titlesOn(found, lineOf(edited, 'self.head'))[0],
    'LayerLens: ✗ declared 10×128, file 10×256 · 2.57K params · sparsity 0.0% · eff. rank 1',
  );
  server.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: uriOf('train.py'), version: version++ },
    contentChanges: [{ text: TRAIN_SCRIPT }],
  });
});

test('a model rewritten on disk refreshes the lenses with the new file', async () => {
  const before = server.refreshes();
  await writeSafetensors(join(workspace, 'models', 'net.safetensors'), netTensors(12));
  server.connection.sendNotification('workspace/didChangeWatchedFiles', {
    changes: [{ uri: uriOf('models/net.safetensors'), type: 2 }],
  });
  await eventually('a codeLens refresh request', () => server.refreshes() > before);
  const found = await lenses(server, 'train.py');
  assert.match(
    titlesOn(found, lineOf(TRAIN_SCRIPT, 'self.head'))[0]!,
    /^LayerLens: ✗ declared 10×256, file 12×256 · /,
  );
  await writeSafetensors(join(workspace, 'models', 'net.safetensors'), netTensors(10));
});

test('a script with syntax errors gets what can be read, and the server keeps answering', async () => {
  const broken = `${TRAIN_SCRIPT}\ndef unfinished(:\n    self.x = nn.Linear(\n`;
  open(server, 'broken.py', broken);
  const found = await lenses(server, 'broken.py');
  assert.ok(found.some((lens) => lens.command?.title === 'LayerLens: not written yet'));
  const info = await server.connection.sendRequest(LspMethods.serverInfo.method, undefined);
  assert.ok(info);
  // Not Python, or not a file: no lenses, no error.
  server.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri: 'untitled:Untitled-1', languageId: 'python', version: 1, text: 'x = 1' },
  });
  assert.deepEqual(
    await server.connection.sendRequest('textDocument/codeLens', {
      textDocument: { uri: 'untitled:Untitled-1' },
    }),
    [],
  );
});

const EXPORT_SCRIPT = `
import torch
from torch import nn

class Projection(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(256, 10)

model = Projection()
torch.onnx.export(model, torch.randn(1, 256), "exported/projection.onnx")
`;

test('a layer of an ONNX model (it has a graph) gets a "Reveal in graph" lens with the model and tensor', async () => {
  // As torch.onnx.export writes a Linear: Gemm reading proj.weight [10, 256] transposed.
  await mkdir(join(workspace, 'exported'), { recursive: true });
  await writeModel(
    join(workspace, 'exported'),
    'projection.onnx',
    model(
      graph({
        nodes: [
          node('Gemm', ['x', 'proj.weight', 'proj.bias'], ['y'], {
            name: '/proj/Gemm',
            attributes: [attribute.int('transB', 1)],
          }),
        ],
        initializers: [
          tensor(
            'proj.weight',
            'float32',
            [10, 256],
            Array.from({ length: 2560 }, (_, i) => (i % 7) / 7),
          ),
          tensor(
            'proj.bias',
            'float32',
            [10],
            Array.from({ length: 10 }, () => 0),
          ),
        ],
        inputs: [valueInfo('x', 'float32', [1, 256])],
        outputs: [valueInfo('y', 'float32', [1, 10])],
      }),
    ),
  );
  await writeFile(join(workspace, 'export.py'), EXPORT_SCRIPT);
  open(server, 'export.py', EXPORT_SCRIPT);
  const found = await lenses(server, 'export.py');
  const line = lineOf(EXPORT_SCRIPT, 'self.proj');
  assert.deepEqual(titlesOn(found, line).slice(1), [
    'Show in LayerLens',
    'Reveal in graph',
    'Compress…',
  ]);
  assert.match(titlesOn(found, line)[0]!, /^LayerLens: ✓ 10×256 · /);
  const reveal = found.find(
    (lens) => lens.range.start.line === line && lens.command?.title === 'Reveal in graph',
  )!;
  assert.equal(reveal.command?.command, REVEAL_IN_GRAPH_COMMAND);
  assert.deepEqual(reveal.command?.arguments, [uriOf('exported/projection.onnx'), 'proj.weight']);
  // The safetensors file has no graph: its layers' lenses offer no reveal (checked above too).
  const train = await lenses(server, 'train.py');
  assert.equal(train.filter((lens) => lens.command?.title === 'Reveal in graph').length, 0);
});

test(
  'the bundled server finds its tree-sitter wasm files in dist/',
  { skip: !existsSync(resolve('dist/server.js')) && 'run `npx webpack` first' },
  async () => {
    const bundled = await startServer([resolve('dist/server.js')]);
    try {
      open(bundled, 'train.py', TRAIN_SCRIPT);
      const found = await lenses(bundled, 'train.py');
      assert.ok(found.some((lens) => lens.command?.title === 'LayerLens: not written yet'));
    } finally {
      stopServer(bundled);
    }
  },
);

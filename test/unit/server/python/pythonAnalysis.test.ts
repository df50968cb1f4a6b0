/**
 * Reading training scripts with the real tree-sitter parser: model-file calls in every
 * supported form, paths built from literals, variables and joins, renamed imports, and
 * layer definitions in nn.Module classes, nested modules and containers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concrete } from '../../../../src/server/python/pythonValues';
import type { ScriptAnalysis } from '../../../../src/server/python/scriptAnalysis';
import { analyzeSource } from '../../../../src/server/python/workspaceScripts';

const SCRIPT = '/work/project/scripts/train.py';

function analyze(source: string): Promise<ScriptAnalysis> {
  return analyzeSource(source, SCRIPT);
}

/** Calls and their paths, in reading order: `call -> path`. */
async function referencesOf(source: string): Promise<string[]> {
  const { references } = await analyze(source);
  return references.map((reference) => `${reference.call} -> ${reference.path}`);
}

function layerSummary(analysis: ScriptAnalysis): string[] {
  return analysis.layers.map(
    (layer) => `${layer.owner ?? '<root>'}:${layer.path.join('.')}=${layer.layerType}`,
  );
}

test('every model-file call form is found with its path literal', async () => {
  const found = await referencesOf(`
import torch
import onnx
import onnxruntime
import safetensors.torch
from transformers import AutoModel

torch.save(model.state_dict(), "checkpoints/model.pt")
state = torch.load("checkpoints/model.pt", map_location="cpu")
torch.onnx.export(model, dummy, "model.onnx", opset_version=17)
safetensors.torch.save_file(state, "weights.safetensors")
weights = safetensors.torch.load_file("weights.safetensors")
onnx.save(onnx.load("in.onnx"), "out.onnx")
session = onnxruntime.InferenceSession("out.onnx", providers=["CPUExecutionProvider"])
model.save_pretrained("exported")
model = AutoModel.from_pretrained("exported")
`);
  assert.deepEqual(found, [
    'torch.save -> checkpoints/model.pt',
    'torch.load -> checkpoints/model.pt',
    'torch.onnx.export -> model.onnx',
    'safetensors.torch.save_file -> weights.safetensors',
    'safetensors.torch.load_file -> weights.safetensors',
    'onnx.save -> out.onnx',
    'onnx.load -> in.onnx',
    'onnxruntime.InferenceSession -> out.onnx',
    'save_pretrained -> exported',
    'from_pretrained -> exported',
  ]);
});

test('keyword arguments name the path too', async () => {
  const found = await referencesOf(`
import torch
torch.save(obj=state, f="a.pt")
torch.onnx.export(model, args=(x,), f="b.onnx")
model.save_pretrained(save_directory="out_dir")
`);
  assert.deepEqual(found, [
    'torch.save -> a.pt',
    'torch.onnx.export -> b.onnx',
    'save_pretrained -> out_dir',
  ]);
});

test('renamed imports resolve to the library function', async () => {
  const found = await referencesOf(`
from safetensors.torch import save_file as sf, load_file
import onnxruntime as ort
from torch import onnx as tonnx
import torch as T

sf(state, "a.safetensors")
load_file("a.safetensors")
ort.InferenceSession("m.onnx")
tonnx.export(model, x, "m.onnx")
T.save(state, "m.pt")
`);
  assert.deepEqual(found, [
    'safetensors.torch.save_file -> a.safetensors',
    'safetensors.torch.load_file -> a.safetensors',
    'onnxruntime.InferenceSession -> m.onnx',
    'torch.onnx.export -> m.onnx',
    'torch.save -> m.pt',
  ]);
});

test('functions that are not imported from a model library are not model calls', async () => {
  const found = await referencesOf(`
def save(obj, path): ...
save(state, "not-a-model.pt")
json.dump(state, open("config.json", "w"))
torch.save(state, "torch-never-imported.pt")
`);
  assert.deepEqual(found, []);
});

test('paths through variables, os.path.join, pathlib and __file__', async () => {
  const found = await referencesOf(`
import os
import os.path
from os.path import join as pjoin
from pathlib import Path
import pathlib
import torch

OUT = "artifacts"
NAME = "model" + ".onnx"
ROOT = Path(__file__).parent

def export(model):
    path = os.path.join(OUT, "onnx", NAME)
    torch.onnx.export(model, x, path)
    torch.onnx.export(model, x, pjoin(OUT, "b.onnx"))
    torch.onnx.export(model, x, Path("runs") / "c.onnx")
    torch.onnx.export(model, x, pathlib.Path("runs", "d").joinpath("e.onnx"))
    torch.onnx.export(model, x, ROOT / "models" / NAME)
    torch.onnx.export(model, x, os.path.join(os.path.dirname(os.path.abspath(__file__)), "f.onnx"))
    torch.onnx.export(model, x, str(Path("runs/g.pt").with_suffix(".onnx")))
    torch.onnx.export(model, x, os.path.join(OUT, "/abs/h.onnx"))
`);
  assert.deepEqual(found, [
    'torch.onnx.export -> artifacts/onnx/model.onnx',
    'torch.onnx.export -> artifacts/b.onnx',
    'torch.onnx.export -> runs/c.onnx',
    'torch.onnx.export -> runs/d/e.onnx',
    'torch.onnx.export -> /work/project/scripts/models/model.onnx',
    'torch.onnx.export -> /work/project/scripts/f.onnx',
    'torch.onnx.export -> runs/g.onnx',
    'torch.onnx.export -> /abs/h.onnx',
  ]);
});

test('a variable takes the value assigned last before its use, in its own scope first', async () => {
  const found = await referencesOf(`
import torch
path = "module-level.pt"

def train():
    path = "first.pt"
    path = "second.pt"
    torch.save(state, path)

def evaluate(checkpoint="default.pt"):
    torch.load(checkpoint)
    torch.load(path)

torch.save(state, path)
path = "reassigned.pt"
torch.save(state, path)
`);
  assert.deepEqual(found, [
    'torch.save -> second.pt',
    'torch.load -> default.pt',
    'torch.load -> module-level.pt',
    'torch.save -> module-level.pt',
    'torch.save -> reassigned.pt',
  ]);
});

test('paths that are not built from literals stay unknown', async () => {
  const found = await referencesOf(`
import sys
import torch
name = sys.argv[1]
torch.save(state, f"run-{epoch}.pt")
torch.save(state, name)
torch.save(state, buffer)
torch.save(state, f"plain.pt")
torch.save(state, r"raw\\name.pt")
torch.save(state, "tab\\tname.pt")
`);
  assert.deepEqual(found, [
    'torch.save -> null',
    'torch.save -> null',
    'torch.save -> null',
    'torch.save -> plain.pt',
    'torch.save -> raw\\name.pt',
    'torch.save -> tab\tname.pt',
  ]);
});

test('layers of nn.Module classes, with import styles and evaluated arguments', async () => {
  const analysis = await analyze(`
import torch.nn as nn
from torch import nn as tnn
from torch.nn import Conv2d

HIDDEN = 128

class Net(nn.Module):
    def __init__(self, features: int = 784, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(features, HIDDEN * 2)
        self.fc2 = tnn.Linear(in_features=HIDDEN * 2, out_features=classes, bias=False)
        self.conv = Conv2d(3, 16, kernel_size=(3, 5), groups=1)
        self.emb = nn.Embedding(1000, 64)
        self.rnn = nn.LSTM(64, 32, num_layers=2, bidirectional=True)
        self.attn = nn.MultiheadAttention(64, 8)
        self.norm = nn.LayerNorm(HIDDEN)
        self.bn = nn.BatchNorm2d(16)
        self.act = nn.ReLU()
        if features > 100:
            self.extra = nn.Linear(features, features // 2)

    def forward(self, x):
        self.cache = nn.Linear(1, 1)
        return x
`);
  assert.deepEqual(layerSummary(analysis), [
    'Net:fc1=Linear',
    'Net:fc2=Linear',
    'Net:conv=Conv2d',
    'Net:emb=Embedding',
    'Net:rnn=LSTM',
    'Net:attn=MultiheadAttention',
    'Net:norm=LayerNorm',
    'Net:bn=BatchNorm2d',
    'Net:extra=Linear',
    'Net:cache=Linear',
  ]);
  const fc1 = analysis.layers[0]!;
  // A constructor parameter stays a parameter (a call may pass another value), with its default.
  assert.deepEqual(fc1.args.positional, [
    { kind: 'param', name: 'features', fallback: { kind: 'int', value: 784 } },
    { kind: 'int', value: 256 },
  ]);
  const fc2 = analysis.layers[1]!;
  assert.deepEqual(fc2.args.keywords.in_features, { kind: 'int', value: 256 });
  assert.deepEqual(fc2.args.keywords.bias, { kind: 'bool', value: false });
  const conv = analysis.layers[2]!;
  assert.deepEqual(conv.args.keywords.kernel_size, {
    kind: 'tuple',
    items: [
      { kind: 'int', value: 3 },
      { kind: 'int', value: 5 },
    ],
  });
  // Arithmetic on a parameter waits for a binding; without one it uses the default.
  const half = analysis.layers[8]!.args.positional[1] ?? null;
  assert.equal(half?.kind, 'expr');
  assert.deepEqual(concrete(half), { kind: 'int', value: 392 });
  assert.deepEqual(fc2.args.keywords.out_features, {
    kind: 'param',
    name: 'classes',
    fallback: { kind: 'int', value: 10 },
  });
  // The lens goes on the definition's line (0-based).
  assert.equal(fc1.range.start.line, 10);
  assert.deepEqual(
    analysis.classes.map((c) => [c.name, c.bases]),
    [['Net', ['torch.nn.Module']]],
  );
});

test('nested modules, attribute chains and containers give state-dict paths', async () => {
  const analysis = await analyze(`
from collections import OrderedDict
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Module()
        self.head.out = nn.Linear(256, 10)
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3),
            nn.ReLU(),
            nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16)),
        )
        self.named = nn.Sequential(OrderedDict([
            ("proj", nn.Linear(10, 20)),
            ("act", nn.GELU()),
            ("out", nn.Linear(20, 5)),
        ]))
        self.blocks = nn.ModuleList([nn.Linear(5, 5), Encoder()])
        self.heads = nn.ModuleDict({"cls": nn.Linear(5, 2)})

baseline = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
`);
  assert.deepEqual(layerSummary(analysis), [
    'Encoder:fc1=Linear',
    'Model:head.out=Linear',
    'Model:features.0=Conv2d',
    'Model:features.2.0=Conv2d',
    'Model:features.2.1=BatchNorm2d',
    'Model:named.proj=Linear',
    'Model:named.out=Linear',
    'Model:blocks.0=Linear',
    'Model:heads.cls=Linear',
    '<root>:1=Linear',
  ]);
  assert.deepEqual(
    analysis.submodules.map((use) => `${use.owner}:${use.path.join('.')}=${use.className}`),
    ['Model:encoder=Encoder', 'Model:blocks.1=Encoder'],
  );
  // A container entry's lens goes on the entry's own line.
  const lineOf = (path: string): number =>
    analysis.layers.find((layer) => layer.path.join('.') === path)!.range.start.line;
  assert.equal(lineOf('features.0'), 17);
  assert.equal(lineOf('features.2.0'), 19);
  assert.equal(lineOf('features.2.1'), 19);
  assert.equal(lineOf('named.proj'), 22);
  assert.equal(lineOf('named.out'), 24);
});

test('a script with syntax errors still yields what can be read', async () => {
  const analysis = await analyze(`
import torch
from torch import nn

class Broken(nn.Module):
    def __init__(self):
        self.fc = nn.Linear(4, 2)
        self.oops = nn.Linear(4,

torch.save(model, "still-found.pt")
def half(:
`);
  assert.ok(analysis.references.length + analysis.layers.length > 0, 'nothing was read');
  assert.ok(layerSummary(analysis).includes('Broken:fc=Linear'));
});

test('non-ASCII paths and escapes decode, and ranges count UTF-16 units as LSP does', async () => {
  const { references } = await analyze('import torch\ntorch.save(s, "é😀\\tx\\u00e9.pt")\n');
  assert.equal(references[0]?.path, 'é😀\txé.pt');
  assert.deepEqual(references[0]?.pathRange, {
    start: { line: 1, character: 14 },
    end: { line: 1, character: 31 },
  });
});

test('empty, binary-looking and deeply nested sources do not fail', async () => {
  assert.deepEqual(await analyze(''), { references: [], layers: [], submodules: [], classes: [] });
  await analyze('\u0000\u00ff\ufffd' + 'x = ('.repeat(2000));
  const deep = `import torch\nx = ${'('.repeat(500)}"a.pt"${')'.repeat(500)}\ntorch.save(s, x)\n`;
  const { references } = await analyze(deep);
  assert.equal(references.length, 1);
});

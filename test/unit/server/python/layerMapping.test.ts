/**
 * Layer definitions mapped to the tensors of real files: safetensors and ONNX models the
 * tests write, and the Silero VAD model. Covers nesting, containers, wrappers' prefixes,
 * ONNX node scopes, shape checks and ambiguous matches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { ModelService } from '../../../../src/server/modelService';
import {
  checkInstanceShapes,
  layerPaths,
  mapLayer,
  type MappableModel,
  type ModelMatch,
  type ModuleIndex,
} from '../../../../src/server/python/layerMapping';
import { readModelState } from '../../../../src/server/python/modelFiles';
import type { ScriptAnalysis } from '../../../../src/server/python/scriptAnalysis';
import { analyzeSource } from '../../../../src/server/python/workspaceScripts';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  writeModel,
} from '../../../support/onnxBuilder';
import { writeSafetensors, type SafetensorsTensor } from '../../../support/safetensorsBuilder';
import { writeTorchCheckpoints } from '../../../support/torchCheckpoints';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let service: ModelService;
let folder: string;
let removeFolder: () => Promise<void>;

before(async () => {
  service = new ModelService({ workerCount: 1 });
  ({ folder, remove: removeFolder } = await makeTempFolder('layerlens-mapping-'));
});

after(async () => {
  service.dispose();
  await removeFolder();
});

function f32(name: string, shape: number[]): SafetensorsTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return { name, dtype: 'F32', shape, data: new Float32Array(count).fill(0.5) };
}

let fileCounter = 0;

async function safetensorsModel(tensors: SafetensorsTensor[]): Promise<MappableModel> {
  const path = await writeSafetensors(join(folder, `m${++fileCounter}.safetensors`), tensors);
  return opened(path);
}

async function opened(path: string): Promise<MappableModel> {
  const state = await readModelState(service, path);
  assert.equal(state.kind, 'model', `${path} did not open: ${JSON.stringify(state)}`);
  return state.kind === 'model' ? { path, tensors: state.tensors } : { path, tensors: [] };
}

function indexOf(analysis: ScriptAnalysis): ModuleIndex {
  return { classes: analysis.classes, submodules: analysis.submodules };
}

async function mapAll(
  source: string,
  models: MappableModel[],
): Promise<{ analysis: ScriptAnalysis; matches: Map<string, ModelMatch[]> }> {
  const analysis = await analyzeSource(source, join(folder, 'train.py'));
  const matches = new Map<string, ModelMatch[]>();
  for (const layer of analysis.layers) {
    matches.set(
      `${layer.owner ?? ''}:${layer.path.join('.')}`,
      mapLayer(layer, indexOf(analysis), models),
    );
  }
  return { analysis, matches };
}

/** `modulePath: tensor names` of each instance in the first model that matches. */
function instancesOf(matches: ModelMatch[] | undefined): string[] {
  return (matches?.[0]?.instances ?? []).map(
    (instance) => `${instance.modulePath}: ${instance.tensors.map((t) => t.tensor.name).join(' ')}`,
  );
}

function shapeTextOf(matches: ModelMatch[] | undefined): string {
  const instance = matches?.[0]?.instances[0];
  const check = instance ? checkInstanceShapes(instance) : null;
  return check
    ? `${check.status} ${check.parameter} ${check.declared?.join('x')} ${check.file.join('x')}`
    : 'none';
}

const NESTED_SCRIPT = `
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self, features=784):
        super().__init__()
        self.fc1 = nn.Linear(features, 256)
        self.norm = nn.LayerNorm(256)

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(256, 10)
`;

test('nested module classes map to prefixed state-dict names, with shapes checked', async () => {
  const file = await safetensorsModel([
    f32('encoder.fc1.weight', [256, 784]),
    f32('encoder.fc1.bias', [256]),
    f32('encoder.norm.weight', [256]),
    f32('encoder.norm.bias', [256]),
    f32('head.weight', [12, 256]),
    f32('head.bias', [12]),
  ]);
  const { analysis, matches } = await mapAll(NESTED_SCRIPT, [file]);
  const fc1 = analysis.layers.find((layer) => layer.path.join('.') === 'fc1')!;
  assert.deepEqual(layerPaths(fc1, indexOf(analysis)), ['fc1', 'encoder.fc1']);
  assert.deepEqual(instancesOf(matches.get('Encoder:fc1')), [
    'encoder.fc1: encoder.fc1.weight encoder.fc1.bias',
  ]);
  assert.equal(shapeTextOf(matches.get('Encoder:fc1')), 'match weight 256x784 256x784');
  assert.equal(shapeTextOf(matches.get('Encoder:norm')), 'match weight 256 256');
  // The file's head has 12 classes, the script declares 10: the check says so.
  assert.equal(shapeTextOf(matches.get('Classifier:head')), 'mismatch weight 10x256 12x256');
});

test('a PyTorch checkpoint: layers map onto its nested state-dict names as onto safetensors', async () => {
  await writeTorchCheckpoints(join(folder, 'pt'));
  const checkpoint = await opened(join(folder, 'pt', 'checkpoint.pt'));
  const script = `
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 6)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.embed = nn.Embedding(4, 3)
        self.conv = nn.Conv2d(3, 4, 2)
`;
  const { matches } = await mapAll(script, [checkpoint]);
  const fc1 = matches.get('Encoder:fc1')?.[0]?.instances[0];
  assert.equal(fc1?.modulePath, 'model.encoder.fc1');
  const names = fc1?.tensors.map((match) => match.tensor.name) ?? [];
  assert.ok(names.includes('model.encoder.fc1.weight') && names.includes('model.encoder.fc1.bias'));
  assert.equal(shapeTextOf(matches.get('Encoder:fc1')), 'match weight 6x5 6x5');
  assert.equal(shapeTextOf(matches.get('Net:embed')), 'match weight 4x3 4x3');
  // The file's conv has 2 output channels, the script declares 4: the check says so.
  assert.equal(shapeTextOf(matches.get('Net:conv')), 'mismatch weight 4x3x2x2 2x3x2x2');
});

test('Sequential indices, OrderedDict names and module-level containers', async () => {
  const file = await safetensorsModel([
    f32('features.0.weight', [8, 1, 3, 3]),
    f32('features.0.bias', [8]),
    f32('features.2.weight', [16, 4, 3, 3]),
    f32('named.proj.weight', [20, 10]),
    f32('0.weight', [10, 784]),
    f32('0.bias', [10]),
  ]);
  const { matches } = await mapAll(
    `
from collections import OrderedDict
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3, groups=2, bias=False))
        self.named = nn.Sequential(OrderedDict([("proj", nn.Linear(10, 20))]))

probe = nn.Sequential(nn.Linear(784, 10))
`,
    [file],
  );
  assert.deepEqual(instancesOf(matches.get('Net:features.0')), [
    'features.0: features.0.weight features.0.bias',
  ]);
  assert.equal(shapeTextOf(matches.get('Net:features.2')), 'match weight 16x4x3x3 16x4x3x3');
  assert.deepEqual(instancesOf(matches.get('Net:named.proj')), ['named.proj: named.proj.weight']);
  assert.deepEqual(instancesOf(matches.get(':0')), ['0: 0.weight 0.bias']);
});

test('a wrapper prefix the script does not show still matches (DataParallel module.)', async () => {
  const file = await safetensorsModel([
    f32('module.encoder.fc1.weight', [256, 784]),
    f32('module.head.weight', [10, 256]),
    f32('module.head.bias', [10]),
  ]);
  const { matches } = await mapAll(NESTED_SCRIPT, [file]);
  assert.deepEqual(instancesOf(matches.get('Encoder:fc1')), [
    'module.encoder.fc1: module.encoder.fc1.weight',
  ]);
  assert.equal(shapeTextOf(matches.get('Classifier:head')), 'match weight 10x256 10x256');
});

test('a class used twice maps to both places; a shared name is shown, not guessed', async () => {
  const file = await safetensorsModel([
    f32('left.proj.weight', [4, 4]),
    f32('right.proj.weight', [4, 4]),
    f32('other.proj.weight', [4, 4]),
    f32('stray.fc.weight', [2, 2]),
    f32('elsewhere.fc.weight', [3, 3]),
  ]);
  const { matches } = await mapAll(
    `
from torch import nn

class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

class Twin(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = Branch()
        self.right = Branch()

class Loose(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
`,
    [file],
  );
  // Known nesting (left., right.) is more specific than the bare name: other.proj is left out.
  assert.deepEqual(instancesOf(matches.get('Branch:proj')), [
    'left.proj: left.proj.weight',
    'right.proj: right.proj.weight',
  ]);
  // Nothing tells which fc is Loose's: both candidates, each with its own shape check.
  const loose = matches.get('Loose:fc')?.[0];
  assert.deepEqual(
    loose?.instances.map(
      (instance) => `${instance.modulePath} ${checkInstanceShapes(instance)?.status}`,
    ),
    ['stray.fc match', 'elsewhere.fc mismatch'],
  );
});

test('recurrent, attention, embedding, normalisation and transposed convolution layouts', async () => {
  const file = await safetensorsModel([
    f32('rnn.weight_ih_l0', [128, 64]),
    f32('rnn.weight_hh_l0', [128, 32]),
    f32('rnn.bias_ih_l0', [128]),
    f32('rnn.bias_hh_l0', [128]),
    f32('rnn.weight_ih_l0_reverse', [128, 64]),
    f32('rnn.weight_hh_l0_reverse', [128, 32]),
    f32('rnn.bias_ih_l0_reverse', [128]),
    f32('rnn.bias_hh_l0_reverse', [128]),
    f32('attn.in_proj_weight', [192, 64]),
    f32('attn.in_proj_bias', [192]),
    f32('attn.out_proj.weight', [64, 64]),
    f32('attn.out_proj.bias', [64]),
    f32('emb.weight', [1000, 64]),
    f32('bn.weight', [16]),
    f32('bn.bias', [16]),
    f32('bn.running_mean', [16]),
    f32('bn.running_var', [16]),
    { name: 'bn.num_batches_tracked', dtype: 'I64', shape: [], data: new BigInt64Array([7n]) },
    f32('up.weight', [16, 4, 2, 2]),
    f32('up.bias', [8]),
  ]);
  const { matches } = await mapAll(
    `
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(64, 32, bidirectional=True)
        self.attn = nn.MultiheadAttention(64, 8)
        self.emb = nn.Embedding(1000, 64)
        self.bn = nn.BatchNorm2d(16)
        self.up = nn.ConvTranspose2d(16, 8, kernel_size=2, groups=2)
`,
    [file],
  );
  assert.equal(matches.get('Net:rnn')?.[0]?.instances[0]?.tensors.length, 8);
  assert.equal(shapeTextOf(matches.get('Net:rnn')), 'match weight_ih_l0 128x64 128x64');
  assert.deepEqual(
    matches.get('Net:attn')?.[0]?.instances[0]?.tensors.map((t) => t.parameter),
    ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'],
  );
  assert.equal(shapeTextOf(matches.get('Net:attn')), 'match in_proj_weight 192x64 192x64');
  assert.equal(shapeTextOf(matches.get('Net:emb')), 'match weight 1000x64 1000x64');
  assert.equal(matches.get('Net:bn')?.[0]?.instances[0]?.tensors.length, 5);
  assert.equal(shapeTextOf(matches.get('Net:bn')), 'match weight 16 16');
  assert.equal(shapeTextOf(matches.get('Net:up')), 'match weight 16x4x2x2 16x4x2x2');
});

test('ONNX: initializer names, node scopes for unnamed MatMul weights, constants left out', async () => {
  const path = await writeModel(
    folder,
    'exported.onnx',
    model(
      graph({
        initializers: [
          // Linear without bias exported as MatMul: weight stored transposed, named by the exporter.
          tensor('onnx::MatMul_12', 'float32', [784, 256], new Array(784 * 256).fill(0.1)),
          tensor('/encoder/fc1/Constant_output_0', 'int64', [2], [1, 256]),
          tensor('head.weight', 'float32', [10, 256], new Array(2560).fill(0.1)),
          tensor('head.bias', 'float32', [10], new Array(10).fill(0)),
        ],
        nodes: [
          node('MatMul', ['x', 'onnx::MatMul_12'], ['h'], { name: '/encoder/fc1/MatMul' }),
          node('Reshape', ['h', '/encoder/fc1/Constant_output_0'], ['r'], {
            name: '/encoder/fc1/Reshape',
          }),
          node('Gemm', ['r', 'head.weight', 'head.bias'], ['y'], { name: '/head/Gemm' }),
        ],
      }),
    ),
  );
  const { matches } = await mapAll(NESTED_SCRIPT, [await opened(path)]);
  assert.deepEqual(instancesOf(matches.get('Encoder:fc1')), ['/encoder/fc1: onnx::MatMul_12']);
  // [in, out] under a MatMul is the ONNX layout of Linear(784, 256).
  assert.equal(shapeTextOf(matches.get('Encoder:fc1')), 'match weight 256x784 784x256');
  assert.deepEqual(instancesOf(matches.get('Classifier:head')), ['head: head.weight head.bias']);
  assert.deepEqual(instancesOf(matches.get('Encoder:norm')), []);
});

test('the real Silero VAD: each layer is found in both sample-rate branches', async () => {
  const silero = await opened(SILERO_V5);
  const { matches } = await mapAll(
    `
from torch import nn

class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTMCell(128, 128)
        self.decoder = nn.Sequential(nn.Dropout(0.1), nn.ReLU(), nn.Conv1d(128, 1, kernel_size=1), nn.Sigmoid())

class Block(nn.Module):
    def __init__(self, in_channels: int, out_channels):
        super().__init__()
        self.reparam_conv = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)

class SileroVad(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(129, 128), Block(128, 64), Block(64, 64), Block(64, 128))
        self.decoder = Decoder()
`,
    [silero],
  );
  const rnn = matches.get('Decoder:rnn')?.[0];
  assert.deepEqual(rnn?.instances.map((instance) => instance.modulePath).sort(), [
    'If_0_else_branch__Inline_0__decoder.rnn',
    'If_0_then_branch__Inline_0__decoder.rnn',
  ]);
  for (const instance of rnn?.instances ?? []) {
    assert.deepEqual(
      instance.tensors.map((t) => t.parameter),
      ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'],
    );
    assert.equal(checkInstanceShapes(instance)?.status, 'match');
  }
  assert.equal(matches.get('Decoder:decoder.2')?.[0]?.instances.length, 2);
  assert.equal(shapeTextOf(matches.get('Decoder:decoder.2')), 'match weight 1x128x1 1x128x1');
  // Each use of Block binds its own arguments: Block(129, 128) is the 16 kHz branch's first
  // stage; the 8 kHz branch has 65 frequency bins there, and the check says so.
  const conv = matches.get('Block:reparam_conv')?.[0];
  const checks = (conv?.instances ?? [])
    .map((instance) => {
      const check = checkInstanceShapes(instance);
      return `${instance.modulePath} ${check?.status} ${check?.declared?.join('x')}`;
    })
    .sort();
  assert.deepEqual(checks, [
    'If_0_else_branch__Inline_0__encoder.0.reparam_conv mismatch 128x129x3',
    'If_0_else_branch__Inline_0__encoder.1.reparam_conv match 64x128x3',
    'If_0_else_branch__Inline_0__encoder.2.reparam_conv match 64x64x3',
    'If_0_else_branch__Inline_0__encoder.3.reparam_conv match 128x64x3',
    'If_0_then_branch__Inline_0__encoder.0.reparam_conv match 128x129x3',
    'If_0_then_branch__Inline_0__encoder.1.reparam_conv match 64x128x3',
    'If_0_then_branch__Inline_0__encoder.2.reparam_conv match 64x64x3',
    'If_0_then_branch__Inline_0__encoder.3.reparam_conv match 128x64x3',
  ]);
});

test('constructor arguments bind through nested uses, by position and keyword', async () => {
  const file = await safetensorsModel([
    f32('wide.block.fc.weight', [32, 16]),
    f32('narrow.block.fc.weight', [8, 16]),
    f32('stem.fc1.weight', [256, 1024]),
  ]);
  const { matches } = await mapAll(
    `
from torch import nn

class Block(nn.Module):
    def __init__(self, inputs, *, outputs=4):
        super().__init__()
        self.fc = nn.Linear(inputs, outputs)

class Stage(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.block = Block(16, outputs=width)

class Encoder(nn.Module):
    def __init__(self, features=784):
        super().__init__()
        self.fc1 = nn.Linear(features, 256)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.wide = Stage(32)
        self.narrow = Stage(width=8)
        self.stem = Encoder(features=1024)
`,
    [file],
  );
  const block = matches.get('Block:fc')?.[0];
  assert.deepEqual(
    block?.instances.map((instance) => {
      const check = checkInstanceShapes(instance);
      return `${instance.modulePath} ${check?.status} ${check?.declared?.join('x')}`;
    }),
    ['wide.block.fc match 32x16', 'narrow.block.fc match 8x16'],
  );
  assert.equal(shapeTextOf(matches.get('Encoder:fc1')), 'match weight 256x1024 256x1024');
});

test('blocks built in a loop (ModuleList comprehension, add_module) map to every index', async () => {
  const tensors = [
    ...[0, 1, 2].flatMap((index) => [
      f32(`layers.${index}.attn.in_proj_weight`, [96, 32]),
      f32(`layers.${index}.mlp.fc.weight`, [64, 32]),
    ]),
    f32('stem.weight', [32, 3, 3, 3]),
    f32('layersX.mlp.fc.weight', [64, 32]),
  ];
  const file = await safetensorsModel(tensors);
  const { analysis, matches } = await mapAll(
    `
from torch import nn

class Mlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width * 2)

class Layer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, 4)
        self.mlp = Mlp(width)

class Transformer(nn.Module):
    def __init__(self, depth=3, width=32):
        super().__init__()
        self.add_module("stem", nn.Conv2d(3, width, 3))
        self.layers = nn.ModuleList([Layer(width) for _ in range(depth)])
`,
    [file],
  );
  assert.ok(
    analysis.submodules.some((use) => use.path.join('.') === 'layers.*'),
    JSON.stringify(analysis.submodules),
  );
  const fc = matches.get('Mlp:fc')?.[0];
  assert.deepEqual(
    fc?.instances.map(
      (instance) => `${instance.modulePath} ${checkInstanceShapes(instance)?.status}`,
    ),
    ['layers.0.mlp.fc match', 'layers.1.mlp.fc match', 'layers.2.mlp.fc match'],
  );
  assert.equal(matches.get('Layer:attn')?.[0]?.instances.length, 3);
  assert.equal(shapeTextOf(matches.get('Transformer:stem')), 'match weight 32x3x3x3 32x3x3x3');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onnx } from 'onnx-proto';
import { compressModel } from '../../../../src/server/compress';
import { onnxFormat } from '../../../../src/server/formats/onnx';
import type { OpenedModel } from '../../../../src/server/formats/types';
import { OnnxModel, PASS_THROUGH_OPS, usesOf } from '../../../../src/server/onnx';
import {
  attribute,
  graph,
  ifNode,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-onnx-model-');

let counter = 0;

function values(count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed));
}

async function open(m: onnx.IModelProto): Promise<OpenedModel> {
  return onnxFormat.open(await writeModel(folder(), `m${counter++}.onnx`, m));
}

function mlp(): onnx.IModelProto {
  return model(
    graph({
      initializers: [
        tensor('fc1.weight', 'float32', [8, 6], values(48, 1)),
        tensor('fc2.weight', 'float32', [6, 4], values(24, 2)),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', 8])],
      outputs: [valueInfo('y', 'float32', ['batch', 4])],
      nodes: [
        node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
        node('Relu', ['h0'], ['h1']),
        node('MatMul', ['h1', 'fc2.weight'], ['y'], { name: 'fc2' }),
      ],
    }),
  );
}

test('one pass-through table: DequantizeLinear is followed by the reader only', () => {
  for (const [op, entry] of PASS_THROUGH_OPS) {
    assert.equal(entry.reader, true, op);
    assert.equal(entry.compress, op !== 'DequantizeLinear', op);
  }
  assert.deepEqual(
    [...PASS_THROUGH_OPS].filter(([, e]) => e.rearranges).map(([op]) => op),
    ['Transpose', 'Reshape', 'Flatten'],
  );
});

test('a tensor read through DequantizeLinear belongs to its layer but is no weight to compress', async () => {
  const opened = await open(
    model(
      graph({
        initializers: [
          tensor(
            'q.w',
            'int8',
            [4, 3],
            values(12, 3).map((v) => Math.round(v * 100)),
          ),
          tensor('q.scale', 'float32', [3], [0.1, 0.2, 0.3]),
        ],
        inputs: [valueInfo('x', 'float32', [2, 4])],
        outputs: [valueInfo('y', 'float32', [2, 3])],
        nodes: [
          node('DequantizeLinear', ['q.w', 'q.scale'], ['q.deq'], {
            attributes: [attribute.int('axis', 1)],
          }),
          node('MatMul', ['x', 'q.deq'], ['y'], { name: 'qmatmul' }),
        ],
      }),
      { opsets: { '': 13 } },
    ),
  );
  const decoded = await opened.onnx!();
  const scale = decoded.slots.find((s) => s.name === 'q.scale')!;
  assert.equal(decoded.layerOf(scale.name, scale.scope)?.node.name, 'qmatmul');
  assert.match(
    decoded.weightUses(scale.name, scale.scope).problem ?? '',
    /used by DequantizeLinear as input 1/,
  );
});

test('the reader and compression both look through CastLike (the weight stays valid in onnxruntime)', async () => {
  const opened = await open(
    model(
      graph({
        initializers: [tensor('w', 'float32', [4, 3], values(12, 4))],
        inputs: [valueInfo('x', 'float32', [2, 4])],
        outputs: [valueInfo('y', 'float32', [2, 3])],
        nodes: [
          node('CastLike', ['w', 'x'], ['w_cast']),
          node('MatMul', ['x', 'w_cast'], ['y'], { name: 'mm' }),
        ],
      }),
      { opsets: { '': 15 } },
    ),
  );
  assert.equal(opened.tensors[0]!.info.node, 'mm');
  const decoded = await opened.onnx!();
  const { uses, problem } = decoded.weightUses('w', decoded.main);
  assert.equal(problem, undefined);
  assert.deepEqual(
    uses.map((u) => [u.node.name, u.chain]),
    [['mm', ['CastLike']]],
  );
  for (const method of ['prune', 'fp16'] as const) {
    const report = await compressModel(
      opened.path,
      { tensors: [], options: { method } },
      {},
      opened,
    );
    assert.equal(report.tensors.filter((t) => !t.skipped).length, 1, method);
    // onnxruntime ran the written model (pruning half of a 4 × 3 weight moves the output a lot).
    assert.equal(report.outputs.length, 1, method);
    if (method === 'fp16') assert.ok(report.outputs[0]!.cosine > 0.999);
  }
});

test('the use index of a shared model matches a fresh walk, subgraphs and shadowing included', async () => {
  const opened = await open(
    model(
      graph({
        initializers: [tensor('w', 'float32', [4, 4], values(16, 5))],
        inputs: [valueInfo('x', 'float32', [1, 4]), valueInfo('c', 'bool', [])],
        outputs: [valueInfo('y', 'float32', [1, 4])],
        nodes: [
          node('MatMul', ['x', 'w'], ['a']),
          ifNode(
            'c',
            ['y'],
            graph({
              nodes: [node('MatMul', ['a', 'w'], ['t'])],
              outputs: [valueInfo('t', 'float32', [1, 4])],
            }),
            graph({
              // Redefines `w`: its reads are not the outer tensor's.
              initializers: [tensor('w', 'float32', [4, 4], values(16, 6))],
              nodes: [node('MatMul', ['a', 'w'], ['e'])],
              outputs: [valueInfo('e', 'float32', [1, 4])],
            }),
          ),
        ],
      }),
    ),
  );
  const decoded = await opened.onnx!();
  for (const slot of decoded.slots) {
    const indexed = decoded.usesOf(slot.name, slot.scope);
    const walked = usesOf(slot.name, slot.scope);
    assert.deepEqual(
      indexed.map((u) => [u.scope.path, u.nodeIndex, u.inputIndex]),
      walked.map((u) => [u.scope.path, u.nodeIndex, u.inputIndex]),
      slot.name,
    );
  }
  assert.deepEqual(
    decoded.usesOf('w', decoded.main).map((u) => u.scope.path),
    ['', 'If_1/then_branch'],
  );
});

test('decoded once: the opened model keeps its decoded model, and compression edits a copy', async () => {
  const opened = await open(mlp());
  const decoded = await opened.onnx!();
  assert.equal(await opened.onnx!(), decoded, 'the same decoded model every time');
  const before = onnx.ModelProto.encode(decoded.proto).finish();
  const report = await compressModel(
    opened.path,
    { tensors: [], options: { method: 'int8' } },
    { settings: { 'validation.dimensions': { batch: 2 } } },
    opened,
  );
  assert.equal(report.tensors.filter((t) => !t.skipped).length, 2);
  assert.deepEqual(onnx.ModelProto.encode(decoded.proto).finish(), before);
  const copy = decoded.editableCopy();
  assert.notEqual(copy.proto, decoded.proto);
  assert.equal(copy.editable, true);
  assert.deepEqual(
    copy.slots.map((s) => s.name),
    decoded.slots.map((s) => s.name),
  );
});

test('a model read without the reader decodes the file itself', async () => {
  const opened = await open(mlp());
  const read = await OnnxModel.read(opened.path);
  read.checkSameTensors(opened, 'read');
  assert.equal(read.layerOf('fc2.weight', read.main)?.node.name, 'fc2');
});

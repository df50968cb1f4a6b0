/**
 * Graphs valid but out of topological order (the ONNX checker refuses them; some fp16
 * converters write them): the stable sort of src/server/onnx/topo.ts, and such a model
 * read, analysed and compressed, written sorted.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { onnx } from 'onnx-proto';
import { computeStats, memoryTensorBytes } from '../../../../src/server/analysis/stats';
import { compressModel } from '../../../../src/server/compress';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import { sortGraphs, topologicalOrder } from '../../../../src/server/onnx';
import { normalValues } from '../../../support/matrices';
import {
  graph,
  ifNode,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { checkOnnxModel } from '../../../support/python';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-topo-');

const names = (nodes: readonly onnx.INodeProto[] | null | undefined): string[] =>
  (nodes ?? []).map((n) => n.name ?? '');

test('a sorted graph is left as it is; an unsorted one is sorted stably', () => {
  const sorted = graph({
    nodes: [
      node('Relu', ['x'], ['a'], { name: 'A' }),
      node('Relu', ['a'], ['b'], { name: 'B' }),
      node('Relu', ['x'], ['c'], { name: 'C' }),
    ],
  });
  assert.equal(topologicalOrder(sorted, 'm.onnx', ''), undefined);
  const unsorted = graph({
    nodes: [
      node('Add', ['b', 'c'], ['y'], { name: 'Y' }),
      node('Relu', ['a'], ['b'], { name: 'B' }),
      node('Relu', ['x'], ['c'], { name: 'C' }),
      node('Relu', ['x'], ['a'], { name: 'A' }),
    ],
  });
  // C and A are ready first and keep their relative order; B after A; Y last.
  assert.deepEqual(names(topologicalOrder(unsorted, 'm.onnx', '')), ['C', 'A', 'B', 'Y']);
});

test("a subgraph's reads of outer names order the node that holds it", () => {
  const body = graph({
    nodes: [node('Identity', ['late'], ['out'], { name: 'inner' })],
    outputs: [valueInfo('out', 'float32', [1])],
  });
  const g = graph({
    nodes: [
      ifNode('cond', ['y'], body, body, 'If'),
      node('Relu', ['x'], ['late'], { name: 'Producer' }),
    ],
  });
  const m = model(g);
  assert.equal(sortGraphs(m, 'm.onnx'), 1);
  assert.deepEqual(names(m.graph!.node), ['Producer', 'If']);
});

test('a cycle is refused with the file and the node named', () => {
  const g = graph({
    nodes: [node('Relu', ['b'], ['a'], { name: 'A' }), node('Relu', ['a'], ['b'], { name: 'B' })],
  });
  assert.throws(
    () => topologicalOrder(g, '/models/m.onnx', ''),
    (error: unknown) =>
      error instanceof ModelFileError && /m\.onnx.*cycle.*'A'/.test(error.message),
  );
});

test('an unsorted model is read, analysed and compressed, and written sorted', async () => {
  const w1 = tensor('w1', 'float32', [16, 32], normalValues(512, 1, 0.25));
  const w2 = tensor('w2', 'float32', [32, 8], normalValues(256, 2, 0.2));
  const thenBranch = graph({
    nodes: [node('Relu', ['h'], ['t'], { name: 'then_relu' })],
    outputs: [valueInfo('t', 'float32', [1, 32])],
  });
  const elseBranch = graph({
    nodes: [node('Neg', ['h'], ['e'], { name: 'else_neg' })],
    outputs: [valueInfo('e', 'float32', [1, 32])],
  });
  // Every node listed before the node producing its input (reverse order).
  const g = graph({
    initializers: [w1, w2, tensor('flag', 'bool', [], [1])],
    inputs: [valueInfo('x', 'float32', [1, 16])],
    outputs: [valueInfo('y', 'float32', [1, 8])],
    nodes: [
      node('MatMul', ['a', 'w2'], ['y'], { name: 'fc2' }),
      ifNode('flag', ['a'], thenBranch, elseBranch, 'gate'),
      node('MatMul', ['x', 'w1'], ['h'], { name: 'fc1' }),
    ],
  });
  const path = await writeModel(folder(), 'unsorted.onnx', model(g, { opsets: { '': 17 } }));
  assert.match(checkOnnxModel(path).error ?? '', /topologically sorted/);

  const opened = await openModelFile(path);
  const byName = new Map(opened.tensors.map((t) => [t.info.name, t]));
  assert.equal(byName.get('w1')!.info.node, 'fc1');
  assert.equal(byName.get('w2')!.info.node, 'fc2');
  const w1Entry = byName.get('w1')!;
  const stats = await computeStats(
    'float32',
    w1Entry.info.parameterCount,
    memoryTensorBytes(loadTensorData(w1Entry.data)),
  );
  assert.equal(stats.count, 512);

  const report = await compressModel(path, { tensors: [], options: { method: 'int8' } });
  assert.deepEqual(
    report.tensors.filter((t) => !t.skipped).map((t) => t.name),
    ['w1', 'w2'],
  );
  assert.ok(report.verdict.validated, report.validation.join('; '));
  assert.ok(report.validation.some((line) => /topological order \(1 graph was/.test(line)));
  console.log(`unsorted MLP, int8: output cosine ${report.outputs[0]!.cosine.toFixed(6)}`);
  assert.ok(report.outputs[0]!.cosine > 0.999);
  const written = onnx.ModelProto.decode(await readFile(report.output));
  assert.equal(topologicalOrder(written.graph!, report.output, ''), undefined);
  assert.equal(checkOnnxModel(report.output).error, null);
});

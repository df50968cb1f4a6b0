/**
 * The graph view of ONNX models: Silero VAD's If branches as groups inside their node,
 * Constants and initializers as badges, edges with declared shapes, name scopes as nested
 * groups; node counts checked against Python's onnx package.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { openModelFile, graphOf } from '../../../../src/server/formats/registry';
import { buildModuleTree } from '../../../../src/server/graph/moduleTree';
import { LosslessService } from '../../../../src/server/lossless/service';
import { ModelService } from '../../../../src/server/modelService';
import { scopeParts } from '../../../../src/server/graph/onnxGraph';
import { MAX_GROUP_DEPTH } from '../../../../src/shared/limits';
import { ROOT_GROUP, type ModelGraph } from '../../../../src/shared/graph';
import { writeScopedModel } from '../../../support/graphModels';
import { makeTempFolder } from '../../../support/onnxBuilder';
import { pythonWithNumpy } from '../../../support/python';
import { writeSafetensors } from '../../../support/safetensorsBuilder';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

/** Operator nodes other than Constant, over every graph, and the If nodes, counted by Python's onnx. */
function pythonCounts(file: string): { operators: number; ifs: number } {
  const script = `
import onnx, sys, json
m = onnx.load(sys.argv[1])
ops = 0; ifs = 0
def walk(g):
    global ops, ifs
    for n in g.node:
        if n.op_type != 'Constant': ops += 1
        if n.op_type == 'If': ifs += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH: walk(a.g)
            for sub in a.graphs: walk(sub)
walk(m.graph)
print(json.dumps({'operators': ops, 'ifs': ifs}))
`;
  return JSON.parse(
    execFileSync(pythonWithNumpy(), ['-c', script, file], { encoding: 'utf8' }),
  ) as {
    operators: number;
    ifs: number;
  };
}

function groupPath(graph: ModelGraph, id: number): string[] {
  const labels: string[] = [];
  for (let g = id; g !== ROOT_GROUP; g = graph.groups[g]!.parent)
    labels.unshift(graph.groups[g]!.label);
  return labels;
}

test('Silero VAD: each If node is a group holding its then/else branches; Constants are badges', async () => {
  const opened = await openModelFile(SILERO_V5);
  const graph = await graphOf(opened);
  const expected = pythonCounts(SILERO_V5);
  const operators = graph.nodes.filter((n) => n.op !== 'Input' && n.op !== 'Output');
  assert.equal(operators.length, expected.operators);
  assert.equal(graph.nodes.filter((n) => n.op === 'Constant').length, 0);
  const ifs = graph.nodes.filter((n) => n.op === 'If');
  assert.equal(ifs.length, expected.ifs);
  assert.ok(ifs.length > 0);
  for (const ifNode of ifs) {
    assert.notEqual(ifNode.expands, undefined, `${ifNode.name} expands`);
    const group = graph.groups[ifNode.expands!]!;
    assert.equal(group.kind, 'node');
    assert.equal(group.node, ifNode.id);
    const branches = graph.groups.filter((g) => g.parent === group.id).map((g) => g.label);
    assert.deepEqual(branches.sort(), ['else_branch', 'then_branch']);
    // Every node inside a branch sits below the branch's group.
    const inside = graph.nodes.filter((n) => groupPath(graph, n.group).includes(ifNode.name));
    assert.ok(inside.length > 0, `${ifNode.name} has nodes in its branches`);
  }
  // Every stored tensor a node reads is a badge on some node (none are left out).
  const badged = new Set(graph.nodes.flatMap((n) => n.tensors));
  const consumed = opened.tensors.filter((t) => badged.has(t.info.index));
  assert.ok(
    consumed.length >= opened.tensors.length * 0.9,
    `${consumed.length} of ${opened.tensors.length} tensors are badges`,
  );
  // Edges connect real nodes.
  for (const edge of graph.edges) {
    assert.ok(graph.nodes[edge.from] && graph.nodes[edge.to]);
  }
});

test('name scopes become nested groups; edges carry declared shapes', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-graph-');
  try {
    const file = await writeScopedModel(folder, 'scoped.onnx', { stages: 3, nodesPerStage: 8 });
    const graph = await graphOf(await openModelFile(file));
    const stages = graph.groups.filter((g) => g.parent === ROOT_GROUP);
    assert.deepEqual(
      stages.map((g) => g.label),
      ['stage.0', 'stage.1', 'stage.2'],
    );
    const ops = graph.groups.filter((g) => g.parent === stages[1]!.id);
    assert.equal(ops.length, 8);
    assert.equal(ops[0]!.path, '/stage.1/op_0');
    const matmul = graph.nodes.find((n) => n.name === '/stage.1/op_0/MatMul')!;
    assert.equal(matmul.group, ops[0]!.id);
    assert.equal(matmul.tensors.length, 1, 'its weight is a badge');
    const fromInput = graph.edges.find((e) => e.tensor === 'input')!;
    assert.equal(fromInput.shape, 'batch×2');
    assert.equal(graph.nodes[fromInput.from]!.op, 'Input');
    // 24 operators + the input + the output.
    assert.equal(graph.nodes.length, 26);
  } finally {
    await remove();
  }
});

test('a scope deeper than MAX_GROUP_DEPTH keeps its rest in the last group', () => {
  const deep = Array.from({ length: MAX_GROUP_DEPTH + 5 }, (_, i) => `s${i}`).join('/');
  const parts = scopeParts(`/${deep}/Node`);
  assert.equal(parts.length, MAX_GROUP_DEPTH);
  assert.equal(
    parts.at(-1),
    Array.from({ length: 6 }, (_, i) => `s${MAX_GROUP_DEPTH - 1 + i}`).join('/'),
  );
});

test('a format without a graph says so; its module tree sums bytes and parameters per group', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-graph-');
  try {
    const file = path.join(folder, 'mlp.safetensors');
    await writeSafetensors(file, [
      { name: 'model.layers.0.up.weight', dtype: 'F32', shape: [4, 2], data: new Float32Array(8) },
      { name: 'model.layers.0.up.bias', dtype: 'F32', shape: [4], data: new Float32Array(4) },
      { name: 'model.layers.1.up.weight', dtype: 'F16', shape: [4, 4], data: new Uint16Array(16) },
      { name: 'lm_head.weight', dtype: 'F32', shape: [3], data: new Float32Array(3) },
    ]);
    const opened = await openModelFile(file);
    await assert.rejects(graphOf(opened), /store no graph of operators/);
    const tree = buildModuleTree(opened.tensors.map((t) => t.info));
    const byPath = new Map(tree.groups.map((g) => [g.path, g]));
    assert.equal(byPath.get('')!.bytes, 32 + 16 + 32 + 12);
    assert.equal(byPath.get('model.layers')!.params, 8 + 4 + 16);
    assert.equal(byPath.get('model.layers.0')!.bytes, 48);
    assert.equal(byPath.get('model.layers.0')!.tensorCount, 2);
    const leaf = byPath.get('model.layers.1.up.weight')!;
    assert.equal(leaf.bytes, 32);
    assert.equal(opened.tensors[leaf.tensor!]!.info.name, 'model.layers.1.up.weight');
    // Parents come before their children.
    for (const g of tree.groups) assert.ok(g.parent < g.id);
  } finally {
    await remove();
  }
});

test('a packed ONNX model draws the graph of the model it holds; its module tree comes from its tensors', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-graph-');
  const service = new ModelService({ workerCount: 1 });
  const lossless = new LosslessService(service, 1);
  try {
    const file = await writeScopedModel(folder, 'packed.onnx', { stages: 2, nodesPerStage: 4 });
    const packed = (await lossless.pack(file)).out;
    const opened = await openModelFile(packed);
    const drawn = await graphOf(opened);
    assert.deepEqual(drawn, await graphOf(await openModelFile(file)));
    assert.ok(drawn.nodes.some((n) => n.op === 'MatMul'));
    const tree = buildModuleTree(opened.tensors.map((t) => t.info));
    assert.deepEqual(
      tree.groups.filter((g) => g.parent === 0).map((g) => g.label),
      ['stage'],
    );
    assert.equal(tree.groups[0]!.tensorCount, 2);
  } finally {
    lossless.dispose();
    service.dispose();
    await remove();
  }
});

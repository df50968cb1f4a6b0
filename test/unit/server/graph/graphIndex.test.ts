/**
 * The graph as the view fetches it, group by group: the top level of a scoped model, the
 * contents of an opened group checked against the ONNX model's own nodes and values, searches
 * that find nodes inside closed groups (Silero VAD's If branches), and the readers of a tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openModelFile } from '../../../../src/server/formats/registry';
import { graphIndexOf } from '../../../../src/server/graph/graphIndex';
import { ROOT_GROUP, type GraphItem } from '../../../../src/shared/graph';
import { scopedModel, writeScopedModel } from '../../../support/graphModels';
import { makeTempFolder } from '../../../support/onnxBuilder';

const SILERO_V5 = path.resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

const byLabel = (items: readonly GraphItem[], label: string) =>
  items.find((item) => item.label === label)!;

test('the top level holds the stage groups with their counts; an opened stage holds its nodes and edges as the model does', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-graph-index-');
  try {
    const options = { stages: 3, nodesPerStage: 8 };
    const file = await writeScopedModel(folder, 'scoped.onnx', options);
    const opened = await openModelFile(file);
    const index = await graphIndexOf(opened);
    assert.equal(await graphIndexOf(opened), index, 'one index per opened model');

    const top = index.overview();
    assert.equal(top.group, ROOT_GROUP);
    assert.equal(top.nodeCount, 3 * 8 + 2);
    // The stages, then the Input and Output nodes (named after their values).
    assert.deepEqual(
      top.items.map((item) => item.label),
      ['stage.0', 'stage.1', 'stage.2', 'input', 'stage.2.v7'],
    );
    const stage1 = byLabel(top.items, 'stage.1');
    assert.match(stage1.key, /^g\d+$/);
    assert.equal(stage1.nodeCount, 8);
    assert.equal(stage1.childCount, 8);
    const names = (indices: readonly number[]) =>
      indices.map((i) => opened.tensors[i]!.info.name).sort();
    assert.deepEqual(names(stage1.tensors), ['stage.1.op_0.weight', 'stage.1.op_4.weight']);
    // Between the stages, the chain: input → stage.0 → stage.1 → stage.2 → output.
    const label = (key: string) => top.items.find((item) => item.key === key)!.label;
    assert.deepEqual(top.edges.map((edge) => `${label(edge.from)}>${label(edge.to)}`).sort(), [
      'input>stage.0',
      'stage.0>stage.1',
      'stage.1>stage.2',
      'stage.2>stage.2.v7',
    ]);

    // Opening stage.1: its nodes and the values between them, from the model's own proto.
    const proto = scopedModel(options);
    const own = proto.graph!.node!.filter((node) => node.name!.startsWith('/stage.1/'));
    const contents = index.contents(Number(stage1.key.slice(1)));
    assert.deepEqual(
      contents.items.map((item) => [item.label, item.op, item.nodeCount]),
      own.map((node) => [node.name, node.opType, 1]),
    );
    for (const item of contents.items) {
      const node = own.find((n) => n.name === item.label)!;
      const weights = node.input!.filter((name) => name.endsWith('.weight'));
      assert.deepEqual(names(item.tensors), weights);
    }
    const producer = new Map(own.flatMap((node) => node.output!.map((o) => [o, node.name!])));
    const expected = own.flatMap((node) =>
      node.input!.filter((i) => producer.has(i)).map((i) => `${producer.get(i)}>${node.name}`),
    );
    const keyLabel = (key: string) => contents.items.find((item) => item.key === key)!.label;
    assert.deepEqual(
      contents.edges.map((edge) => `${keyLabel(edge.from)}>${keyLabel(edge.to)}`).sort(),
      expected.sort(),
    );
    assert.equal(contents.edges[0]!.shape, null, 'the generated model declares no inner shapes');

    assert.throws(() => index.contents(999), /no group 999/);
  } finally {
    await remove();
  }
});

test('Silero VAD: a search finds nodes inside closed If branches, with the groups to open around them', async () => {
  const opened = await openModelFile(SILERO_V5);
  const index = await graphIndexOf(opened);
  const found = index.find({ text: 'conv' });
  assert.ok(found.total > 0);
  assert.equal(found.chains.length, found.total);
  let inBranch = 0;
  let convs = 0;
  for (const chain of found.chains) {
    assert.equal(chain[0], 'g0');
    // Opening the chain's groups one after the other reaches the match.
    for (let i = 1; i < chain.length; i++) {
      const keys = index.contents(Number(chain[i - 1]!.slice(1))).items.map((item) => item.key);
      assert.ok(keys.includes(chain[i]!), `${chain[i]} is inside ${chain[i - 1]}`);
    }
    const last = index
      .contents(Number(chain.at(-2)!.slice(1)))
      .items.find((item) => item.key === chain.at(-1))!;
    if (last.op === 'Conv') convs++;
    if (chain.length > 3) inBranch++;
  }
  assert.ok(inBranch > 0, 'some matches sit inside If branches');
  // Every Conv node is found (besides nodes whose names or values name conv).
  const expectedConvs = index.graph.nodes.filter((node) => node.op === 'Conv').length;
  assert.ok(expectedConvs > 0);
  assert.equal(convs, expectedConvs);
  // The readers of a stored tensor: the nodes holding it as a badge.
  const tensor = found.chains
    .map((chain) =>
      index
        .contents(Number(chain.at(-2)!.slice(1)))
        .items.find((item) => item.key === chain.at(-1))!,
    )
    .find((item) => item.tensors.length > 0)!.tensors[0]!;
  const readers = index.find({ tensor });
  assert.ok(readers.total >= 1);
  for (const chain of readers.chains) {
    const item = index
      .contents(Number(chain.at(-2)!.slice(1)))
      .items.find((candidate) => candidate.key === chain.at(-1))!;
    assert.ok(item.tensors.includes(tensor));
  }
  assert.deepEqual(index.find({ text: '  ' }), { total: 0, chains: [] });
});

test('a 20,000-node model: the first answer holds only its 20 stages, input and output', async () => {
  const { folder, remove } = await makeTempFolder('layerlens-graph-index-');
  try {
    const file = await writeScopedModel(folder, 'large.onnx', { stages: 20, nodesPerStage: 1000 });
    const index = await graphIndexOf(await openModelFile(file));
    const top = index.overview();
    assert.equal(top.nodeCount, 20_002);
    assert.equal(top.items.length, 22);
    assert.equal(
      top.items.reduce((sum, item) => sum + item.nodeCount, 0),
      20_002,
    );
    const bytes = JSON.stringify(top).length;
    assert.ok(bytes < 100_000, `the top level is ${bytes} bytes of JSON`);
    const stage = index.contents(Number(byLabel(top.items, 'stage.7').key.slice(1)));
    assert.equal(stage.items.length, 1000);
  } finally {
    await remove();
  }
});

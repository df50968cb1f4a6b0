/**
 * The ONNX reader on real trained models: Silero VAD legacy keeps its weights in
 * main-graph initializers read inside If branches and in initializers of nested If
 * branches; v5 and v6 keep them in Constant nodes inside If branches. Counts are checked
 * against an independent wire-format walk, inputs and outputs against onnxruntime.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { InferenceSession } from 'onnxruntime-node';
import { onnxFormat } from '../../../../src/server/formats/onnx';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import { countStoredTensors } from '../../../support/protoWire';

const MODEL_FOLDER = join(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  'node_modules',
  '@ricky0123',
  'vad-web',
  'dist',
);

/** Counts found by both readers (pinned so that a change in either one shows). */
const EXPECTED: Readonly<Record<string, { tensors: number; parameters: number }>> = {
  legacy: { tensors: 259, parameters: 445_117 },
  v5: { tensors: 341, parameters: 545_597 },
  v6: { tensors: 341, parameters: 545_597 },
};

for (const version of ['legacy', 'v5', 'v6']) {
  const path = join(MODEL_FOLDER, `silero_vad_${version}.onnx`);

  describe(`Silero VAD ${version}`, () => {
    test('tensor and parameter counts match an independent wire-format walk', async () => {
      const bytes = await readFile(path);
      const independent = countStoredTensors(bytes);
      const opened = await onnxFormat.open(path);
      assert.ok(independent.graphCount > 1, 'the model has subgraphs');
      assert.ok(independent.tensorCount > 100);
      assert.equal(opened.summary.tensorCount, independent.tensorCount);
      assert.equal(opened.summary.tensorCount, EXPECTED[version]!.tensors);
      assert.equal(opened.summary.parameterCount, EXPECTED[version]!.parameters);
      assert.equal(opened.summary.parameterCount, independent.parameterCount);
      assert.equal(opened.tensors.length, opened.summary.tensorCount);
      assert.equal(
        opened.tensors.reduce((sum, t) => sum + t.info.parameterCount, 0),
        opened.summary.parameterCount,
      );
      assert.ok(onnxFormat.match(bytes.subarray(0, 4096)));
    });

    test('weights are found inside or read from If subgraphs and attributed to compute ops', async () => {
      const opened = await onnxFormat.open(path);
      const large = opened.tensors.filter((t) => t.info.parameterCount >= 1000);
      assert.ok(large.length > 10);
      for (const { info, data } of large) {
        assert.equal(info.dtype, 'float32', info.name);
        // The main graphs hold only Equal, If, Identity and Constant nodes: a compute op
        // here means the consumer was found inside a subgraph.
        assert.ok(['Conv', 'LSTM'].includes(info.op ?? ''), `${info.name} is used by ${info.op}`);
        assert.equal(data.length, info.parameterCount * 4);
        if (version === 'legacy') {
          assert.equal(info.location, 'initializer');
        } else {
          assert.equal(info.location, 'constant');
          assert.match(info.graph, /^If_0\/(then|else)_branch$/, info.name);
        }
      }
      if (version === 'legacy') {
        assert.ok(
          large.some((t) => t.info.graph === '' && t.info.op === 'Conv'),
          'main-graph weights used inside a branch',
        );
        assert.ok(
          large.some((t) => t.info.graph.split('/').length === 4 && t.info.op === 'LSTM'),
          'weights in nested If branches',
        );
      }
      const sample = large[0]!;
      const values = new Float32Array(loadTensorData(sample.data).slice().buffer);
      assert.ok(values.every(Number.isFinite), 'trained weights are finite numbers');
      assert.ok(
        values.some((v) => v !== 0),
        'trained weights are not all zero',
      );
    });

    test("main-graph inputs and outputs match onnxruntime's", async () => {
      const [opened, session] = await Promise.all([
        onnxFormat.open(path),
        InferenceSession.create(path),
      ]);
      try {
        assert.deepEqual(
          opened.summary.inputs.map((i) => i.name),
          session.inputNames,
        );
        assert.deepEqual(
          opened.summary.outputs.map((o) => o.name),
          session.outputNames,
        );
      } finally {
        await session.release();
      }
    });
  });
}

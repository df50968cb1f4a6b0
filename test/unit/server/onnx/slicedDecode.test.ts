/**
 * The sliced ModelProto decode (src/server/onnx/slicedDecode.ts) gives the same message as
 * decoding in one go, keeps byte fields as views of the file's buffer, and fails as that
 * does on corrupt bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onnx } from 'onnx-proto';
import { TimeSlicer } from '../../../../src/server/jobs/eventLoop';
import { decodeModelSliced } from '../../../../src/server/onnx/slicedDecode';
import { encodeModel, graph, model, node, tensor, valueInfo } from '../../../support/onnxBuilder';

const asObject = (message: onnx.ModelProto) =>
  onnx.ModelProto.toObject(message, { bytes: String, longs: String });

function manyTensors(count: number): Uint8Array {
  return encodeModel(
    model(
      graph({
        nodes: [node('Add', ['x', 't0'], ['y'], { name: 'add' })],
        initializers: Array.from({ length: count }, (_, i) =>
          tensor(`t${i}`, 'float32', [2], [i, -i]),
        ),
        inputs: [valueInfo('x', 'float32', [2])],
        outputs: [valueInfo('y', 'float32', [2])],
      }),
      { metadata: { author: 'test' }, docString: 'many tensors' },
    ),
  );
}

test('the sliced decode equals the one-go decode, byte fields viewing the same buffer', async () => {
  // More fields than one run holds, so that runs are merged.
  const bytes = manyTensors(5000);
  const sliced = await decodeModelSliced(bytes, new TimeSlicer());
  const whole = onnx.ModelProto.decode(bytes);
  assert.deepEqual(asObject(sliced), asObject(whole));
  const last = sliced.graph!.initializer![4999]!.rawData!;
  assert.equal(last.buffer, bytes.buffer);
  assert.equal(last.byteOffset, whole.graph!.initializer![4999]!.rawData!.byteOffset);
});

test('a graph field given twice: the last one stands, as in the one-go decode', async () => {
  const first = manyTensors(3);
  const second = encodeModel({
    graph: { name: 'renamed', initializer: [tensor('u', 'int8', [1], [7])] },
  });
  const bytes = Buffer.concat([first, second]);
  const sliced = await decodeModelSliced(bytes, new TimeSlicer());
  assert.deepEqual(asObject(sliced), asObject(onnx.ModelProto.decode(bytes)));
  assert.equal(sliced.graph!.name, 'renamed');
  assert.equal(sliced.graph!.initializer!.length, 1);
});

test('truncated bytes give what the one-go decode gives: the same message or an error', async () => {
  const bytes = manyTensors(100);
  let failed = 0;
  for (let end = 1; end < bytes.length; end += 37) {
    const cut = bytes.subarray(0, end);
    let whole: onnx.ModelProto | undefined;
    try {
      whole = onnx.ModelProto.decode(cut);
    } catch {
      failed++;
      await assert.rejects(decodeModelSliced(cut, new TimeSlicer()), `cut at ${end}`);
      continue;
    }
    assert.deepEqual(asObject(await decodeModelSliced(cut, new TimeSlicer())), asObject(whole));
  }
  assert.ok(failed > 0);
});

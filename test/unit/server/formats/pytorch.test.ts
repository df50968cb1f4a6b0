import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeValues, isNumericDType } from '../../../../src/server/analysis/decode';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import { pytorchFormat } from '../../../../src/server/formats/pytorch';
import { openModelFile } from '../../../../src/server/formats/registry';
import type { OpenedModel, TensorEntry } from '../../../../src/server/formats/types';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import type { DType } from '../../../../src/shared/dtypes';
import { makeTempDir } from '../../../support/safetensorsBuilder';
import { writeTorchCheckpoints, type CheckpointReference } from '../../../support/torchCheckpoints';

let dir: string;
let removeDir: () => Promise<void>;
let reference: Readonly<Record<string, CheckpointReference>>;
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-pt-'));
  reference = await writeTorchCheckpoints(dir);
});
after(() => removeDir());

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  LongStorage: 'int64',
  IntStorage: 'int32',
  DoubleStorage: 'float64',
  BoolStorage: 'bool',
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Every tensor of the reference is in the model with numpy's dtype, shape, bytes and values. */
function assertMatchesReference(model: OpenedModel, expected: CheckpointReference): void {
  const byName = new Map(model.tensors.map((entry) => [entry.info.name, entry]));
  assert.deepEqual([...byName.keys()].sort(), Object.keys(expected.tensors).sort());
  let parameters = 0;
  for (const [name, tensor] of Object.entries(expected.tensors)) {
    const entry = byName.get(name)!;
    const dtype = STORAGE_DTYPES[tensor.storage]!;
    assert.equal(entry.info.dtype, dtype, name);
    assert.deepEqual(entry.info.shape, tensor.shape, name);
    const count = tensor.shape.reduce((product, side) => product * side, 1);
    assert.equal(entry.info.parameterCount, count, name);
    parameters += count;
    const bytes = loadTensorData(entry.data);
    assert.equal(bytes.byteLength, entry.data.length, name);
    assert.equal(hex(bytes), tensor.hex, `${name}: bytes`);
    if (isNumericDType(dtype) && dtype !== 'int64') {
      const values = Array.from(decodeValues(dtype, bytes, count), Number);
      assert.deepEqual(values, tensor.values, `${name}: values`);
    }
  }
  assert.equal(model.summary.parameterCount, parameters);
}

test('a torch.save zip checkpoint: nested dicts, views, tied weights and every dtype match numpy', async () => {
  const model = await openModelFile(join(dir, 'checkpoint.pt'));
  assert.equal(model.summary.format, 'pytorch');
  assertMatchesReference(model, reference['checkpoint.pt']!);
  const entry = (name: string): TensorEntry =>
    model.tensors.find((candidate) => candidate.info.name === name)!;
  // contiguous tensors are file ranges; strided views are gathered
  assert.equal(entry('model.encoder.fc1.weight').data.kind, 'file');
  assert.equal(entry('model.encoder.fc1.row2').data.kind, 'file');
  assert.equal(entry('model.encoder.fc1.weight_t').data.kind, 'memory');
  assert.equal(entry('model.encoder.fc1.cols').data.kind, 'memory');
  assert.equal(entry('model.encoder.fc1.weight_t').info.byteOffset, null);
  // tied weights read the same bytes of the file
  const embed = entry('model.embed.weight').data;
  const decoder = entry('model.decoder.weight').data;
  assert.ok(embed.kind === 'file' && decoder.kind === 'file');
  assert.equal(embed.offset, decoder.offset);
  assert.equal(entry('model.encoder.fc1.weight').info.node, 'model.encoder.fc1');
  assert.equal(entry('model.encoder.fc1.weight').info.location, 'pytorch');
  const metadata = new Map(model.summary.metadata.map(({ key, value }) => [key, value]));
  assert.equal(metadata.get('epoch'), '7');
  assert.equal(metadata.get('name'), 'run-1');
  assert.equal(metadata.get('big'), String(2 ** 40));
  assert.equal(metadata.get('negative'), '-5');
  assert.equal(metadata.get('ratio'), '0.5');
  assert.equal(metadata.get('flag'), 'true');
  assert.equal(metadata.get('nothing'), 'None');
  assert.equal(metadata.get('optimizer.param_groups.0.lr'), '0.001');
  assert.equal(metadata.get('archive'), 'archive');
  assert.ok(model.summary.warnings.some((warning) => /share 2 storages/.test(warning)));
});

test('the fixtures use every opcode torch.save emits (protocol 2) and those of protocol 4', () => {
  const protocol2 = reference['checkpoint.pt']!.opcodes!;
  for (const opcode of [
    'PROTO',
    'EMPTY_DICT',
    'EMPTY_LIST',
    'EMPTY_TUPLE',
    'MARK',
    'BINUNICODE',
    'BINPUT',
    'LONG_BINPUT',
    'BINGET',
    'LONG_BINGET',
    'BININT',
    'BININT1',
    'BININT2',
    'LONG1',
    'BINFLOAT',
    'TUPLE',
    'TUPLE1',
    'TUPLE2',
    'TUPLE3',
    'SETITEM',
    'SETITEMS',
    'APPEND',
    'APPENDS',
    'GLOBAL',
    'REDUCE',
    'BUILD',
    'NEWOBJ',
    'BINPERSID',
    'NONE',
    'NEWTRUE',
    'NEWFALSE',
    'STOP',
  ]) {
    assert.ok(protocol2.includes(opcode), `checkpoint.pt uses ${opcode}`);
  }
  const protocol4 = reference['protocol4.pth']!.opcodes!;
  for (const opcode of ['FRAME', 'MEMOIZE', 'SHORT_BINUNICODE', 'STACK_GLOBAL']) {
    assert.ok(protocol4.includes(opcode), `protocol4.pth uses ${opcode}`);
  }
});

test('protocol 4, a .bin, deflated records and the legacy format match numpy', async () => {
  for (const name of ['protocol4.pth', 'pytorch_model.bin', 'deflated.ckpt', 'legacy.pt']) {
    const model = await openModelFile(join(dir, name));
    assert.equal(model.summary.format, 'pytorch', name);
    assertMatchesReference(model, reference[name]!);
  }
  const legacy = await openModelFile(join(dir, 'legacy.pt'));
  assert.ok(legacy.summary.metadata.some(({ value }) => /legacy/.test(value)));
  const deflated = await openModelFile(join(dir, 'deflated.ckpt'));
  assert.ok(deflated.tensors.every((entry) => entry.data.kind === 'memory'));
});

test('a sharded checkpoint opens through pytorch_model.bin.index.json', async () => {
  const model = await openModelFile(join(dir, 'sharded', 'pytorch_model.bin.index.json'));
  assert.equal(model.summary.format, 'pytorch');
  assertMatchesReference(model, reference.sharded!);
  assert.deepEqual(model.summary.dataFiles, [
    'pytorch_model-00001-of-00002.bin',
    'pytorch_model-00002-of-00002.bin',
  ]);
  assert.equal(model.tensors[1]!.info.file, 'pytorch_model-00002-of-00002.bin');
  assert.ok(
    model.summary.warnings.some((warning) => /not in the index's weight map/.test(warning)),
  );
});

test('statistics of a strided view are those of numpy over the view', async () => {
  const model = await pytorchFormat.open(join(dir, 'checkpoint.pt'));
  const entry = model.tensors.find(
    (candidate) => candidate.info.name === 'model.encoder.fc1.cols',
  )!;
  const values = reference['checkpoint.pt']!.tensors['model.encoder.fc1.cols']!.values;
  const pool = new WorkerPool(1);
  try {
    const stats = await computeTensorStats(pool, entry);
    assert.equal(stats.count, values.length);
    assert.equal(stats.min, Math.min(...values));
    assert.equal(stats.max, Math.max(...values));
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    assert.ok(Math.abs(stats.mean! - mean) < 1e-6);
  } finally {
    pool.dispose();
  }
});

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openModelFile } from '../../../../src/server/formats/registry';
import { layerOfTensor, safetensorsFormat } from '../../../../src/server/formats/safetensors';
import type { TensorEntry } from '../../../../src/server/formats/types';
import { INT8_CONVENTION, INT8_METADATA_KEY } from '../../../../src/server/formats/safetensorsInt8';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import type { DType } from '../../../../src/shared/dtypes';
import {
  buildSafetensors,
  bytesOf,
  encodeSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
  type SafetensorsDType,
  type SafetensorsTensor,
} from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-st-');

/** The bytes a file-backed tensor points at. */
async function bytesAt(entry: TensorEntry): Promise<Uint8Array> {
  assert.equal(entry.data.kind, 'file');
  if (entry.data.kind !== 'file') throw new Error('unreachable');
  const file = await readFile(entry.data.path);
  return new Uint8Array(file.subarray(entry.data.offset, entry.data.offset + entry.data.length));
}

const EVERY_DTYPE: readonly { code: SafetensorsDType; dtype: DType; data: ArrayBufferView }[] = [
  { code: 'F64', dtype: 'float64', data: new Float64Array([1.5, -2, 1e300]) },
  { code: 'F32', dtype: 'float32', data: new Float32Array([0.25, -8, 3]) },
  { code: 'F16', dtype: 'float16', data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) },
  { code: 'BF16', dtype: 'bfloat16', data: new Uint16Array([0x3f80, 0xc000, 0x0000]) },
  { code: 'F8_E4M3', dtype: 'float8_e4m3fn', data: new Uint8Array([0x38, 0x7e, 0x7f]) },
  { code: 'F8_E5M2', dtype: 'float8_e5m2', data: new Uint8Array([0x3c, 0x7b, 0x7c]) },
  { code: 'I64', dtype: 'int64', data: new BigInt64Array([-1n, 2n ** 40n, 7n]) },
  { code: 'U64', dtype: 'uint64', data: new BigUint64Array([1n, 2n ** 63n, 0n]) },
  { code: 'I32', dtype: 'int32', data: new Int32Array([-5, 6, 7]) },
  { code: 'U32', dtype: 'uint32', data: new Uint32Array([4294967295, 1, 2]) },
  { code: 'I16', dtype: 'int16', data: new Int16Array([-300, 2, 3]) },
  { code: 'U16', dtype: 'uint16', data: new Uint16Array([65535, 1, 2]) },
  { code: 'I8', dtype: 'int8', data: new Int8Array([-128, 1, 127]) },
  { code: 'U8', dtype: 'uint8', data: new Uint8Array([255, 0, 9]) },
  { code: 'BOOL', dtype: 'bool', data: new Uint8Array([1, 0, 1]) },
];

test('reads every safetensors dtype with its shape, sizes and byte range', async () => {
  const tensors: SafetensorsTensor[] = EVERY_DTYPE.map(({ code, data }) => ({
    name: `t_${code.toLowerCase()}.weight`,
    dtype: code,
    shape: [1, 3],
    data,
  }));
  const path = await writeSafetensors(join(dir(), 'dtypes.safetensors'), tensors);
  const model = await safetensorsFormat.open(path);
  assert.equal(model.path, path);
  assert.equal(model.tensors.length, EVERY_DTYPE.length);
  for (const [index, expected] of EVERY_DTYPE.entries()) {
    const entry = model.tensors[index]!;
    const { info } = entry;
    assert.equal(info.index, index);
    assert.equal(info.name, `t_${expected.code.toLowerCase()}.weight`);
    assert.equal(info.dtype, expected.dtype, expected.code);
    assert.deepEqual(info.shape, [1, 3]);
    assert.equal(info.parameterCount, 3);
    assert.equal(info.byteLength, expected.data.byteLength);
    assert.equal(info.location, 'safetensors');
    assert.equal(info.op, null);
    assert.equal(info.graph, '');
    assert.equal(info.file, 'dtypes.safetensors');
    assert.equal(entry.data.kind === 'file' && entry.data.offset, info.byteOffset);
    assert.deepEqual(await bytesAt(entry), bytesOf(expected.data), expected.code);
  }
});

test('summarises metadata, totals by dtype and the file', async () => {
  const path = await writeSafetensors(
    join(dir(), 'summary.safetensors'),
    [
      { name: 'embed.weight', dtype: 'F32', shape: [4, 2], data: new Float32Array(8) },
      { name: 'head.weight', dtype: 'F16', shape: [2, 3], data: new Uint16Array(6) },
      { name: 'head.bias', dtype: 'F16', shape: [3], data: new Uint16Array(3) },
      { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([7]) },
      { name: 'empty.weight', dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
    ],
    { metadata: { format: 'pt', producer: 'unit-test' } },
  );
  const { summary } = await safetensorsFormat.open(path);
  const fileBytes = (await readFile(path)).byteLength;
  assert.equal(summary.format, 'safetensors');
  assert.equal(summary.fileName, 'summary.safetensors');
  assert.equal(summary.fileBytes, fileBytes);
  assert.equal(summary.totalBytes, fileBytes);
  assert.deepEqual(summary.dataFiles, []);
  assert.equal(summary.tensorCount, 5);
  assert.equal(summary.parameterCount, 8 + 6 + 3 + 1);
  assert.deepEqual(summary.parametersByDType, { float32: 9, float16: 9 });
  assert.deepEqual(summary.bytesByDType, { float32: 36, float16: 18 });
  assert.deepEqual(summary.opCounts, {});
  assert.equal(summary.nodeCount, 0);
  assert.deepEqual(summary.inputs, []);
  assert.deepEqual(summary.outputs, []);
  assert.deepEqual(summary.warnings, []);
  const metadata = Object.fromEntries(summary.metadata.map((entry) => [entry.key, entry.value]));
  assert.equal(metadata.format, 'pt');
  assert.equal(metadata.producer, 'unit-test');
  assert.match(metadata['header bytes'] ?? '', /^\d+$/);
});

test('groups tensors into layers by their name prefix', async () => {
  assert.equal(layerOfTensor('encoder.fc1.weight'), 'encoder.fc1');
  assert.equal(layerOfTensor('model.layers.0.mlp.up_proj.bias'), 'model.layers.0.mlp.up_proj');
  assert.equal(layerOfTensor('lm_head'), 'lm_head');
  assert.equal(layerOfTensor('.hidden'), '.hidden');
  const path = await writeSafetensors(join(dir(), 'layers.safetensors'), [
    { name: 'encoder.fc1.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'encoder.fc1.bias', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'lm_head', dtype: 'F32', shape: [1], data: new Float32Array(1) },
  ]);
  const model = await safetensorsFormat.open(path);
  assert.deepEqual(
    model.tensors.map((entry) => [entry.info.name, entry.info.node]),
    [
      ['encoder.fc1.weight', 'encoder.fc1'],
      ['encoder.fc1.bias', 'encoder.fc1'],
      ['lm_head', 'lm_head'],
    ],
  );
});

test('lists tensors in data order whatever the header order, and warns about unused bytes', async () => {
  const data = new Uint8Array(24);
  const header = {
    second: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    first: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
  };
  const path = join(dir(), 'order.safetensors');
  await writeFile(path, encodeSafetensors(header, data));
  const model = await safetensorsFormat.open(path);
  assert.deepEqual(
    model.tensors.map((entry) => entry.info.name),
    ['first', 'second'],
  );
  assert.equal(model.summary.warnings.length, 1);
  assert.match(model.summary.warnings[0]!, /8 bytes of the data section belong to no tensor/);
});

test('match() recognises safetensors heads and index JSON, and nothing else', () => {
  const file = buildSafetensors([
    { name: 'w', dtype: 'F32', shape: [1], data: new Float32Array(1) },
  ]);
  assert.equal(safetensorsFormat.match(file.subarray(0, 4096)), true);
  assert.equal(safetensorsFormat.match(new TextEncoder().encode('  {"weight_map": {}}')), true);
  assert.equal(safetensorsFormat.match(file.subarray(0, 8)), false);
  // An ONNX file starts with protobuf field tags (0x08 = ir_version).
  assert.equal(
    safetensorsFormat.match(new Uint8Array([0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73, 0x74, 0x3a])),
    false,
  );
  const hugeLength = new Uint8Array(16);
  new DataView(hugeLength.buffer).setBigUint64(0, 2n ** 40n, true);
  hugeLength[8] = 0x7b;
  assert.equal(safetensorsFormat.match(hugeLength), false);
  assert.deepEqual(safetensorsFormat.extensions, ['.safetensors', '.json']);
});

test('the format registry opens safetensors files and indexes through this module', async () => {
  const path = await writeSafetensors(join(dir(), 'registry', 'model.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
  ]);
  assert.equal((await openModelFile(path)).summary.format, 'safetensors');
  const index = await writeShardedSafetensors(join(dir(), 'registry'), [
    {
      file: 'part-1.safetensors',
      tensors: [{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) }],
    },
  ]);
  assert.equal((await openModelFile(index)).summary.tensorCount, 1);
});

function shardTensors(
  prefix: string,
  count: number,
  dtype: SafetensorsDType = 'F32',
): SafetensorsTensor[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}.${i}.weight`,
    dtype,
    shape: [2, 2],
    data:
      dtype === 'F32' ? new Float32Array([i, i + 1, i + 2, i + 3]) : new Uint16Array([i, i, i, i]),
  }));
}

test('opens a sharded model through its index: every shard, names, byte ranges and totals', async () => {
  const shardDir = join(dir(), 'sharded');
  const first = shardTensors('layers.0', 2);
  const second = shardTensors('layers.1', 3, 'BF16');
  const indexPath = await writeShardedSafetensors(
    shardDir,
    [
      { file: 'model-00002-of-00002.safetensors', tensors: second },
      { file: 'model-00001-of-00002.safetensors', tensors: first },
    ],
    { metadata: { total_size: 56, note: 'two shards' } },
  );
  const model = await safetensorsFormat.open(indexPath);
  const { summary } = model;
  assert.equal(model.path, indexPath);
  assert.equal(summary.fileName, 'model.safetensors.index.json');
  assert.deepEqual(summary.dataFiles, [
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
  ]);
  const sizes = await Promise.all(
    [indexPath, ...summary.dataFiles.map((file) => join(shardDir, file))].map(
      async (file) => (await readFile(file)).byteLength,
    ),
  );
  // The model's size is the sum of its shards (not the index's few bytes); the total adds the index.
  assert.equal(summary.fileBytes, sizes[1]! + sizes[2]!);
  assert.equal(summary.shards, 2);
  assert.equal(
    summary.totalBytes,
    sizes.reduce((a, b) => a + b, 0),
  );
  assert.equal(summary.tensorCount, 5);
  assert.equal(summary.parameterCount, 20);
  assert.deepEqual(summary.bytesByDType, { float32: 32, bfloat16: 24 });
  const metadata = Object.fromEntries(summary.metadata.map((entry) => [entry.key, entry.value]));
  assert.equal(metadata.shards, '2');
  assert.equal(metadata.total_size, '56');
  assert.equal(metadata.note, 'two shards');
  assert.deepEqual(
    model.tensors.map((entry) => [
      entry.info.index,
      entry.info.name,
      entry.info.file,
      entry.info.node,
    ]),
    [
      [0, 'layers.0.0.weight', 'model-00001-of-00002.safetensors', 'layers.0.0'],
      [1, 'layers.0.1.weight', 'model-00001-of-00002.safetensors', 'layers.0.1'],
      [2, 'layers.1.0.weight', 'model-00002-of-00002.safetensors', 'layers.1.0'],
      [3, 'layers.1.1.weight', 'model-00002-of-00002.safetensors', 'layers.1.1'],
      [4, 'layers.1.2.weight', 'model-00002-of-00002.safetensors', 'layers.1.2'],
    ],
  );
  const expected = [...first, ...second];
  for (const [i, entry] of model.tensors.entries()) {
    assert.equal(entry.data.kind === 'file' && entry.data.path, join(shardDir, entry.info.file));
    assert.deepEqual(await bytesAt(entry), bytesOf(expected[i]!.data));
  }
});

test('opening one shard directly opens just that file', async () => {
  const shardDir = join(dir(), 'direct');
  await writeShardedSafetensors(shardDir, [
    { file: 'a.safetensors', tensors: shardTensors('a', 2) },
    { file: 'b.safetensors', tensors: shardTensors('b', 1) },
  ]);
  const model = await safetensorsFormat.open(join(shardDir, 'b.safetensors'));
  assert.deepEqual(
    model.tensors.map((entry) => entry.info.name),
    ['b.0.weight'],
  );
  assert.deepEqual(model.summary.dataFiles, []);
});

test('shards may sit in a subfolder of the index folder; unmapped shard tensors are reported', async () => {
  const shardDir = join(dir(), 'nested');
  const indexPath = await writeShardedSafetensors(
    shardDir,
    [{ file: 'weights/part.safetensors', tensors: shardTensors('p', 2) }],
    { weightMap: { 'p.1.weight': 'weights/part.safetensors' } },
  );
  const model = await safetensorsFormat.open(indexPath);
  assert.deepEqual(
    model.tensors.map((entry) => [entry.info.name, entry.info.file]),
    [['p.1.weight', 'weights/part.safetensors']],
  );
  assert.equal(model.summary.warnings.length, 1);
  assert.match(model.summary.warnings[0]!, /1 tensors are not in the index's weight map/);
});

test('int8 codes with scales decode only where the file records LayerLens’s convention', async () => {
  const codes = Int8Array.from({ length: 6 }, (_, i) => i * 20 - 50);
  const tensors = [
    { name: 'w', dtype: 'I8' as const, shape: [2, 3], data: codes },
    { name: 'w.scale', dtype: 'F32' as const, shape: [2], data: Float32Array.from([0.5, 0.25]) },
    { name: 'v', dtype: 'I8' as const, shape: [3, 2], data: codes },
    { name: 'v.scale', dtype: 'F32' as const, shape: [2], data: Float32Array.from([1, 2]) },
  ];
  const recorded = await openModelFile(
    await writeSafetensors(join(dir(), 'int8-recorded.safetensors'), tensors, {
      metadata: { [INT8_METADATA_KEY]: INT8_CONVENTION },
    }),
  );
  const w = recorded.tensors.find((entry) => entry.info.name === 'w')!;
  assert.equal(w.info.dtype, 'float32');
  assert.equal(w.info.encoding?.storedType, 'int8');
  assert.deepEqual(
    Array.from(await loadTensorValues(w, tensorMatrixShape(w, true))),
    Array.from(codes, (code, i) => code * (i < 3 ? 0.5 : 0.25)),
  );
  // v's scales do not fit its first axis: it stays as codes, and the summary says why.
  const v = recorded.tensors.find((entry) => entry.info.name === 'v')!;
  assert.equal(v.info.dtype, 'int8');
  assert.equal(v.info.encoding, undefined);
  assert.match(recorded.summary.warnings.join('\n'), /"v" is shown as its int8 codes: .*\[3\]/);
  assert.equal(recorded.summary.bytesByDType.int8, 12);
  assert.equal(recorded.summary.bytesByDType.float32, 16);

  // The same tensors without the recorded convention: names alone decode nothing.
  const unrecorded = await openModelFile(
    await writeSafetensors(join(dir(), 'int8-plain.safetensors'), tensors),
  );
  assert.ok(unrecorded.tensors.every((entry) => entry.info.encoding === undefined));
  assert.equal(unrecorded.tensors.find((entry) => entry.info.name === 'w')!.info.dtype, 'int8');
});

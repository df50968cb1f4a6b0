/**
 * Sample inputs for validation: .npy/.npz/.json files (a zip written here, stored and
 * deflated, and one written by NumPy: python3 with numpy is required, see
 * test/support/python.ts), generated inputs, and a compression validated on user-provided
 * inputs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { compressModel } from '../../../../src/server/compress';
import { ModelFileError } from '../../../../src/server/formats/types';
import { readInputFolder } from '../../../../src/server/runtime/inputFiles';
import { parseNpy, parseNpz, readNumpyFile } from '../../../../src/server/runtime/npy';
import { generateInputs, resolveShape } from '../../../../src/server/runtime/sampleInputs';
import { structureProblems } from '../../../../src/server/runtime/validate';
import { graph, model, node, tensor, valueInfo, writeModel } from '../../../support/onnxBuilder';
import { pythonWithNumpy } from '../../../support/python';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-compress-inputs-');

/** A .npy file (format 1.0) holding `data` as `descr` with `shape`. */
function npy(descr: string, shape: readonly number[], data: ArrayBufferView): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, header.length, true);
  head.set(new TextEncoder().encode(header), 10);
  return Buffer.concat([head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}

/** A zip archive of `entries` (deflated when `deflate`), with a central directory. */
function zip(entries: readonly { name: string; data: Uint8Array }[], deflate: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = new TextEncoder().encode(entry.name);
    const body = deflate ? deflateRawSync(entry.data) : entry.data;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(deflate ? 8 : 0, 10);
    record.writeUInt32LE(body.length, 20);
    record.writeUInt32LE(entry.data.length, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(offset, 42);
    parts.push(local, name, body);
    central.push(record, name);
    offset += local.length + name.length + body.length;
  }
  const directorySize = central.reduce((s, p) => s + p.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directorySize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

test('.npy: dtypes, shapes, scalars; malformed files are refused naming the file', () => {
  const floats = parseNpy(npy('<f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])), 'a.npy');
  assert.deepEqual(floats.shape, [2, 3]);
  assert.equal(floats.dtype, 'float32');
  assert.deepEqual(Array.from(new Float32Array(floats.data.buffer)), [1, 2, 3, 4, 5, 6]);
  const scalar = parseNpy(npy('<i8', [], BigInt64Array.of(16000n)), 'sr.npy');
  assert.deepEqual(scalar.shape, []);
  assert.equal(new BigInt64Array(scalar.data.buffer)[0], 16000n);
  const vector = parseNpy(npy('|b1', [3], Uint8Array.of(1, 0, 1)), 'b.npy');
  assert.deepEqual(vector.shape, [3]);
  assert.throws(
    () => parseNpy(Uint8Array.of(1, 2, 3), 'x.npy'),
    (e: Error) => e instanceof ModelFileError && /x\.npy.*magic/.test(e.message),
  );
  assert.throws(
    () => parseNpy(npy('<f4', [4], Float32Array.of(1)), 'short.npy'),
    /needs 16 bytes of data/,
  );
  assert.throws(
    () => parseNpy(npy('<c8', [1], Float32Array.of(1, 2)), 'c.npy'),
    /element type '<c8'/,
  );
  const fortran = npy('<f4', [1], Float32Array.of(1));
  const text = Buffer.from(fortran).toString('latin1').replace('False', 'True ');
  assert.throws(() => parseNpy(Buffer.from(text, 'latin1'), 'f.npy'), /Fortran/);
});

test('.npz: stored and deflated entries; corrupt archives are refused', () => {
  for (const deflate of [false, true]) {
    const archive = zip(
      [
        { name: 'input.npy', data: npy('<f8', [1, 4], Float64Array.of(0.5, -0.5, 0.25, 1)) },
        { name: 'sr.npy', data: npy('<i8', [], BigInt64Array.of(8000n)) },
        { name: 'notes.txt', data: new TextEncoder().encode('ignored') },
      ],
      deflate,
    );
    const arrays = parseNpz(archive, 'sample.npz');
    assert.deepEqual([...arrays.keys()], ['input', 'sr']);
    assert.deepEqual(
      Array.from(new Float64Array(arrays.get('input')!.data.buffer)),
      [0.5, -0.5, 0.25, 1],
    );
  }
  assert.throws(() => parseNpz(new Uint8Array(100), 'z.npz'), /z\.npz.*end-of-central-directory/);
  const archive = zip([{ name: 'a.npy', data: npy('<f4', [1], Float32Array.of(1)) }], true);
  const broken = Uint8Array.from(archive);
  broken[40] ^= 0xff; // inside the deflated body
  assert.throws(() => parseNpz(broken, 'broken.npz'), /broken\.npz/);
});

test('an .npz written by NumPy reads back', async () => {
  const path = join(folder(), 'numpy.npz');
  execFileSync(pythonWithNumpy(), [
    '-c',
    `import numpy as np; np.savez_compressed(${JSON.stringify(path)}, x=np.arange(6, dtype=np.float32).reshape(2, 3), n=np.int64(7))`,
  ]);
  const arrays = (await readNumpyFile(path)) as Map<
    string,
    { shape: readonly number[]; data: Uint8Array }
  >;
  assert.deepEqual(arrays.get('x')!.shape, [2, 3]);
  assert.deepEqual(Array.from(new Float32Array(arrays.get('x')!.data.buffer)), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(arrays.get('n')!.shape, []);
});

test('generated inputs: seeded and repeatable, named dimensions, shapes and constants from settings', () => {
  const specs = [
    { name: 'input', dtype: 'float32', shape: [null, null] },
    { name: 'state', dtype: 'float32', shape: [2, null, 128] },
    { name: 'sr', dtype: 'int64', shape: [] },
    { name: 'mask', dtype: 'bool', shape: ['batch', 'sequence'] },
  ];
  const a = generateInputs(specs, { values: { sr: 16000 }, dimensions: { batch: 2, sequence: 5 } });
  const b = generateInputs(specs, { values: { sr: 16000 }, dimensions: { batch: 2, sequence: 5 } });
  assert.deepEqual(a.get('input'), b.get('input'));
  assert.deepEqual(a.get('input')!.shape, [1, 1]);
  assert.deepEqual(a.get('mask')!.shape, [2, 5]);
  assert.deepEqual(Array.from(a.get('sr')!.data as BigInt64Array), [16000n]);
  const values = Array.from(a.get('state')!.data as Float32Array);
  assert.ok(values.every((v) => v >= -1 && v < 1) && new Set(values).size > 200);
  assert.notDeepEqual(generateInputs(specs, { seed: 1 }).get('state'), a.get('state'));
  // Retry form: an input's first unknown dimension is the batch, later ones get the length.
  assert.deepEqual(resolveShape(specs[0]!, { laterUnknown: 512 }), [1, 512]);
  assert.deepEqual(resolveShape(specs[1]!, { laterUnknown: 512 }), [2, 1, 128]);
  assert.deepEqual(resolveShape(specs[0]!, { shapes: { input: [3, 7] } }), [3, 7]);
  assert.throws(
    () => generateInputs([{ name: 's', dtype: 'string', shape: [] }]),
    /cannot be generated/,
  );
});

test('validation reads user inputs from the configured folder (npy, json, npz) and converts types', async () => {
  const inputs = join(folder(), 'inputs');
  await mkdir(inputs);
  await writeFile(
    join(inputs, 'x.npy'),
    npy(
      '<f8',
      [2, 8],
      Float64Array.from({ length: 16 }, (_, i) => i / 16),
    ),
  );
  await writeFile(join(inputs, 'scale.json'), JSON.stringify([[2]]));
  const m = model(
    graph({
      initializers: [
        tensor(
          'W',
          'float32',
          [8, 4],
          Array.from({ length: 32 }, (_, i) => Math.sin(i)),
        ),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', 8]), valueInfo('scale', 'float32', [1, 1])],
      outputs: [valueInfo('y', 'float32', ['batch', 4])],
      nodes: [node('MatMul', ['x', 'W'], ['h']), node('Mul', ['h', 'scale'], ['y'])],
    }),
  );
  const path = await writeModel(folder(), 'user-inputs.onnx', m);
  const specs = [
    { name: 'x', dtype: 'float32', shape: ['batch', 8] },
    { name: 'scale', dtype: 'float32', shape: [1, 1] },
  ];
  const read = await readInputFolder(inputs, specs);
  assert.equal(read.feeds.get('x')!.dtype, 'float32');
  assert.deepEqual(read.feeds.get('scale')!.shape, [1, 1]);
  const report = await compressModel(
    path,
    { tensors: [], options: { method: 'int8' } },
    { settings: { 'validation.inputsFolder': 'inputs' } },
  );
  assert.match(report.inputs, /files: .*x\.npy, .*scale\.json: x \[2, 8\], scale \[1, 1\]/);
  assert.ok(report.outputs[0]!.cosine > 0.999);
});

test('structure check: names read before they exist and domains not imported', () => {
  const m = model(
    graph({
      inputs: [valueInfo('x', 'float32', [1])],
      outputs: [valueInfo('y', 'float32', [1]), valueInfo('z', 'float32', [1])],
      nodes: [
        node('Add', ['x', 'later'], ['y']),
        node('Relu', ['x'], ['later']),
        node('Foo', ['x'], ['w'], { domain: 'custom' }),
      ],
    }),
  );
  const problems = structureProblems(m);
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /reads 'later' before anything produces it/);
  assert.match(problems[1]!, /domain 'custom'/);
  assert.match(problems[2]!, /output 'z' .*never produced/);
});

test('an input that cannot be generated skips the run with the reason; the model is still written', async () => {
  const m = model(
    graph({
      initializers: [
        tensor(
          'W',
          'float32',
          [4, 4],
          Array.from({ length: 16 }, (_, i) => i / 7),
        ),
      ],
      inputs: [valueInfo('x', 'float32', [1, 4]), valueInfo('label', 'string', [1])],
      outputs: [valueInfo('y', 'float32', [1, 4])],
      nodes: [node('MatMul', ['x', 'W'], ['y'])],
    }),
  );
  const path = await writeModel(folder(), 'string-input.onnx', m);
  const report = await compressModel(path, { tensors: [], options: { method: 'fp16' } });
  assert.deepEqual(report.outputs, []);
  assert.match(
    report.validation.at(-1)!,
    /run skipped: input 'label' of type string cannot be generated/,
  );
  assert.ok(report.validation.includes('structure'));
});

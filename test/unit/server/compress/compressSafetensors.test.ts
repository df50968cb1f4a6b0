/**
 * Compression of safetensors models: every method on generated files, each output read
 * back by LayerLens's reader and by an independent reader in Python (python3 with numpy,
 * required: see test/support/python.ts); exact cases, error bounds, sizes, the int8 naming convention, and that
 * the original is never modified.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { compressModel } from '../../../../src/server/compress';
import { INT8_CONVENTION } from '../../../../src/server/compress/safetensors';
import { decodeValues, type NumericDType } from '../../../../src/server/analysis/decode';
import { safetensorsFormat } from '../../../../src/server/formats/safetensors';
import { storedTensor } from '../../../../src/server/formats/decodedValues';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import { ModelFileError, type OpenedModel } from '../../../../src/server/formats/types';
import type { CompressionOptions, CompressionReport } from '../../../../src/shared/compress';
import { seededNormal } from '../../../../src/server/runtime/sampleInputs';
import {
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../../../../src/server/compress/kernels';
import { pythonWithNumpy } from '../../../support/python';
import { writeSafetensors, writeShardedSafetensors } from '../../../support/safetensorsBuilder';

function normal(count: number, seed: number, scale = 1): Float32Array {
  const next = seededNormal(seed);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = next() * scale;
  return values;
}

/** A small MLP plus a conv kernel, a float16 and a bfloat16 weight, an int64 buffer. */
async function writeModel(name: string): Promise<string> {
  return writeSafetensors(
    path.join(folder(), name),
    [
      { name: 'fc1.weight', dtype: 'F32', shape: [32, 64], data: normal(32 * 64, 1, 0.1) },
      { name: 'fc1.bias', dtype: 'F32', shape: [32], data: normal(32, 2, 0.01) },
      { name: 'conv.weight', dtype: 'F32', shape: [8, 4, 3, 3], data: normal(8 * 4 * 9, 3) },
      {
        name: 'half.weight',
        dtype: 'F16',
        shape: [16, 32],
        data: float32ToFloat16Bits(normal(16 * 32, 4, 0.5)),
      },
      {
        name: 'brain.weight',
        dtype: 'BF16',
        shape: [16, 32],
        data: float32ToBfloat16Bits(normal(16 * 32, 5, 0.5)),
      },
      { name: 'position_ids', dtype: 'I64', shape: [4], data: new BigInt64Array([0n, 1n, 2n, 3n]) },
    ],
    { metadata: { format: 'pt', origin: 'layerlens test' } },
  );
}

async function values(model: OpenedModel, name: string): Promise<Float32Array | Float64Array> {
  const entry = model.tensors.find((tensor) => tensor.info.name === name);
  assert.ok(entry, `tensor ${name} is in ${model.path}`);
  // As the file stores it: a decoded int8 weight's codes.
  const { data, dtype } = storedTensor(entry);
  assert.equal(data.kind, 'file');
  if (data.kind !== 'file') throw new Error('unreachable');
  const file = await readFile(data.path);
  const bytes = file.subarray(data.offset, data.offset + data.length);
  return decodeValues(
    dtype as NumericDType,
    new Uint8Array(bytes),
    entry.info.parameterCount,
  ).slice();
}

async function rawBytes(model: OpenedModel, name: string): Promise<Buffer> {
  const entry = model.tensors.find((tensor) => tensor.info.name === name)!;
  if (entry.data.kind !== 'file') throw new Error('not a file range');
  const file = await readFile(entry.data.path);
  return file.subarray(entry.data.offset, entry.data.offset + entry.data.length);
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

async function compress(
  source: string,
  options: CompressionOptions,
  tensors: number[] = [],
): Promise<{ report: CompressionReport; before: OpenedModel; after: OpenedModel }> {
  const before = await safetensorsFormat.open(source);
  const checksum = await sha256(source);
  const report = await compressModel(source, { tensors, options });
  assert.equal(await sha256(source), checksum, 'the original file is unchanged');
  const after = await safetensorsFormat.open(report.output);
  const written = JSON.parse(await readFile(report.reportPath, 'utf8')) as CompressionReport;
  assert.deepEqual(written, report, 'the JSON report next to the model is the returned report');
  assert.equal((await readFile(report.output)).byteLength, report.fileBytesAfter);
  return { report, before, after };
}

function metadataOf(model: OpenedModel): Map<string, string> {
  return new Map(model.summary.metadata.map((entry) => [entry.key, entry.value]));
}

/**
 * Reads a safetensors file with struct + numpy only and prints, per tensor, its dtype,
 * shape and values as float64 (BF16 widened by a 16-bit shift), plus the header checks.
 */
const PYTHON_READER = String.raw`
import json, struct, sys
import numpy as np
path = sys.argv[1]
with open(path, 'rb') as f:
    data = f.read()
(n,) = struct.unpack('<Q', data[:8])
header = json.loads(data[8:8 + n])
base = 8 + n
types = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'I64': '<i8', 'I32': '<i4', 'I8': 'i1', 'U8': 'u1'}
out = {'aligned': base % 8 == 0, 'metadata': header.get('__metadata__'), 'tensors': {}}
end_max = 0
for name, entry in header.items():
    if name == '__metadata__':
        continue
    begin, end = entry['data_offsets']
    end_max = max(end_max, end)
    raw = data[base + begin: base + end]
    if entry['dtype'] == 'BF16':
        array = (np.frombuffer(raw, '<u2').astype('<u4') << 16).view('<f4')
    else:
        array = np.frombuffer(raw, types[entry['dtype']])
    count = int(np.prod(entry['shape'])) if entry['shape'] else 1
    assert array.size == count, (name, array.size, count)
    out['tensors'][name] = {'dtype': entry['dtype'], 'shape': entry['shape'],
                            'values': array.astype('<f8').tolist()}
out['exact_size'] = base + end_max == len(data)
print(json.dumps(out))
`;
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-compress-st-');

interface PythonView {
  aligned: boolean;
  exact_size: boolean;
  metadata: Record<string, string> | null;
  tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
}

/** The independent reader agrees with LayerLens's on every tensor of `file`. */
async function assertPythonAgrees(file: string, model: OpenedModel): Promise<void> {
  const view = JSON.parse(
    execFileSync(pythonWithNumpy(), ['-c', PYTHON_READER, file], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    }),
  ) as PythonView;
  assert.ok(view.aligned, 'the data section starts at a multiple of 8');
  assert.ok(view.exact_size, 'the file ends with the last tensor');
  assert.deepEqual(Object.keys(view.tensors).sort(), model.tensors.map((t) => t.info.name).sort());
  for (const entry of model.tensors) {
    const theirs = view.tensors[entry.info.name]!;
    assert.deepEqual(theirs.shape, entry.info.shape);
    assert.deepEqual(
      Array.from(await values(model, entry.info.name)),
      theirs.values,
      entry.info.name,
    );
  }
}

describe('safetensors compression', () => {
  test('prune 0 writes every tensor bit-identical, keeps __metadata__ and notes what was done', async () => {
    const source = await writeModel('exact.safetensors');
    const { report, before, after } = await compress(source, { method: 'prune', sparsity: 0 });
    assert.equal(path.basename(report.output), 'exact.prune.safetensors');
    assert.equal(
      report.reportPath,
      path.join(`${source}.layerlens`, 'exact.prune.safetensors.report.json'),
    );
    assert.ok(JSON.parse(await readFile(report.reportPath, 'utf8')).output === report.output);
    for (const entry of before.tensors) {
      assert.deepEqual(
        await rawBytes(after, entry.info.name),
        await rawBytes(before, entry.info.name),
      );
    }
    const metadata = metadataOf(after);
    assert.equal(metadata.get('format'), 'pt');
    assert.equal(metadata.get('origin'), 'layerlens test');
    const note = JSON.parse(metadata.get('layerlens.compression')!) as {
      options: CompressionOptions;
    };
    assert.equal(note.options.method, 'prune');
    assert.deepEqual(report.outputs, []);
    assert.ok(report.validation.some((line) => line.includes('no graph to run')));
    const skipped = report.tensors.filter((t) => t.skipped).map((t) => t.name);
    assert.deepEqual(skipped, ['position_ids']);
    for (const tensor of report.tensors) assert.equal(tensor.relativeError, 0);
  });

  test('prune 70% zeroes the smallest weights in every float dtype, keeping the others exactly', async () => {
    const source = await writeModel('prune.safetensors');
    const { report, before, after } = await compress(source, { method: 'prune', sparsity: 0.7 });
    for (const name of ['fc1.weight', 'half.weight', 'brain.weight', 'conv.weight']) {
      const original = await values(before, name);
      const pruned = await values(after, name);
      const zeros = pruned.filter((value) => value === 0).length;
      assert.equal(zeros, Math.floor(0.7 * original.length), name);
      const threshold = Math.max(
        ...Array.from(original)
          .filter((_, i) => pruned[i] === 0)
          .map(Math.abs),
      );
      for (let i = 0; i < original.length; i++) {
        if (pruned[i] !== 0) {
          assert.equal(pruned[i], original[i]);
          assert.ok(Math.abs(original[i]!) >= threshold);
        }
      }
      const result = report.tensors.find((t) => t.name === name)!;
      assert.equal(result.bytesAfter, result.bytesBefore);
      assert.ok(
        result.relativeError > 0 && result.relativeError < 0.7,
        `${name}: ${result.relativeError}`,
      );
    }
    await assertPythonAgrees(report.output, after);
  });

  test('2:4 keeps at most 2 of every 4 along the input dimension (conv kernels flattened)', async () => {
    const source = await writeModel('nm.safetensors');
    const { report, after } = await compress(source, { method: 'nm', n: 2, m: 4 });
    for (const [name, cols] of [
      ['fc1.weight', 64],
      ['conv.weight', 36],
    ] as const) {
      const pruned = await values(after, name);
      for (let row = 0; row * cols < pruned.length; row++) {
        for (let start = 0; start < cols; start += 4) {
          let nonZero = 0;
          for (let k = start; k < Math.min(cols, start + 4); k++)
            if (pruned[row * cols + k] !== 0) nonZero++;
          assert.ok(nonZero <= 2, `${name} row ${row} group ${start}`);
        }
      }
    }
    const bias = report.tensors.find((t) => t.name === 'fc1.bias')!;
    assert.ok(bias.skipped);
    assert.match(bias.detail, /1-D tensor/);
  });

  test('fp16 and bf16 casts halve float32 tensors within the formats’ rounding error', async () => {
    const source = await writeModel('cast.safetensors');
    for (const [method, dtype, unitRoundoff] of [
      ['fp16', 'float16', 2 ** -11],
      ['bf16', 'bfloat16', 2 ** -8],
    ] as const) {
      const { report, before, after } = await compress(source, { method });
      const fc1 = report.tensors.find((t) => t.name === 'fc1.weight')!;
      assert.equal(fc1.bytesAfter * 2, fc1.bytesBefore);
      assert.ok(
        fc1.relativeError > 0 && fc1.relativeError <= unitRoundoff,
        `${method}: ${fc1.relativeError}`,
      );
      const original = await values(before, 'fc1.weight');
      const cast = await values(after, 'fc1.weight');
      for (let i = 0; i < original.length; i++) {
        assert.ok(
          Math.abs(cast[i]! - original[i]!) <= Math.abs(original[i]!) * unitRoundoff + 1e-30,
        );
      }
      assert.equal(after.tensors.find((t) => t.info.name === 'fc1.weight')!.info.dtype, dtype);
      const already = report.tensors.find(
        (t) => t.name === (method === 'fp16' ? 'half.weight' : 'brain.weight'),
      )!;
      assert.ok(already.skipped);
      assert.ok(report.fileBytesAfter < report.fileBytesBefore);
      await assertPythonAgrees(report.output, after);
    }
  });

  test('int8 fake-quant keeps dtypes; each output channel takes at most 255 levels', async () => {
    const source = await writeModel('fake8.safetensors');
    const { report, before, after } = await compress(source, { method: 'int8' });
    const original = await values(before, 'fc1.weight');
    const quantized = await values(after, 'fc1.weight');
    for (let row = 0; row < 32; row++) {
      const levels = new Set(Array.from(quantized.subarray(row * 64, (row + 1) * 64)));
      assert.ok(levels.size <= 255);
      const maxAbs = Math.max(
        ...Array.from(original.subarray(row * 64, (row + 1) * 64)).map(Math.abs),
      );
      for (let k = 0; k < 64; k++) {
        assert.ok(
          Math.abs(quantized[row * 64 + k]! - original[row * 64 + k]!) <= maxAbs / 127 / 2 + 1e-7,
        );
      }
    }
    const fc1 = report.tensors.find((t) => t.name === 'fc1.weight')!;
    assert.ok(fc1.relativeError < 0.01, String(fc1.relativeError));
    assert.equal(after.tensors.find((t) => t.info.name === 'half.weight')!.info.dtype, 'float16');
  });

  test('int8 with scales follows the documented naming: <name> I8 and <name>.scale F32 per output channel', async () => {
    const source = await writeModel('real8.safetensors');
    const { report, before, after } = await compress(
      source,
      { method: 'int8', storeQuantized: true },
      [0, 1, 2],
    );
    const byName = new Map(after.tensors.map((t) => [t.info.name, t.info]));
    // The file records the convention, so the weight opens as its values, the codes kept.
    const fc1Info = byName.get('fc1.weight')!;
    assert.equal(fc1Info.dtype, 'float32');
    assert.equal(fc1Info.encoding?.scheme, 'int8 per-channel');
    assert.equal(fc1Info.encoding?.storedType, 'int8');
    assert.equal(fc1Info.byteLength, 32 * 64);
    assert.equal(after.summary.bytesByDType.int8, 32 * 64 + 8 * 4 * 9);
    assert.equal(after.summary.warnings.length, 0);
    assert.deepEqual(byName.get('fc1.weight.scale')!.shape, [32]);
    assert.equal(byName.get('fc1.weight.scale')!.dtype, 'float32');
    assert.deepEqual(byName.get('conv.weight.scale')!.shape, [8]);
    assert.equal(byName.get('fc1.bias')!.dtype, 'float32', 'the bias stays float');
    assert.equal(byName.has('fc1.bias.scale'), false);
    assert.equal(byName.get('half.weight')!.dtype, 'float16', 'tensors not asked for are copied');
    assert.equal(metadataOf(after).get('layerlens.int8'), INT8_CONVENTION);
    const q = await values(after, 'fc1.weight');
    const scales = await values(after, 'fc1.weight.scale');
    const original = await values(before, 'fc1.weight');
    const fc1Entry = after.tensors.find((t) => t.info.name === 'fc1.weight')!;
    const decoded = await loadTensorValues(fc1Entry, tensorMatrixShape(fc1Entry, true));
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < q.length; i++) {
      const w = q[i]! * scales[Math.floor(i / 64)]!;
      assert.equal(decoded[i], Math.fround(w), `value ${i} is the code times its row's scale`);
      diff += (w - original[i]!) ** 2;
      norm += original[i]! ** 2;
    }
    const fc1 = report.tensors.find((t) => t.name === 'fc1.weight')!;
    assert.ok(Math.abs(Math.sqrt(diff / norm) - fc1.relativeError) < 1e-6);
    assert.equal(fc1.bytesAfter, 32 * 64 + 32 * 4);
    assert.ok(fc1.bytesBefore / fc1.bytesAfter > 3.7, 'about 4× smaller');
    await assertPythonAgrees(report.output, after);
  });

  test('int4 block 32 round trip: at most 15 levels per block, bounded error', async () => {
    const source = await writeModel('int4.safetensors');
    const { report, after } = await compress(source, { method: 'int4', blockSize: 32 }, [0]);
    const quantized = await values(after, 'fc1.weight');
    for (let block = 0; block < quantized.length / 32; block++) {
      assert.ok(new Set(Array.from(quantized.subarray(block * 32, (block + 1) * 32))).size <= 15);
    }
    const fc1 = report.tensors[0]!;
    assert.equal(fc1.name, 'fc1.weight');
    assert.ok(fc1.relativeError > 0.01 && fc1.relativeError < 0.2, String(fc1.relativeError));
  });

  /**
   * Writes a rows × cols matrix of exactly rank `rank` and checks that low rank at that
   * rank, and at an energy target just below 1, reproduces it; returns the file.
   */
  async function exactRankRecovered(
    rows: number,
    cols: number,
    rank: number,
    seed: number,
  ): Promise<string> {
    const u = normal(rows * rank, seed);
    const v = normal(rank * cols, seed + 1);
    const w = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++)
        for (let k = 0; k < rank; k++) w[i * cols + j]! += u[i * rank + k]! * v[k * cols + j]!;
    const source = await writeSafetensors(path.join(folder(), `rank${rank}.safetensors`), [
      { name: 'proj.weight', dtype: 'F32', shape: [rows, cols], data: w },
    ]);
    const detail = new RegExp(`rank ${rank} of ${Math.min(rows, cols)}`);
    for (const options of [{ rank }, { energy: 0.999999 }]) {
      const { report } = await compress(source, { method: 'lowrank', ...options });
      const [tensor] = report.tensors;
      assert.ok(tensor!.relativeError < 1e-5, String(tensor!.relativeError));
      assert.match(tensor!.detail, detail);
    }
    return source;
  }

  test('low rank reproduces a rank-3 matrix exactly at rank 3 and refuses ranks that save nothing', async () => {
    const source = await exactRankRecovered(24, 20, 3, 7);
    await assert.rejects(
      compressModel(source, { tensors: [], options: { method: 'lowrank', rank: 11 } }),
      (error: unknown) =>
        error instanceof ModelFileError && /largest rank that saves is 10/.test(error.problem),
    );
  });

  test('low rank of a larger matrix (randomized SVD in the worker) recovers its rank 6 from a rank or an energy target', async () => {
    const source = await exactRankRecovered(384, 256, 6, 17);
    const four = await compress(source, { method: 'lowrank', rank: 4 });
    assert.ok(four.report.tensors[0]!.relativeError > 0.01);
  });

  test('refuses a sharded index, a missing tensor index and a scale name that is taken', async () => {
    const index = await writeShardedSafetensors(path.join(folder(), 'sharded'), [
      {
        file: 'a.safetensors',
        tensors: [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array(2) }],
      },
    ]);
    await assert.rejects(
      compressModel(index, { tensors: [], options: { method: 'fp16' } }),
      (error: unknown) => error instanceof ModelFileError && /sharded/.test(error.problem),
    );
    const source = await writeModel('errors.safetensors');
    await assert.rejects(
      compressModel(source, { tensors: [99], options: { method: 'fp16' } }),
      (error: unknown) =>
        error instanceof ModelFileError && error.file === source && /index 99/.test(error.problem),
    );
    const taken = await writeSafetensors(path.join(folder(), 'taken.safetensors'), [
      { name: 'w', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      { name: 'w.scale', dtype: 'F32', shape: [2], data: new Float32Array([1, 1]) },
    ]);
    await assert.rejects(
      compressModel(taken, { tensors: [0], options: { method: 'int8', storeQuantized: true } }),
      (error: unknown) =>
        error instanceof ModelFileError && /"w.scale" already exists/.test(error.problem),
    );
    const names = await readdir(folder());
    assert.ok(!names.some((name) => name.startsWith('errors.') && name !== 'errors.safetensors'));
    assert.ok(!names.some((name) => name.startsWith('taken.') && name !== 'taken.safetensors'));
  });

  test('a job cancelled while writing leaves no file behind', async () => {
    const source = await writeModel('cancel.safetensors');
    const controller = new AbortController();
    const before = await readdir(folder());
    await assert.rejects(
      compressModel(
        source,
        { tensors: [], options: { method: 'fp16' } },
        {
          signal: controller.signal,
          onProgress: (_done, _total, message) => {
            if (message === 'writing') controller.abort();
          },
        },
      ),
      (error: unknown) => error instanceof Error && error.name === 'AbortError',
    );
    assert.deepEqual((await readdir(folder())).sort(), before.sort());
  });

  test('an independent reader (python3 + numpy) agrees with LayerLens on a written file', async () => {
    // Each method's test above compares too; this one makes the check visible as its own
    // result, and fails first, naming what to install, when python3 with numpy is missing.
    pythonWithNumpy();
    const source = await writeModel('python.safetensors');
    const { report, after } = await compress(source, { method: 'nm' });
    await assertPythonAgrees(report.output, after);
    await assertPythonAgrees(source, await safetensorsFormat.open(source));
  });
});

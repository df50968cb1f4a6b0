/**
 * ONNX compression on models the tests build: every method, the graph forms weights come
 * in (initializers, Constant nodes, If subgraphs, external data), validation in the real
 * onnxruntime, file safety (original unchanged, no overwrite, nothing left on cancel).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { CompressionReport, CompressRequest } from '../../../../src/shared/compress';
import { compressModel } from '../../../../src/server/compress';
import { dequantizeBlocks, quantizeInt4Blocks } from '../../../../src/server/compress/kernels';
import { tensorSlots } from '../../../../src/server/onnx';
import {
  attribute,
  ExternalDataFile,
  constantNode,
  graph,
  ifNode,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';

import { lowRankValues, normalValues } from '../../../support/matrices';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-compress-onnx-');

function randomValues(count: number, seed: number, scale = 0.2): number[] {
  return normalValues(count, seed, scale);
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

let modelCount = 0;
/** Write a model into its own sub-folder name (so outputs of different tests never meet). */
async function save(m: onnx.IModelProto, files: ExternalDataFile[] = []): Promise<string> {
  return writeModel(folder(), `model${modelCount++}.onnx`, m, files);
}

function mlp(inputs = 64): onnx.IModelProto {
  return model(
    graph({
      initializers: [
        tensor('fc1.weight', 'float32', [inputs, 48], randomValues(inputs * 48, 1)),
        tensor('fc1.bias', 'float32', [48], randomValues(48, 2)),
        tensor('fc2.weight', 'float32', [48, 16], randomValues(48 * 16, 3)),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', inputs])],
      outputs: [valueInfo('y', 'float32', ['batch', 16])],
      nodes: [
        node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
        node('Add', ['h0', 'fc1.bias'], ['h1']),
        node('Relu', ['h1'], ['h2']),
        node('MatMul', ['h2', 'fc2.weight'], ['y'], { name: 'fc2' }),
      ],
    }),
  );
}

async function compress(
  path: string,
  request: Partial<CompressRequest> & Pick<CompressRequest, 'options'>,
): Promise<CompressionReport> {
  return compressModel(
    path,
    { tensors: [], ...request },
    { settings: { 'validation.dimensions': { batch: 3 } } },
  );
}

function decode(path: string): Promise<onnx.ModelProto> {
  return readFile(path).then((bytes) => onnx.ModelProto.decode(bytes));
}

function compressed(report: CompressionReport): CompressionReport['tensors'] {
  return report.tensors.filter((t) => !t.skipped);
}

test('int8 per channel on an MLP: ≈4× smaller weights, cosine ≥ 0.999, original unchanged', async () => {
  const path = await save(mlp());
  const checksum = await sha256(path);
  const report = await compress(path, { options: { method: 'int8' } });
  assert.equal(await sha256(path), checksum);
  assert.equal(report.output, path.replace(/\.onnx$/, '.int8.onnx'));
  assert.deepEqual(JSON.parse(await readFile(report.reportPath, 'utf8')).output, report.output);
  const done = compressed(report);
  assert.deepEqual(done.map((t) => t.name).sort(), ['fc1.weight', 'fc2.weight']);
  // int8 values plus one float32 scale per output channel: 3.76× and 3.69× here, → 4× for wide layers.
  assert.deepEqual(
    done.map((t) => t.bytesAfter),
    [64 * 48 + 48 * 4, 48 * 16 + 16 * 4],
  );
  for (const t of done) {
    assert.ok(t.relativeError > 0 && t.relativeError < 0.01, `${t.name}: ${t.relativeError}`);
  }
  assert.ok(report.tensors.find((t) => t.name === 'fc1.bias')?.skipped);
  assert.equal(report.outputs.length, 1);
  assert.ok(report.outputs[0]!.cosine >= 0.999, `cosine ${report.outputs[0]!.cosine}`);
  assert.ok(report.outputs[0]!.relativeL2 < 0.02);
  assert.ok(report.validation.includes('structure'));
  assert.ok(report.validation.some((v) => v.startsWith('run')));
  assert.match(report.inputs, /x \[3, 64\]/);
  const out = await decode(report.output);
  const ops = out.graph!.node!.map((n) => n.opType);
  assert.equal(ops.filter((op) => op === 'DequantizeLinear').length, 2);
  assert.ok(
    out.graph!.initializer!.some((t) => t.dataType === 3 && t.name === 'fc1.weight_quantized'),
  );
});

test('int4: MatMulNBits (≈7–8× at block 128, 6.4× at 32) and opset-21 DequantizeLinear', async () => {
  const path = await save(mlp(512));
  const nbits = await compress(path, { options: { method: 'int4', blockSize: 128 } });
  const [fc1, fc2] = compressed(nbits);
  // 4 bits per value and a float32 scale per 128 values: 7.5×.
  assert.equal(fc1!.bytesBefore / fc1!.bytesAfter, 7.529411764705882);
  // K = 48 is padded to one block of 128 per output column.
  assert.equal(fc2!.bytesAfter, 16 * 64 + 16 * 4);
  for (const t of [fc1!, fc2!]) assert.match(t.detail, /MatMulNBits/);
  assert.ok(nbits.outputs[0]!.cosine > 0.98, `cosine ${nbits.outputs[0]!.cosine}`);
  const out = await decode(nbits.output);
  assert.deepEqual(
    out.graph!.node!.filter((n) => n.opType === 'MatMulNBits').map((n) => n.domain),
    ['com.microsoft', 'com.microsoft'],
  );
  assert.ok(out.opsetImport!.some((o) => o.domain === 'com.microsoft'));
  assert.equal(Number(out.opsetImport!.find((o) => !o.domain)!.version), 17);
  const block32 = await compress(path, { options: { method: 'int4', blockSize: 32 } });
  const ratio32 = compressed(block32)[0]!.bytesBefore / compressed(block32)[0]!.bytesAfter;
  assert.ok(Math.abs(ratio32 - 6.4) < 0.1, `${ratio32}`);
  const dq = await compress(path, {
    options: { method: 'int4', blockSize: 32, int4Format: 'dequantizelinear' },
  });
  const dqModel = await decode(dq.output);
  assert.equal(Number(dqModel.opsetImport!.find((o) => !o.domain)!.version), 21);
  assert.equal(Number(dqModel.irVersion), 10);
  assert.ok(dqModel.graph!.initializer!.some((t) => t.dataType === 22));
  assert.ok(dq.outputs[0]!.cosine > 0.98);
  // Same dequantized weights; MatMulNBits multiplies in its own kernel, so results differ slightly.
  const [a, b] = [dq.outputs[0]!.relativeL2, block32.outputs[0]!.relativeL2];
  assert.ok(Math.abs(a - b) < 0.02 * b, `${a} vs ${b}`);
});

test("int4 packing: on an identity input both formats reproduce the kernel's dequantized weights", async () => {
  const k = 80; // two full blocks of 32 and a partial one
  const n = 6;
  const values = Float32Array.from(randomValues(k * n, 41, 1));
  const m = model(
    graph({
      initializers: [tensor('W', 'float32', [k, n], Array.from(values))],
      inputs: [valueInfo('x', 'float32', ['batch', k])],
      outputs: [valueInfo('y', 'float32', ['batch', n])],
      nodes: [node('MatMul', ['x', 'W'], ['y'])],
    }),
  );
  const path = await save(m);
  const layout = { rows: k, cols: n, inputAxis: 0 } as const;
  const expected = dequantizeBlocks(quantizeInt4Blocks(values, layout, 32), layout);
  const identity = new Float32Array(k * k);
  for (let i = 0; i < k; i++) identity[i * k + i] = 1;
  for (const int4Format of ['matmulnbits', 'dequantizelinear'] as const) {
    const report = await compress(path, { options: { method: 'int4', blockSize: 32, int4Format } });
    const session = await ort.InferenceSession.create(report.output);
    const y = (await session.run({ x: new ort.Tensor('float32', identity, [k, k]) })).y!
      .data as Float32Array;
    await session.release();
    for (let i = 0; i < k * n; i++) {
      assert.ok(
        Math.abs(y[i]! - expected[i]!) <= 1e-6 * Math.abs(expected[i]!) + 1e-7,
        `${int4Format} at ${i}`,
      );
    }
  }
});

test('pruning: sparsity 0 is exact, 0.5 zeroes exactly half of each weight; 2:4 along the input axis', async () => {
  const path = await save(mlp());
  const zero = await compress(path, { options: { method: 'prune', sparsity: 0 } });
  assert.equal(zero.outputs[0]!.maxAbsDiff, 0);
  assert.ok(compressed(zero).every((t) => t.relativeError === 0));
  const half = await compress(path, { options: { method: 'prune', sparsity: 0.5 } });
  const out = await decode(half.output);
  const w1 = out.graph!.initializer!.find((t) => t.name === 'fc1.weight')!;
  const values = new Float32Array(Uint8Array.from(w1.rawData!).buffer);
  assert.equal(values.filter((v) => v === 0).length, (64 * 48) / 2);
  const nm = await compress(path, { options: { method: 'nm', n: 2, m: 4 } });
  const nmModel = await decode(nm.output);
  const w = new Float32Array(
    Uint8Array.from(nmModel.graph!.initializer!.find((t) => t.name === 'fc1.weight')!.rawData!)
      .buffer,
  );
  // MatMul B is [in=64, out=48]: groups of 4 run down each column.
  for (let col = 0; col < 48; col++) {
    for (let start = 0; start < 64; start += 4) {
      let nonZero = 0;
      for (let k = start; k < start + 4; k++) if (w[k * 48 + col] !== 0) nonZero++;
      assert.equal(nonZero, 2);
    }
  }
  assert.ok(nm.outputs[0]!.cosine > 0.5);
});

test('low-rank: a rank-4 MatMul weight is exact at rank 4; ranks that save nothing are refused', async () => {
  const m = mlp();
  m.graph!.initializer![0] = tensor('fc1.weight', 'float32', [64, 48], lowRankValues(64, 48, 4, 7));
  const path = await save(m);
  const report = await compress(path, {
    tensorPattern: '^fc1\\.weight$',
    options: { method: 'lowrank', rank: 4 },
  });
  const [t] = compressed(report);
  assert.ok(t!.relativeError < 1e-5, `${t!.relativeError}`);
  assert.equal(t!.bytesAfter, 4 * 4 * (64 + 48));
  assert.ok(report.outputs[0]!.relativeL2 < 1e-5, `${report.outputs[0]!.relativeL2}`);
  const energy = await compress(path, {
    tensorPattern: '^fc1\\.weight$',
    options: { method: 'lowrank', energy: 0.999999 },
  });
  assert.match(compressed(energy)[0]!.detail, /^rank 4 of 48/);
  const out = await decode(report.output);
  assert.equal(out.graph!.node!.filter((n) => n.opType === 'MatMul').length, 3);
  const before = await readdir(folder());
  await assert.rejects(
    compress(path, { tensorPattern: '^fc1\\.weight$', options: { method: 'lowrank', rank: 28 } }),
    /rank 28 of a 64 × 48 matrix .* the largest rank that saves is 27/,
  );
  assert.deepEqual(await readdir(folder()), before);
});

test('low-rank of a larger MatMul weight (randomized SVD) is exact at its rank; a cancel during the SVD leaves no file', async () => {
  const rows = 384;
  const cols = 256;
  const m = model(
    graph({
      initializers: [
        tensor('big.weight', 'float32', [rows, cols], lowRankValues(rows, cols, 6, 9)),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', rows])],
      outputs: [valueInfo('y', 'float32', ['batch', cols])],
      nodes: [node('MatMul', ['x', 'big.weight'], ['y'], { name: 'big' })],
    }),
  );
  const path = await save(m);
  const report = await compress(path, { options: { method: 'lowrank', rank: 6 } });
  const [t] = compressed(report);
  assert.ok(t!.relativeError < 1e-5, `${t!.relativeError}`);
  assert.match(t!.detail, /^rank 6 of 256/);
  assert.equal(t!.bytesAfter, 4 * 6 * (rows + cols));
  assert.ok(report.outputs[0]!.relativeL2 < 1e-5, `${report.outputs[0]!.relativeL2}`);
  const before = await readdir(folder());
  const controller = new AbortController();
  await assert.rejects(
    compressModel(
      path,
      { tensors: [], options: { method: 'lowrank', energy: 0.99 } },
      {
        signal: controller.signal,
        // Reported just before the weight is factorised: the SVD sees the abort.
        onProgress: (_done, _total, name) => {
          if (name === 'big.weight') controller.abort();
        },
      },
    ),
    { name: 'AbortError' },
  );
  assert.deepEqual(await readdir(folder()), before);
});

test('fp16 and bf16 weights with Cast nodes', async () => {
  const path = await save(mlp());
  const fp16 = await compress(path, { options: { method: 'fp16' } });
  for (const t of compressed(fp16)) {
    assert.equal(t.bytesAfter * 2, t.bytesBefore);
    assert.ok(t.relativeError < 1e-3);
  }
  assert.ok(fp16.outputs[0]!.relativeL2 < 1e-3);
  const out = await decode(fp16.output);
  assert.equal(out.graph!.node!.filter((n) => n.opType === 'Cast').length, 2);
  const bf16 = await compress(path, { options: { method: 'bf16' } });
  assert.ok(bf16.outputs[0]!.relativeL2 < 1e-2);
  assert.ok(bf16.outputs[0]!.relativeL2 > fp16.outputs[0]!.relativeL2);
});

function convNet(): onnx.IModelProto {
  return model(
    graph({
      initializers: [
        tensor('conv1.weight', 'float32', [8, 3, 3, 3], randomValues(8 * 27, 11)),
        tensor('conv1.bias', 'float32', [8], randomValues(8, 12)),
        tensor('conv2.weight', 'float32', [16, 8, 3, 3], lowRankValues(16, 72, 3, 13)),
        tensor('conv2.bias', 'float32', [16], randomValues(16, 14)),
      ],
      inputs: [valueInfo('x', 'float32', [1, 3, 12, 12])],
      outputs: [valueInfo('y', 'float32', [1, 16, 12, 12])],
      nodes: [
        node('Conv', ['x', 'conv1.weight', 'conv1.bias'], ['c1'], {
          name: 'conv1',
          attributes: [
            attribute.ints('pads', [1, 1, 1, 1]),
            attribute.ints('kernel_shape', [3, 3]),
          ],
        }),
        node('Relu', ['c1'], ['r1']),
        node('Conv', ['r1', 'conv2.weight', 'conv2.bias'], ['y'], {
          name: 'conv2',
          attributes: [attribute.ints('pads', [1, 1, 1, 1]), attribute.ints('strides', [1, 1])],
        }),
      ],
    }),
  );
}

test('conv net: int8 per output channel, int4 blocks, N:M over in·kh·kw, low-rank Conv + 1×1 Conv', async () => {
  const path = await save(convNet());
  const int8 = await compress(path, { options: { method: 'int8' } });
  assert.equal(compressed(int8).length, 2);
  assert.ok(int8.outputs[0]!.cosine >= 0.999);
  const int8Model = await decode(int8.output);
  assert.equal(int8Model.graph!.node!.filter((n) => n.opType === 'Reshape').length, 2);
  const int4 = await compress(path, { options: { method: 'int4', blockSize: 32 } });
  assert.ok(int4.outputs[0]!.cosine > 0.98);
  assert.match(compressed(int4)[0]!.detail, /DequantizeLinear opset 21/);
  const nm = await compress(path, { options: { method: 'nm' } });
  assert.equal(compressed(nm).length, 2);
  const low = await compress(path, {
    tensorPattern: 'conv2',
    options: { method: 'lowrank', rank: 3 },
  });
  const [t] = compressed(low);
  assert.ok(t!.relativeError < 1e-5);
  assert.ok(low.outputs[0]!.relativeL2 < 1e-5, `${low.outputs[0]!.relativeL2}`);
  const lowModel = await decode(low.output);
  const convs = lowModel.graph!.node!.filter((n) => n.opType === 'Conv');
  assert.equal(convs.length, 3);
  assert.deepEqual(
    lowModel
      .graph!.initializer!.filter((i) => i.name!.includes('lowrank'))
      .map((i) => i.dims!.map(Number)),
    [
      [16, 3, 1, 1],
      [3, 8, 3, 3],
    ],
  );
});

test('Gemm with bias, transB and alpha/beta: int8 along axis 0 and an exact low-rank split', async () => {
  const m = model(
    graph({
      initializers: [
        tensor('W', 'float32', [24, 40], lowRankValues(24, 40, 5, 21)),
        tensor('C', 'float32', [24], randomValues(24, 22)),
      ],
      inputs: [valueInfo('x', 'float32', ['batch', 40])],
      outputs: [valueInfo('y', 'float32', ['batch', 24])],
      nodes: [
        node('Gemm', ['x', 'W', 'C'], ['y'], {
          name: 'gemm',
          attributes: [
            attribute.int('transB', 1),
            attribute.float('alpha', 0.5),
            attribute.float('beta', 2),
          ],
        }),
      ],
    }),
  );
  const path = await save(m);
  const int8 = await compress(path, { options: { method: 'int8' } });
  assert.match(compressed(int8)[0]!.detail, /axis 0, 24 scales/);
  assert.ok(int8.outputs[0]!.cosine >= 0.999);
  const low = await compress(path, { options: { method: 'lowrank', rank: 5 } });
  assert.ok(low.outputs[0]!.relativeL2 < 1e-5, `${low.outputs[0]!.relativeL2}`);
  const gemms = (await decode(low.output)).graph!.node!.filter((n) => n.opType === 'Gemm');
  assert.equal(gemms.length, 2);
  assert.deepEqual(gemms[1]!.input, [gemms[0]!.output![0], 'W_lowrank_a', 'C']);
});

test('weights in Constant nodes and in an If subgraph (also read from the outer scope)', async () => {
  const thenBranch = graph({
    name: 'then',
    nodes: [
      constantNode(
        'inner.weight',
        tensor('inner.weight', 'float32', [32, 8], randomValues(256, 31)),
      ),
      node('MatMul', ['x', 'inner.weight'], ['t'], { name: 'inner' }),
    ],
    outputs: [valueInfo('t', 'float32', ['batch', 8])],
  });
  const elseBranch = graph({
    name: 'else',
    nodes: [node('MatMul', ['x', 'outer.weight'], ['e'], { name: 'outer' })],
    outputs: [valueInfo('e', 'float32', ['batch', 8])],
  });
  const m = model(
    graph({
      initializers: [tensor('outer.weight', 'float32', [32, 8], randomValues(256, 32))],
      inputs: [valueInfo('x', 'float32', ['batch', 32]), valueInfo('flag', 'bool', [])],
      outputs: [valueInfo('y', 'float32', ['batch', 8])],
      nodes: [
        constantNode('main.weight', tensor('main.weight', 'float32', [8, 8], randomValues(64, 33))),
        ifNode('flag', ['z'], thenBranch, elseBranch, 'If_0'),
        node('MatMul', ['z', 'main.weight'], ['y'], { name: 'head' }),
      ],
    }),
  );
  const path = await save(m);
  for (const method of ['int8', 'fp16', 'prune', 'int4'] as const) {
    const report = await compress(path, { options: { method, blockSize: 16 } });
    assert.deepEqual(
      compressed(report)
        .map((t) => t.name)
        .sort(),
      ['inner.weight', 'main.weight', 'outer.weight'],
      method,
    );
    assert.equal(report.outputs.length, 1, method);
    const bound = method === 'prune' ? 0.7 : 0.95;
    assert.ok(report.outputs[0]!.cosine > bound, `${method}: ${report.outputs[0]!.cosine}`);
  }
  const int8 = await decode((await compress(path, { options: { method: 'int8' } })).output);
  const slots = tensorSlots(int8, 'model');
  const inner = slots.find((s) => s.name === 'inner.weight_quantized')!;
  assert.equal(inner.kind, 'constant');
  assert.equal(inner.scope.path, 'If_0/then_branch');
});

test('external data stays external: a new data file beside the output, the original data untouched', async () => {
  const data = new ExternalDataFile('weights.bin');
  const m = mlp();
  m.graph!.initializer = [
    data.add('fc1.weight', 'float32', [64, 48], randomValues(64 * 48, 1)),
    tensor('fc1.bias', 'float32', [48], randomValues(48, 2)),
    data.add('fc2.weight', 'float32', [48, 16], randomValues(48 * 16, 3)),
  ];
  const sub = join(folder(), 'external');
  await import('node:fs/promises').then((fs) => fs.mkdir(sub));
  const path = await writeModel(sub, 'ext.onnx', m, [data]);
  const dataChecksum = await sha256(join(sub, 'weights.bin'));
  const report = await compress(path, { tensorPattern: 'fc1', options: { method: 'int8' } });
  assert.equal(await sha256(join(sub, 'weights.bin')), dataChecksum);
  const out = await decode(report.output);
  const external = out.graph!.initializer!.filter((t) => t.dataLocation === 1);
  const locations = new Set(
    external.map((t) => t.externalData!.find((e) => e.key === 'location')!.value),
  );
  assert.deepEqual([...locations], ['ext.int8.onnx.data']);
  // The quantized fc1 and the untouched fc2 both live in the new data file.
  assert.deepEqual(external.map((t) => t.name).sort(), ['fc1.weight_quantized', 'fc2.weight']);
  assert.ok(report.outputs[0]!.cosine >= 0.999);
  assert.deepEqual((await readdir(sub)).sort(), [
    'ext.int8.onnx',
    'ext.int8.onnx.data',
    'ext.onnx',
    'ext.onnx.layerlens',
    'weights.bin',
  ]);
  assert.deepEqual(await readdir(join(sub, 'ext.onnx.layerlens')), ['ext.int8.onnx.report.json']);
  const untouched = await compress(path, {
    tensorPattern: 'fc2',
    options: { method: 'prune', sparsity: 0 },
  });
  assert.equal(untouched.outputs[0]!.maxAbsDiff, 0);
});

test('names never collide, --out never overwrites, a cancelled job leaves no file', async () => {
  const path = await save(mlp());
  const first = await compress(path, { options: { method: 'fp16' } });
  const second = await compress(path, { options: { method: 'fp16' } });
  assert.equal(second.output, path.replace(/\.onnx$/, '.fp16-1.onnx'));
  const firstChecksum = await sha256(first.output);
  await assert.rejects(
    compress(path, { outPath: first.output, options: { method: 'int8' } }),
    /never overwrites/,
  );
  assert.equal(await sha256(first.output), firstChecksum);
  const before = (await readdir(folder())).sort();
  for (const stage of ['fc2.weight', 'writing', 'validating in onnxruntime']) {
    const controller = new AbortController();
    await assert.rejects(
      compressModel(
        path,
        { tensors: [], options: { method: 'int8' } },
        {
          signal: controller.signal,
          onProgress: (_done, _total, message) => {
            if (message === stage) controller.abort();
          },
        },
      ),
      (error: Error) => error.name === 'AbortError',
    );
    assert.deepEqual((await readdir(folder())).sort(), before, `cancelled at ${stage}`);
  }
});

test('bad options and unusable requests are refused with clear messages, writing nothing', async () => {
  const path = await save(mlp());
  const before = (await readdir(folder())).sort();
  await assert.rejects(
    compress(path, { options: { method: 'prune', sparsity: 1 } }),
    /sparsity must be in \[0, 1\)/,
  );
  await assert.rejects(
    compress(path, { options: { method: 'int4', blockSize: 48 } }),
    /block size/,
  );
  await assert.rejects(
    compress(path, { tensorPattern: 'bias', options: { method: 'int8' } }),
    /nothing to compress with int8: 1 × 1-D tensor/,
  );
  await writeFile(join(folder(), 'broken.onnx'), Uint8Array.from([8, 7, 0xff]));
  await assert.rejects(
    compress(join(folder(), 'broken.onnx'), { options: { method: 'int8' } }),
    /broken\.onnx/,
  );
  assert.deepEqual((await readdir(folder())).sort(), [...before, 'broken.onnx'].sort());
});

test('IR 3 models (initializers listed as graph inputs) stay valid; opset raises add the IR they need', async () => {
  const m = mlp();
  m.irVersion = 3;
  m.opsetImport = [{ domain: '', version: 9 }];
  m.graph!.input = [
    ...m.graph!.input!,
    ...m.graph!.initializer!.map((t) => valueInfo(t.name!, 'float32', t.dims!.map(Number))),
  ];
  const path = await save(m);
  for (const method of ['prune', 'fp16', 'int8'] as const) {
    const report = await compress(path, { options: { method } });
    assert.equal(report.outputs.length, 1, method);
    const out = await decode(report.output);
    const inputs = new Set(out.graph!.input!.map((i) => i.name));
    if (method === 'int8') {
      assert.equal(Number(out.irVersion), 7);
      assert.match(report.validation[0]!, /opset 9 → 13, IR version 3 → 7/);
      assert.ok(!inputs.has('fc1.weight'));
    } else {
      assert.equal(Number(out.irVersion), 3);
      for (const t of out.graph!.initializer!)
        assert.ok(inputs.has(t.name!), `${method}: ${t.name}`);
    }
  }
});

test('an embedding table (Gather) is quantized per row; low-rank leaves it alone', async () => {
  const m = model(
    graph({
      initializers: [tensor('embed.weight', 'float32', [50, 24], randomValues(50 * 24, 51))],
      inputs: [valueInfo('ids', 'int64', ['batch', 7])],
      outputs: [valueInfo('e', 'float32', ['batch', 7, 24])],
      nodes: [node('Gather', ['embed.weight', 'ids'], ['e'], { name: 'embed' })],
    }),
  );
  const path = await save(m);
  const int8 = await compress(path, { options: { method: 'int8' } });
  assert.match(compressed(int8)[0]!.detail, /axis 0, 50 scales/);
  assert.ok(int8.outputs[0]!.cosine >= 0.999);
  const int4 = await compress(path, { options: { method: 'int4', blockSize: 16 } });
  assert.match(compressed(int4)[0]!.detail, /DequantizeLinear opset 21, axis 1/);
  await assert.rejects(
    compress(path, { options: { method: 'lowrank', rank: 2 } }),
    /low-rank applies to MatMul, Gemm and Conv/,
  );
});

test('an unavailable compute backend falls back to the CPU with a note', async () => {
  const path = await save(mlp());
  const report = await compressModel(
    path,
    { tensors: [], options: { method: 'int8' } },
    { settings: { 'compute.backend': 'dml' } },
  );
  assert.ok(
    report.validation.some((line) =>
      /^dml not available in this onnxruntime, which offers /.test(line),
    ),
    report.validation.join('\n'),
  );
  assert.ok(report.validation.includes('onnxruntime load (cpu)'));
  assert.equal(report.outputs.length, 1);
});

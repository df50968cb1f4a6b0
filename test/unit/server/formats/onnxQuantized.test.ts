/**
 * Already-quantized ONNX models: weights read through DequantizeLinear (per tensor, per
 * axis, blocked), ConvInteger/MatMulInteger with onnxruntime's dynamic-quantization
 * layout, QLinearConv/QLinearMatMul and MatMulNBits (with packed, float or no zero
 * points) show the values the model computes with, (q − zero point) · scale, checked
 * against NumPy and against onnxruntime running the same models; their codes are
 * counted; compressing them again is refused with the reason. LayerLens's own int8 and
 * int4 outputs of a real model decode to the values its writer intended.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { LspMethods } from '../../../../src/shared/lsp';
import { isStatsError, type TensorInfo } from '../../../../src/shared/model';
import { openModelFile } from '../../../../src/server/formats/registry';
import { onnxFormat } from '../../../../src/server/formats/onnx';
import { loadTensorData } from '../../../../src/server/formats/onnxTensors';
import type { OpenedModel, TensorEntry } from '../../../../src/server/formats/types';
import {
  dequantizeBlocks,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
} from '../../../../src/server/compress/kernels';
import { methodFor } from '../../../../src/server/compress/methods';
import { onnxWeights } from '../../../../src/server/compress/onnx/sizes';
import { weightLayout } from '../../../../src/server/onnx';
import {
  attribute,
  graph,
  type GraphParts,
  model,
  node,
  rawTensor,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { workerSourceOf } from '../../../../src/server/jobs/computeStats';
import { startServer, type ServerProcess } from '../../../support/serverProcess';
import {
  writeQuantizedModels,
  type QuantizedModelReference,
  type QuantizedReference,
} from '../../../support/quantizedOnnx';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let folder: string;
let references: Record<string, QuantizedModelReference>;
let server: ServerProcess;

before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'layerlens-quantized-'));
  references = await writeQuantizedModels(folder);
  server = await startServer({ 'stats.workerCount': 2 });
});
after(async () => {
  server.stop();
  await rm(folder, { recursive: true, force: true });
});

function modelPath(name: string): string {
  return join(folder, `${name}.onnx`);
}

function floats(entry: TensorEntry): Float32Array {
  assert.equal(entry.data.kind, 'memory', `${entry.info.name} is decoded in memory`);
  const bytes = entry.data.kind === 'memory' ? entry.data.load() : new Uint8Array(0);
  return new Float32Array(bytes.slice().buffer);
}

/** Largest |a − b| relative to the largest |b|. */
function relativeMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'as many values');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, Number.MIN_VALUE);
}

function eachWeight(visit: (model: string, weight: string, reference: QuantizedReference) => void) {
  for (const [model, { weights }] of Object.entries(references)) {
    for (const [weight, reference] of Object.entries(weights)) visit(model, weight, reference);
  }
}

function entryNamed(model: OpenedModel, name: string): TensorEntry {
  const entry = model.tensors.find((candidate) => candidate.info.name === name);
  assert.ok(entry, `tensor ${name} is listed`);
  return entry;
}

describe('quantized models built with Python onnx', () => {
  test('are real: onnxruntime runs each, and an identity input gives back NumPy’s (q − zp) · scale', async () => {
    assert.equal(Object.keys(references).length, 9);
    for (const [name, reference] of Object.entries(references)) {
      const session = await ort.InferenceSession.create(modelPath(name));
      const shape = [...reference.input.shape];
      const count = shape.reduce((a, b) => a * b, 1);
      const input = new Float32Array(count);
      const identity = Object.values(reference.weights).find((weight) => weight.identity);
      if (identity) for (let i = 0; i < shape[0]!; i++) input[i * shape[1]! + i] = 1;
      else for (let i = 0; i < count; i++) input[i] = Math.sin(i);
      const outputs = await session.run({
        [reference.input.name]: new ort.Tensor('float32', input, shape),
      });
      const output = Object.values(outputs)[0]!.data as Float32Array;
      assert.ok(output.length > 0 && output.every(Number.isFinite), `${name} computes`);
      if (identity) {
        assert.ok(relativeMaxDiff(output, identity.values) < 1e-6, `${name}: onnxruntime's W`);
      }
      await session.release();
    }
  });

  test('each quantized weight is listed with its scheme and decodes to NumPy’s values', async () => {
    const opened = new Map<string, OpenedModel>();
    for (const name of Object.keys(references))
      opened.set(name, await onnxFormat.open(modelPath(name)));
    eachWeight((model, weight, reference) => {
      const entry = entryNamed(opened.get(model)!, weight);
      const { encoding } = entry.info;
      const where = `${model}/${weight}`;
      assert.ok(encoding, `${where} has an encoding`);
      assert.equal(encoding.notDecoded, null, `${where} is decoded`);
      assert.equal(encoding.countsCodes, true, `${where}'s codes are counted`);
      assert.equal(encoding.scheme, reference.scheme, where);
      assert.equal(encoding.granularity, reference.granularity, where);
      assert.equal(encoding.blockSize, reference.blockSize, where);
      assert.equal(encoding.symmetric, reference.symmetric, where);
      assert.ok(Math.abs(encoding.bitsPerWeight - reference.bitsPerWeight) < 1e-9, where);
      assert.equal(entry.info.dtype, 'float32', `${where} shows float32 values`);
      if (reference.shape) assert.deepEqual(entry.info.shape, reference.shape, where);
      assert.equal(entry.info.parameterCount, reference.values.length, where);
      assert.ok(relativeMaxDiff(floats(entry), reference.values) < 1e-6, `${where} values`);
      // Statistics workers decode it themselves from the file's ranges.
      assert.equal(workerSourceOf(entry.data)?.kind, 'decoded', where);
    });
    const dynamic = entryNamed(opened.get('dynamic_conv_integer')!, 'V_q').info;
    assert.equal(dynamic.encoding?.decodedBy, 'ConvInteger');
    assert.equal(dynamic.node, 'ConvInteger_1', 'the codes belong to the layer that reads them');
    const summary = opened.get('qdq_per_tensor')!.summary;
    assert.equal(summary.bytesByDType.uint8, 16 * 8 + 1, 'sizes count the stored codes');
  });

  test('the server’s statistics, spectrum, heatmap and codes are those of the decoded values', async () => {
    for (const [model, reference] of Object.entries(references)) {
      const uri = pathToFileURL(modelPath(model)).toString();
      const page = await server.request(LspMethods.tensors, { uri, offset: 0, limit: 100 });
      for (const [weight, expected] of Object.entries(reference.weights)) {
        const where = `${model}/${weight}`;
        const info = page.tensors.find((tensor: TensorInfo) => tensor.name === weight)!;
        assert.equal(info.encoding?.scheme, expected.scheme, where);
        const [stats] = await server.request(LspMethods.tensorStats, {
          uri,
          indices: [info.index],
        });
        assert.ok(stats && !isStatsError(stats), where);
        const values = expected.values;
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        assert.equal(stats.min, Math.min(...values), `${where} min`);
        assert.equal(stats.max, Math.max(...values), `${where} max`);
        assert.ok(Math.abs(stats.mean! - mean) <= 1e-6 * Math.max(...values.map(Math.abs)), where);
        assert.equal(
          stats.histogram!.counts.reduce((a, b) => a + b, 0),
          values.length,
        );

        const spectrum = await server.request(LspMethods.spectrum, { uri, index: info.index });
        assert.ok(
          relativeMaxDiff(spectrum.singularValues, expected.sigma) < 1e-4,
          `${where} singular values`,
        );
        const heatmap = await server.request(LspMethods.heatmapInfo, {
          uri,
          index: info.index,
          layer: { kind: 'magnitude' },
        });
        assert.equal(heatmap.max, Math.max(...values.map(Math.abs)), `${where} largest |w|`);

        const codes = await server.request(LspMethods.tensorCodes, { uri, index: info.index });
        assert.equal(codes.levelsUsed, expected.levelsUsed, `${where} levels used`);
        const bits = weight === 'B' ? 4 : 8;
        assert.equal(codes.levelsPossible, 2 ** bits, where);
        assert.equal(codes.min, Math.min(...expected.codes));
        assert.equal(codes.max, Math.max(...expected.codes));
        // One bin per code, edges at code ± ½.
        assert.equal(codes.histogram.min, codes.min - 0.5);
        for (const [code, count] of Object.entries(expected.codeCounts)) {
          assert.equal(
            codes.histogram.counts[Number(code) - codes.min],
            count,
            `${where} code ${code}`,
          );
        }
      }
    }
  });

  test('a packed (.llz) quantized model decodes its weights from the container', async () => {
    const source = join(folder, 'packed.onnx');
    await copyFile(modelPath('matmulnbits_zero_points'), source);
    const packed = await server.request(LspMethods.pack, { uri: pathToFileURL(source).toString() });
    await rm(source);
    const opened = await openModelFile(packed.out);
    const entry = entryNamed(opened, 'B');
    assert.equal(entry.info.encoding?.scheme, 'MatMulNBits 4-bit');
    const expected = references.matmulnbits_zero_points!.weights.B!.values;
    assert.ok(relativeMaxDiff(floats(entry), expected) < 1e-6, 'values decoded from the container');
  });

  test('compressing a quantized weight again is refused with the reason, everywhere', async () => {
    const reason =
      'already int8 per-channel (DequantizeLinear); LayerLens does not re-quantize quantized weights';
    const model = await onnxFormat.open(modelPath('qdq_per_axis'));
    const weights = onnxWeights(model, await model.onnx!());
    const conv = entryNamed(model, 'C_q');
    for (const method of ['int8', 'int4', 'prune', 'nm', 'lowrank', 'fp16'] as const) {
      assert.equal(
        methodFor(method, 'onnx').feasible(weights.get(conv.info.index)!, { method }),
        reason,
      );
    }
    const uri = pathToFileURL(modelPath('qdq_per_axis')).toString();
    await assert.rejects(
      server.request(LspMethods.compress, {
        uri,
        request: { tensors: [conv.info.index], options: { method: 'int4' } },
      }),
      (error: Error) => error.message.includes(reason),
    );
    const sensitivity = await server.request(LspMethods.sensitivity, {
      uri,
      request: { indices: [conv.info.index], measured: false },
    });
    assert.ok(
      JSON.stringify(sensitivity).includes(reason),
      'the sweep leaves the weight out with the same reason',
    );
  });
});

/**
 * Compress `source` with `method` through the server, open the output, and check that each
 * compressed weight's codes decode to what the writer computed from the original values
 * (its quantization kernels) and that the statistics stay close to the original's.
 */
async function checkRoundTrip(source: string, method: 'int8' | 'int4', scheme: RegExp) {
  const report = await server.request(LspMethods.compress, {
    uri: pathToFileURL(source).toString(),
    request: { tensors: [], options: { method, ...(method === 'int4' ? { blockSize: 32 } : {}) } },
  });
  const original = await onnxFormat.open(source);
  const decodedOriginal = await original.onnx!();
  const written = await onnxFormat.open(report.output);
  const compressed = report.tensors.filter((tensor) => !tensor.skipped);
  assert.ok(compressed.length >= 1, `${method} compressed weights of ${source}`);
  for (const result of compressed) {
    const entry = entryNamed(original, result.name);
    const slot = decodedOriginal.slots[entry.info.index]!;
    const layout = weightLayout(
      decodedOriginal.weightUses(slot.name, slot.scope).uses,
      entry.info.shape,
    );
    assert.ok(typeof layout !== 'string', `${result.name} has a layout`);
    const values = floatsOf(entry);
    const intended = dequantizeBlocks(
      method === 'int8'
        ? quantizeInt8PerChannel(values, layout)
        : quantizeInt4Blocks(values, layout, 32),
      layout,
    );
    const codes = written.tensors.find(
      (candidate) => candidate.info.encoding && candidate.info.name.startsWith(`${result.name}_`),
    );
    assert.ok(codes, `the codes of ${result.name} are listed as quantized`);
    assert.equal(codes.info.encoding!.notDecoded, null);
    assert.match(codes.info.encoding!.scheme, scheme);
    const decoded = floats(codes);
    assert.ok(relativeMaxDiff(decoded, intended) < 1e-6, `${result.name} decodes as intended`);
    const error = Math.sqrt(
      decoded.reduce((sum, v, i) => sum + (v - values[i]!) ** 2, 0) /
        values.reduce((sum, v) => sum + v * v, 0),
    );
    assert.ok(
      Math.abs(error - result.relativeError) <= 1e-4 * Math.max(result.relativeError, 1e-6),
      `${result.name}: the reported error is the decoded values' (${error} vs ${result.relativeError})`,
    );
    const [before, afterStats] = await Promise.all(
      [
        [source, entry.info.index],
        [report.output, codes.info.index],
      ].map(async ([file, index]) => {
        const uri = pathToFileURL(file as string).toString();
        const [stats] = await server.request(LspMethods.tensorStats, {
          uri,
          indices: [index as number],
        });
        assert.ok(stats && !isStatsError(stats));
        return stats;
      }),
    );
    assert.ok(Math.abs(afterStats!.std! - before!.std!) <= 0.1 * before!.std!, 'std close');
    assert.ok(Math.abs(afterStats!.mean! - before!.mean!) <= 0.1 * before!.std!, 'mean close');
  }
}

describe('quantized weights LayerLens cannot decode', () => {
  /** W_q (int8 [4, 4]) through DequantizeLinear with `scale` and `axis` 1, then a MatMul. */
  async function openDequantized(name: string, scaleNodes: GraphParts) {
    const path = await writeModel(
      folder,
      `${name}.onnx`,
      model(
        graph({
          nodes: [
            ...(scaleNodes.nodes ?? []),
            node('DequantizeLinear', ['W_q', 'S'], ['W'], {
              attributes: [attribute.int('axis', 1)],
            }),
            node('MatMul', ['X', 'W'], ['Y']),
          ],
          initializers: [
            tensor(
              'W_q',
              'int8',
              [4, 4],
              [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -16],
            ),
            ...(scaleNodes.initializers ?? []),
          ],
          inputs: [valueInfo('X', 'float32', [1, 4])],
          outputs: [valueInfo('Y', 'float32', [1, 4])],
        }),
      ),
    );
    return entryNamed(await onnxFormat.open(path), 'W_q');
  }

  test('a computed scale leaves the codes listed as stored, with the reason', async () => {
    const entry = await openDequantized('computed-scale', {
      nodes: [node('Mul', ['s1', 's2'], ['S'])],
      initializers: [
        tensor('s1', 'float32', [4], [1, 2, 3, 4]),
        tensor('s2', 'float32', [], [0.5]),
      ],
    });
    assert.equal(entry.info.dtype, 'int8', 'the stored codes');
    assert.equal(entry.info.encoding?.scheme, 'int8 (DequantizeLinear)');
    assert.match(
      entry.info.encoding?.notDecoded ?? '',
      /scale of DequantizeLinear is computed, not stored/,
    );
  });

  test('a scale that does not fit the axis leaves the codes listed as stored, with the reason', async () => {
    const entry = await openDequantized('wrong-scale', {
      initializers: [tensor('S', 'float32', [3], [1, 2, 3])],
    });
    assert.equal(entry.info.dtype, 'int8');
    assert.match(entry.info.encoding?.notDecoded ?? '', /3 scales for 4 channels along axis 1/);
  });
});

describe('LayerLens’s own quantized output', () => {
  test('int8 of Silero VAD v5 (per-channel DequantizeLinear) decodes as the writer intended', async () => {
    const source = join(folder, 'silero-int8.onnx');
    await copyFile(SILERO_V5, source);
    await checkRoundTrip(source, 'int8', /^int8 per-(channel|tensor)$/);
  });

  test('int4 of Silero VAD v5 (blocked DequantizeLinear, opset 21) decodes as the writer intended', async () => {
    const source = join(folder, 'silero-int4.onnx');
    await copyFile(SILERO_V5, source);
    await checkRoundTrip(source, 'int4', /^int4 blocked$/);
  });

  test('int4 of a MatMul (MatMulNBits) decodes as the writer intended', async () => {
    // Silero has no MatMul: its trained LSTM input weights [512, 128], transposed to a
    // MatMul's [K = 128, N = 512], stand in for one.
    const silero = await onnxFormat.open(SILERO_V5);
    const lstm = silero.tensors.find((entry) => /decoder\.rnn\.weight_ih$/.test(entry.info.name))!;
    const [rows, cols] = [lstm.info.shape.at(-2)!, lstm.info.shape.at(-1)!];
    const values = floatsOf(lstm).subarray(0, rows * cols);
    const transposed = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) transposed[c * rows + r] = values[r * cols + c]!;
    const source = await writeModel(
      folder,
      'matmul.onnx',
      model(
        graph({
          nodes: [node('MatMul', ['X', 'W'], ['Y'])],
          initializers: [
            rawTensor('W', 'float32', [cols, rows], new Uint8Array(transposed.buffer)),
          ],
          inputs: [valueInfo('X', 'float32', [1, cols])],
          outputs: [valueInfo('Y', 'float32', [1, rows])],
        }),
        { opsets: { '': 17 } },
      ),
    );
    await checkRoundTrip(source, 'int4', /^MatMulNBits 4-bit$/);
  });
});

function floatsOf(entry: TensorEntry): Float32Array {
  return new Float32Array(loadTensorData(entry.data).slice().buffer);
}

/**
 * Compression at every default-domain opset from 7 to 21, on generated models: a Conv
 * (27 inputs per channel: int4 blocks are padded), a Clip, a Gemm with transB (288 inputs)
 * and a MatMul (inputs down the rows). Below opset 11 the Clip has its old attribute form,
 * which keeps the opset from being raised: int8 and int4 are then written with Cast, Mul
 * and the other operators of the model's own opset (compress/onnx/dequantize.ts), never
 * refused. Each written model runs in onnxruntime, computes what the same model with the
 * round-tripped weights computes, and passes python3-onnx's checker (for the opsets the
 * installed onnx knows: Debian's 1.12 stops at 17).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import type { CompressionOptions } from '../../../../src/shared/compress';
import { compressModel } from '../../../../src/server/compress';
import {
  dequantizeBlocks,
  quantizeInt4Blocks,
  quantizeInt8PerChannel,
  type MatrixLayout,
} from '../../../../src/server/compress/kernels';
import { topologicalOrder } from '../../../../src/server/onnx';
import {
  attribute,
  encodeModel,
  graph,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../../support/onnxBuilder';
import { checkOnnxModel } from '../../../support/python';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-opsets-');

const OPSETS = [7, 9, 11, 13, 17, 21] as const;

/** The IR version each opset came with (ONNX's versioning table). */
function irFor(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 17) return 8;
  if (opset >= 13) return 7;
  if (opset >= 11) return 6;
  if (opset >= 9) return 4;
  return 3;
}

/** Deterministic pseudo-random weights in (−1, 1). */
function weights(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

const WEIGHTS = {
  'conv.w': { shape: [8, 3, 3, 3], layout: { rows: 8, cols: 27, inputAxis: 1 } },
  'fc.w': { shape: [16, 288], layout: { rows: 16, cols: 288, inputAxis: 1 } },
  'out.w': { shape: [16, 20], layout: { rows: 16, cols: 20, inputAxis: 0 } },
} as const satisfies Record<string, { shape: readonly number[]; layout: MatrixLayout }>;
type WeightName = keyof typeof WEIGHTS;

const ORIGINAL: Record<WeightName, Float32Array> = {
  'conv.w': weights(216, 1),
  'fc.w': weights(16 * 288, 2).map((v) => v * 0.1),
  'out.w': weights(320, 3),
};

/** The test network at `opset`, with `values` for its weights. */
function network(opset: number, values: Record<WeightName, Float32Array>): onnx.IModelProto {
  const initializers = [
    ...(Object.keys(WEIGHTS) as WeightName[]).map((name) =>
      tensor(name, 'float32', WEIGHTS[name].shape, [...values[name]]),
    ),
    tensor('conv.b', 'float32', [8], [...weights(8, 4)]),
    tensor('fc.b', 'float32', [16], [...weights(16, 5)]),
  ];
  const clip =
    opset < 11
      ? node('Clip', ['c1'], ['r1'], {
          name: 'relu6',
          attributes: [attribute.float('min', 0), attribute.float('max', 6)],
        })
      : node('Clip', ['c1', 'clip.min', 'clip.max'], ['r1'], { name: 'relu6' });
  if (opset >= 11) {
    initializers.push(
      tensor('clip.min', 'float32', [], [0]),
      tensor('clip.max', 'float32', [], [6]),
    );
  }
  const inputs = [valueInfo('x', 'float32', [1, 3, 6, 6])];
  if (irFor(opset) < 4) {
    // Before IR 4 every initializer is listed as a graph input too.
    for (const t of initializers) inputs.push(valueInfo(t.name!, 'float32', t.dims as number[]));
  }
  const g = graph({
    initializers,
    inputs,
    outputs: [valueInfo('y', 'float32', [1, 20])],
    nodes: [
      node('Conv', ['x', 'conv.w', 'conv.b'], ['c1'], {
        name: 'conv',
        attributes: [attribute.ints('pads', [1, 1, 1, 1]), attribute.ints('kernel_shape', [3, 3])],
      }),
      clip,
      node('Flatten', ['r1'], ['f'], { name: 'flatten', attributes: [attribute.int('axis', 1)] }),
      node('Gemm', ['f', 'fc.w', 'fc.b'], ['g'], {
        name: 'fc',
        attributes: [attribute.int('transB', 1)],
      }),
      node('MatMul', ['g', 'out.w'], ['y'], { name: 'out' }),
    ],
  });
  return model(g, { opsets: { '': opset }, irVersion: irFor(opset) });
}

const INPUT = new ort.Tensor(
  'float32',
  weights(108, 9).map((v) => v * 3),
  [1, 3, 6, 6],
);

async function run(bytes: Uint8Array): Promise<Float32Array> {
  // Unoptimised: onnxruntime's fusions of DequantizeLinear with MatMul change the arithmetic.
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run({ x: INPUT });
    return out.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** The network with each weight replaced by what `roundTrip` makes of it, run in onnxruntime. */
async function reference(
  opset: number,
  roundTrip: (values: Float32Array, layout: MatrixLayout) => Float32Array,
): Promise<Float32Array> {
  const values = { ...ORIGINAL };
  for (const name of Object.keys(WEIGHTS) as WeightName[]) {
    values[name] = roundTrip(ORIGINAL[name], WEIGHTS[name].layout);
  }
  return run(encodeModel(network(opset, values)));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const CASES: readonly {
  options: CompressionOptions;
  roundTrip?: (values: Float32Array, layout: MatrixLayout) => Float32Array;
}[] = [
  {
    options: { method: 'int8' },
    roundTrip: (v, l) => dequantizeBlocks(quantizeInt8PerChannel(v, l), l),
  },
  {
    options: { method: 'int4', blockSize: 32 },
    roundTrip: (v, l) => dequantizeBlocks(quantizeInt4Blocks(v, l, 32), l),
  },
  {
    options: { method: 'int4', blockSize: 32, int4Format: 'dequantizelinear' },
    roundTrip: (v, l) => dequantizeBlocks(quantizeInt4Blocks(v, l, 32), l),
  },
  { options: { method: 'prune', sparsity: 0.5 } },
  { options: { method: 'nm' } },
  { options: { method: 'lowrank', energy: 0.9 } },
  { options: { method: 'fp16' } },
];

for (const opset of OPSETS) {
  for (const { options, roundTrip } of CASES) {
    const label = `${options.method}${options.int4Format ? ` (${options.int4Format})` : ''}`;
    test(`opset ${opset}: ${label} reaches every weight, runs, and passes the ONNX checker`, async () => {
      const path = await writeModel(folder(), `net${opset}.onnx`, network(opset, ORIGINAL));
      const report = await compressModel(path, {
        tensors: [],
        options,
        outPath: `${folder()}/net${opset}-${options.method}-${options.int4Format ?? ''}.onnx`,
      });
      const done = report.tensors.filter((t) => !t.skipped).map((t) => t.name);
      const skipped = report.tensors.filter((t) => t.skipped);
      for (const t of skipped) {
        // Only biases, Clip bounds and (for low rank) layers where no rank saves are left.
        assert.doesNotMatch(t.detail, /opset|DequantizeLinear/, `${t.name}: ${t.detail}`);
      }
      if (options.method === 'lowrank') assert.ok(done.includes('fc.w'), done.join());
      else assert.deepEqual(done.sort(), ['conv.w', 'fc.w', 'out.w']);
      assert.ok(report.verdict.validated, report.validation.join('; '));
      const written = onnx.ModelProto.decode(await readFile(report.output));
      const writtenOpset = Number(written.opsetImport!.find((o) => !o.domain)!.version);
      if (opset < 11) {
        // The old Clip keeps the opset: nothing was raised.
        assert.equal(writtenOpset, opset);
      }
      for (const g of [written.graph!])
        assert.equal(topologicalOrder(g, report.output, ''), undefined);
      const cosine = report.outputs[0]!.cosine;
      console.log(`opset ${opset} → ${writtenOpset}, ${label}: output cosine ${cosine.toFixed(6)}`);
      if (options.method === 'int8' || options.method === 'fp16')
        assert.ok(cosine > 0.999, `${cosine}`);
      if (roundTrip) {
        // The written nodes decode exactly the kernel's round trip.
        const got = await run(await readFile(report.output));
        const want = await reference(opset, roundTrip);
        const scale = Math.max(...want.map(Math.abs));
        assert.ok(maxAbsDiff(got, want) <= 1e-5 * scale, `${maxAbsDiff(got, want)} of ${scale}`);
      }
      const check = checkOnnxModel(report.output);
      if (writtenOpset <= check.newestOpset) assert.equal(check.error, null);
      else assert.ok(writtenOpset > 17, `the installed onnx knows opset ${check.newestOpset}`);
    });
  }
}

test('raising opset 9 rewrites Slice attributes into inputs (Slice no longer blocks a raise)', async () => {
  const g = graph({
    initializers: [tensor('w', 'float32', [4, 6], [...weights(24, 11)])],
    inputs: [valueInfo('x', 'float32', [1, 8])],
    outputs: [valueInfo('y', 'float32', [1, 6])],
    nodes: [
      node('Slice', ['x'], ['s'], {
        name: 'head',
        attributes: [
          attribute.ints('starts', [2]),
          attribute.ints('ends', [6]),
          attribute.ints('axes', [1]),
        ],
      }),
      node('MatMul', ['s', 'w'], ['y'], { name: 'fc' }),
    ],
  });
  const path = await writeModel(
    folder(),
    'slice9.onnx',
    model(g, { opsets: { '': 9 }, irVersion: 4 }),
  );
  const report = await compressModel(path, { tensors: [], options: { method: 'int8' } });
  assert.match(report.validation.join('; '), /opset 9 → 13.*1 nodes rewritten/);
  assert.ok(report.verdict.validated, report.validation.join('; '));
  assert.ok(report.outputs[0]!.cosine > 0.999);
  const written = onnx.ModelProto.decode(await readFile(report.output));
  const slice = written.graph!.node!.find((n) => n.opType === 'Slice')!;
  assert.equal(slice.input!.length, 4);
  assert.equal(slice.attribute!.length, 0);
  assert.equal(checkOnnxModel(report.output).error, null);
});

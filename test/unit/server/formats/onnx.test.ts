import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DType } from '../../../../src/shared/dtypes';
import { MAX_ONNX_PROTO_BYTES } from '../../../../src/shared/limits';
import { onnxFormat } from '../../../../src/server/formats/onnx';
import {
  ModelFileError,
  type OpenedModel,
  type TensorData,
  type TensorEntry,
} from '../../../../src/server/formats/types';
import {
  attribute,
  constantNode,
  constantNodeWith,
  encodeModel,
  encodeValues,
  ExternalDataFile,
  externalTensor,
  graph,
  ifNode,
  loopNode,
  makeTempFolder,
  model,
  node,
  rawTensor,
  sparseTensor,
  tensor,
  valueInfo,
  writeModel,
  type TensorValues,
} from '../../../support/onnxBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-onnx-');

let modelCounter = 0;

async function openGraph(
  g: Parameters<typeof model>[0],
  options: Parameters<typeof model>[1] = {},
): Promise<OpenedModel> {
  const path = await writeModel(folder(), `model-${++modelCounter}.onnx`, model(g, options));
  return onnxFormat.open(path);
}

async function bytesOf(data: TensorData): Promise<Uint8Array> {
  if (data.kind === 'memory') return data.load();
  const file = await readFile(data.path);
  assert.ok(data.offset + data.length <= file.length, 'file range lies within the file');
  return new Uint8Array(file.subarray(data.offset, data.offset + data.length));
}

function byName(opened: OpenedModel, name: string): TensorEntry {
  const found = opened.tensors.find((t) => t.info.name === name);
  assert.ok(found, `tensor ${name} is listed`);
  return found;
}

/** Asserts that `promise` fails with a ModelFileError naming `file` and matching `problem`. */
async function assertModelError(
  promise: Promise<unknown>,
  file: string,
  problem: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `expected a ModelFileError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.problem, problem);
    return true;
  });
}

describe('graph initializers', () => {
  test('raw_data initializers are file ranges at their offset in the model file', async () => {
    const weight = [1.5, -2, 3.25, 0, 7, -0.5];
    const opened = await openGraph(
      graph({
        initializers: [
          tensor('fc.weight', 'float32', [2, 3], weight),
          tensor('fc.bias', 'float32', [2], [0.1, 0.2]),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 3])],
        outputs: [valueInfo('y', 'float32', ['batch', 2])],
        nodes: [node('Gemm', ['x', 'fc.weight', 'fc.bias'], ['y'], { name: 'fc' })],
      }),
    );
    const entry = byName(opened, 'fc.weight');
    assert.equal(entry.data.kind, 'file');
    assert.equal(entry.data.kind === 'file' && entry.data.path, opened.path);
    assert.deepEqual(await bytesOf(entry.data), encodeValues('float32', weight));
    assert.equal(entry.info.byteOffset, entry.data.kind === 'file' ? entry.data.offset : -1);
    assert.deepEqual(entry.info.shape, [2, 3]);
    assert.equal(entry.info.parameterCount, 6);
    assert.equal(entry.info.byteLength, 24);
    assert.equal(entry.info.location, 'initializer');
    assert.equal(entry.info.graph, '');
    assert.equal(entry.info.file, opened.summary.fileName);
    assert.equal(entry.info.node, 'fc');
    assert.equal(entry.info.op, 'Gemm');
    assert.equal(byName(opened, 'fc.bias').info.node, 'fc');
    assert.deepEqual(
      opened.tensors.map((t) => t.info.index),
      opened.tensors.map((_, i) => i),
    );
  });

  /** Values per dtype, with the typed-field and raw encodings expected to give the same bytes. */
  const typedCases: readonly { dtype: DType; shape: number[]; values: TensorValues }[] = [
    { dtype: 'float32', shape: [3], values: [1, -2.5, 3e-8] },
    { dtype: 'float64', shape: [2], values: [Math.PI, -1e300] },
    { dtype: 'int32', shape: [3], values: [-2147483648, 0, 2147483647] },
    { dtype: 'int16', shape: [3], values: [-32768, 5, 32767] },
    { dtype: 'uint16', shape: [2], values: [0, 65535] },
    { dtype: 'int8', shape: [4], values: [-128, -1, 0, 127] },
    { dtype: 'uint8', shape: [3], values: [0, 128, 255] },
    { dtype: 'bool', shape: [3], values: [1, 0, 1] },
    { dtype: 'float16', shape: [3], values: [0x3c00, 0xc000, 0x7c00] },
    { dtype: 'bfloat16', shape: [2], values: [0x3f80, 0xbf80] },
    { dtype: 'float8_e4m3fn', shape: [2], values: [0x38, 0xb8] },
    { dtype: 'float8_e4m3fnuz', shape: [2], values: [0x40, 0x80] },
    { dtype: 'float8_e5m2', shape: [2], values: [0x3c, 0xfc] },
    { dtype: 'float8_e5m2fnuz', shape: [2], values: [0x40, 0x01] },
    { dtype: 'int4', shape: [5], values: [-8, 7, -1, 0, 3] },
    { dtype: 'uint4', shape: [3], values: [15, 0, 9] },
    { dtype: 'int64', shape: [3], values: [-(2n ** 63n), 1n, 2n ** 63n - 1n] },
    { dtype: 'uint32', shape: [2], values: [0, 0xffffffff] },
    { dtype: 'uint64', shape: [2], values: [0n, 2n ** 64n - 1n] },
    { dtype: 'complex64', shape: [2], values: [1, -1, 0.5, 2] },
    { dtype: 'complex128', shape: [1], values: [Math.E, -Math.PI] },
  ];

  for (const { dtype, shape, values } of typedCases) {
    test(`typed field of ${dtype} loads as dense little-endian bytes`, async () => {
      const opened = await openGraph(
        graph({ initializers: [tensor(`w_${dtype}`, dtype, shape, values, 'typed')] }),
      );
      const entry = byName(opened, `w_${dtype}`);
      assert.equal(entry.info.dtype, dtype);
      assert.equal(entry.data.kind, 'memory');
      const expected = encodeValues(dtype, values);
      assert.equal(entry.data.length, expected.length);
      assert.equal(entry.info.byteLength, expected.length);
      assert.equal(entry.info.byteOffset, null);
      assert.deepEqual(await bytesOf(entry.data), expected);
    });
  }

  test('typed fields give the bytes written by hand', async () => {
    const opened = await openGraph(
      graph({
        initializers: [
          tensor('half', 'float16', [2], [0x3c00, 0xc000], 'typed'),
          tensor('nibbles', 'int4', [3], [-8, 7, 1], 'typed'),
          tensor('long', 'int64', [1], [-2n], 'typed'),
        ],
      }),
    );
    assert.deepEqual([...(await bytesOf(byName(opened, 'half').data))], [0x00, 0x3c, 0x00, 0xc0]);
    assert.deepEqual([...(await bytesOf(byName(opened, 'nibbles').data))], [0x78, 0x01]);
    assert.deepEqual(
      [...(await bytesOf(byName(opened, 'long').data))],
      [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    );
    assert.equal(byName(opened, 'nibbles').info.parameterCount, 3);
  });

  test('string tensors are listed as non-numeric string dtype', async () => {
    const opened = await openGraph(
      graph({ initializers: [tensor('labels', 'string', [2], ['cat', 'dog'])] }),
    );
    const entry = byName(opened, 'labels');
    assert.equal(entry.info.dtype, 'string');
    assert.equal(entry.info.parameterCount, 2);
    assert.equal(new TextDecoder().decode(await bytesOf(entry.data)), 'catdog');
  });

  test('out-of-range values in int32_data fail when loaded', async () => {
    const bad = { ...tensor('w', 'int8', [2], [1, 2], 'typed'), int32Data: [1, 300] };
    const opened = await openGraph(graph({ initializers: [bad] }));
    const entry = byName(opened, 'w');
    assert.equal(entry.data.kind, 'memory');
    assert.throws(
      () => (entry.data.kind === 'memory' ? entry.data.load() : undefined),
      (error: unknown) =>
        error instanceof ModelFileError && /300 .* out of range/.test(error.problem),
    );
  });
});

describe('Constant nodes', () => {
  test('every value attribute kind becomes a tensor named after the output', async () => {
    const opened = await openGraph(
      graph({
        nodes: [
          constantNode('c_tensor', tensor('', 'float32', [2], [1, 2])),
          constantNodeWith('c_float', attribute.float('value_float', 0.5)),
          constantNodeWith('c_floats', attribute.floats('value_floats', [1, 2, 3])),
          constantNodeWith('c_int', attribute.int('value_int', -7)),
          constantNodeWith('c_ints', attribute.ints('value_ints', [4, 5])),
          constantNodeWith('c_string', attribute.string('value_string', 'hi')),
          constantNodeWith('c_strings', attribute.strings('value_strings', ['a', 'bc'])),
          constantNodeWith(
            'c_sparse',
            attribute.sparseTensor(
              'sparse_value',
              sparseTensor(
                tensor('', 'float32', [2], [5, 6]),
                tensor('', 'int64', [2], [1, 3]),
                [4],
              ),
            ),
          ),
        ],
      }),
    );
    const expectations: readonly [string, DType, number[], Uint8Array | null][] = [
      ['c_tensor', 'float32', [2], encodeValues('float32', [1, 2])],
      ['c_float', 'float32', [], encodeValues('float32', [0.5])],
      ['c_floats', 'float32', [3], encodeValues('float32', [1, 2, 3])],
      ['c_int', 'int64', [], encodeValues('int64', [-7])],
      ['c_ints', 'int64', [2], encodeValues('int64', [4, 5])],
      ['c_string', 'string', [], null],
      ['c_strings', 'string', [2], null],
      ['c_sparse', 'float32', [4], encodeValues('float32', [0, 5, 0, 6])],
    ];
    assert.equal(opened.tensors.length, expectations.length);
    for (const [name, dtype, shape, bytes] of expectations) {
      const entry = byName(opened, name);
      assert.equal(entry.info.dtype, dtype, name);
      assert.deepEqual(entry.info.shape, shape, name);
      assert.equal(entry.info.location, 'constant', name);
      assert.equal(entry.info.op, 'Constant', `${name} has no consumer, so its producer is named`);
      if (bytes) assert.deepEqual(await bytesOf(entry.data), bytes, name);
    }
    assert.equal(byName(opened, 'c_sparse').info.byteLength, 2 * 4 + 2 * 8, 'values plus indices');
  });
});

describe('subgraphs', () => {
  test('If and Loop subgraphs are searched recursively and named by path', async () => {
    const innerThen = graph({
      nodes: [
        constantNode('deep_w', tensor('', 'float32', [2], [1, 2])),
        node('Add', ['deep_w', 'x'], ['deep_out'], { name: 'deep_add' }),
      ],
      outputs: [valueInfo('deep_out', 'float32', [2])],
    });
    const innerElse = graph({
      nodes: [node('Identity', ['x'], ['deep_out2'])],
      outputs: [valueInfo('deep_out2', 'float32', [2])],
    });
    const thenBranch = graph({
      initializers: [tensor('then_w', 'float32', [2], [3, 4])],
      nodes: [
        node('Mul', ['x', 'then_w'], ['t_out'], { name: 'then_mul' }),
        ifNode('cond', ['nested_out'], innerThen, innerElse, 'inner_if'),
      ],
      outputs: [valueInfo('t_out', 'float32', [2])],
    });
    const elseBranch = graph({
      nodes: [node('Neg', ['x'], ['e_out'])],
      outputs: [valueInfo('e_out', 'float32', [2])],
    });
    const body = graph({
      nodes: [
        constantNode('loop_w', tensor('', 'float32', [1], [9])),
        node('Sub', ['v_in', 'loop_w'], ['v_out']),
      ],
    });
    const opened = await openGraph(
      graph({
        inputs: [valueInfo('x', 'float32', [2]), valueInfo('cond', 'bool', [])],
        nodes: [
          ifNode('cond', ['y'], thenBranch, elseBranch),
          loopNode(['', 'cond', 'x'], ['z'], body),
        ],
      }),
    );
    const thenW = byName(opened, 'then_w');
    assert.equal(thenW.info.graph, 'If_0/then_branch');
    assert.equal(thenW.info.node, 'then_mul');
    assert.equal(thenW.info.op, 'Mul');
    const deepW = byName(opened, 'deep_w');
    assert.equal(deepW.info.graph, 'If_0/then_branch/inner_if/then_branch');
    assert.equal(deepW.info.node, 'deep_add');
    const loopW = byName(opened, 'loop_w');
    assert.equal(loopW.info.graph, 'Loop_1/body');
    assert.equal(
      loopW.info.node,
      'Sub_1',
      'unnamed nodes are named opType_index within their graph',
    );
    assert.equal(loopW.info.op, 'Sub');
    assert.equal(opened.summary.nodeCount, 2 + 2 + 1 + 2 + 1 + 2);
    assert.deepEqual(opened.summary.opCounts, {
      If: 2,
      Loop: 1,
      Mul: 1,
      Neg: 1,
      Constant: 2,
      Add: 1,
      Identity: 1,
      Sub: 1,
    });
  });

  test('GRAPHS attributes are followed with an index in the path', async () => {
    const branch = (value: number): ReturnType<typeof graph> =>
      graph({
        initializers: [tensor(`w${value}`, 'float32', [1], [value])],
        nodes: [node('Relu', [`w${value}`], ['r'])],
      });
    const opened = await openGraph(
      graph({
        nodes: [
          node('Switch', [], [], {
            name: 'sw',
            domain: 'custom',
            attributes: [attribute.graphs('cases', [branch(1), branch(2)])],
          }),
        ],
      }),
    );
    assert.equal(byName(opened, 'w1').info.graph, 'sw/cases[0]');
    assert.equal(byName(opened, 'w2').info.graph, 'sw/cases[1]');
    assert.equal(byName(opened, 'w2').info.op, 'Relu');
  });

  test('subgraphs nested deeper than the limit are refused', async () => {
    let inner = graph({ nodes: [node('Relu', ['x'], ['y'])] });
    for (let depth = 0; depth < 70; depth++)
      inner = graph({ nodes: [ifNode('c', ['y'], inner, graph())] });
    const path = await writeModel(folder(), 'too-deep.onnx', model(inner));
    await assertModelError(onnxFormat.open(path), path, /nested more than 64 levels/);
  });
});

describe('attribution', () => {
  test('pass-through ops are followed to the computing op', async () => {
    const opened = await openGraph(
      graph({
        initializers: [
          tensor('conv.w', 'float32', [1, 1, 1, 1], [2]),
          tensor('q.w', 'int8', [2, 2], [1, 2, 3, 4]),
          tensor('q.scale', 'float32', [], [0.1]),
          tensor('shape', 'int64', [2], [1, 4]),
          tensor('orphan', 'float32', [1], [0]),
        ],
        nodes: [
          constantNode('c', tensor('', 'float32', [1, 1, 1, 1], [3])),
          node('Identity', ['c'], ['c_id']),
          node('Cast', ['c_id'], ['c_cast']),
          node('Conv', ['x', 'c_cast'], ['y1'], { name: 'conv_from_constant' }),
          node('Transpose', ['conv.w'], ['w_t']),
          node('Conv', ['x', 'w_t'], ['y2'], { name: 'conv_from_init' }),
          node('DequantizeLinear', ['q.w', 'q.scale'], ['q.deq']),
          node('MatMul', ['x2', 'q.deq'], ['y3'], { name: 'qmatmul' }),
          node('Reshape', ['y3', 'shape'], ['y4'], { name: 'reshape' }),
          node('Relu', ['y4'], ['y5']),
        ],
      }),
    );
    const layer = (name: string): [string, string | null] => [
      byName(opened, name).info.node,
      byName(opened, name).info.op,
    ];
    assert.deepEqual(layer('c'), ['conv_from_constant', 'Conv']);
    assert.deepEqual(layer('conv.w'), ['conv_from_init', 'Conv']);
    assert.deepEqual(layer('q.w'), ['qmatmul', 'MatMul']);
    assert.deepEqual(
      layer('q.scale'),
      ['qmatmul', 'MatMul'],
      'scales of DequantizeLinear belong to the weight',
    );
    assert.deepEqual(
      layer('shape'),
      ['reshape', 'Reshape'],
      "Reshape's shape input is not its data",
    );
    assert.deepEqual(layer('orphan'), ['', null]);
  });

  test('fused weights split into gates and joined again are attributed to the recurrent op', async () => {
    // As exporters write an LSTM's weights: sliced per gate, reordered with Concat.
    const opened = await openGraph(
      graph({
        initializers: [
          tensor('rnn.weight_ih', 'float32', [4, 1], [1, 2, 3, 4]),
          tensor('starts', 'int64', [1], [0]),
          tensor('ends', 'int64', [1], [2]),
          tensor('more_starts', 'int64', [1], [2]),
          tensor('more_ends', 'int64', [1], [4]),
        ],
        nodes: [
          node('Slice', ['rnn.weight_ih', 'starts', 'ends'], ['gates_a'], { name: 'slice_a' }),
          node('Slice', ['rnn.weight_ih', 'more_starts', 'more_ends'], ['gates_b']),
          node('Concat', ['gates_b', 'gates_a'], ['reordered'], {
            attributes: [attribute.int('axis', 0)],
          }),
          node('Unsqueeze', ['reordered'], ['w']),
          node('LSTM', ['x', 'w'], ['y'], { name: 'rnn' }),
        ],
      }),
    );
    assert.equal(byName(opened, 'rnn.weight_ih').info.node, 'rnn');
    assert.equal(byName(opened, 'rnn.weight_ih').info.op, 'LSTM');
    assert.equal(byName(opened, 'starts').info.op, 'Slice', "a Slice's bounds are not its data");
  });

  test('outer-scope weights are attributed to the subgraph node that reads them; inner names shadow outer ones', async () => {
    const thenBranch = graph({
      nodes: [node('MatMul', ['x', 'outer.w'], ['t'], { name: 'inner_matmul' })],
    });
    const elseBranch = graph({
      initializers: [tensor('shadowed', 'float32', [1], [1])],
      nodes: [node('Gemm', ['x', 'shadowed'], ['e'], { name: 'inner_gemm' })],
    });
    const opened = await openGraph(
      graph({
        initializers: [
          tensor('outer.w', 'float32', [1], [1]),
          tensor('shadowed', 'float32', [1], [2]),
        ],
        nodes: [
          ifNode('cond', ['y'], thenBranch, elseBranch, 'branch'),
          node('Add', ['y', 'shadowed'], ['z'], { name: 'outer_add' }),
        ],
      }),
    );
    assert.equal(byName(opened, 'outer.w').info.node, 'inner_matmul');
    const shadowed = opened.tensors.filter((t) => t.info.name === 'shadowed');
    assert.deepEqual(
      shadowed.map((t) => [t.info.graph, t.info.node]),
      [
        ['', 'outer_add'],
        ['branch/else_branch', 'inner_gemm'],
      ],
    );
  });
});

describe('sparse initializers', () => {
  test('coordinate and linear indices densify to the same bytes', async () => {
    const values = tensor('sp', 'float32', [3], [1, 2, 3]);
    const opened = await openGraph(
      graph({
        sparseInitializers: [
          sparseTensor(values, tensor('', 'int64', [3, 2], [0, 1, 1, 0, 2, 2]), [3, 3]),
          sparseTensor(
            { ...values, name: 'sp_linear' },
            tensor('', 'int64', [3], [1, 3, 8]),
            [3, 3],
          ),
        ],
        nodes: [node('MatMul', ['x', 'sp'], ['y'], { name: 'sparse_mm' })],
      }),
    );
    const expected = encodeValues('float32', [0, 1, 0, 2, 0, 0, 0, 0, 3]);
    for (const name of ['sp', 'sp_linear']) {
      const entry = byName(opened, name);
      assert.equal(entry.info.location, 'sparse-initializer');
      assert.deepEqual(entry.info.shape, [3, 3]);
      assert.equal(entry.info.parameterCount, 9);
      assert.equal(entry.info.byteLength, 12 + (name === 'sp' ? 48 : 24));
      assert.equal(entry.data.length, 36);
      assert.deepEqual(await bytesOf(entry.data), expected);
    }
    assert.equal(byName(opened, 'sp').info.node, 'sparse_mm');
  });

  test('an index outside the shape fails when densified', async () => {
    const opened = await openGraph(
      graph({
        sparseInitializers: [
          sparseTensor(
            tensor('sp', 'float32', [1], [1]),
            tensor('', 'int64', [1, 2], [0, 5]),
            [2, 2],
          ),
        ],
      }),
    );
    const { data } = byName(opened, 'sp');
    assert.equal(data.kind, 'memory');
    assert.throws(
      () => (data.kind === 'memory' ? data.load() : undefined),
      (error: unknown) =>
        error instanceof ModelFileError &&
        /sparse index 5 .* outside the bound 2/.test(error.problem),
    );
  });

  test('indices of the wrong shape are refused at open', async () => {
    const path = await writeModel(
      folder(),
      'sparse-bad.onnx',
      model(
        graph({
          sparseInitializers: [
            sparseTensor(
              tensor('sp', 'float32', [2], [1, 2]),
              tensor('', 'int64', [3], [0, 1, 2]),
              [4],
            ),
          ],
        }),
      ),
    );
    await assertModelError(
      onnxFormat.open(path),
      path,
      /tensor 'sp'.*sparse indices of shape \[3\]/,
    );
  });
});

describe('external data', () => {
  test('tensors in files beside the model are file ranges of those files', async () => {
    const { folder: modelFolder, remove } = await makeTempFolder();
    try {
      await mkdir(join(modelFolder, 'weights'));
      const first = new ExternalDataFile('model.onnx.data');
      const second = new ExternalDataFile('weights/extra.bin');
      const w1 = first.add('w1', 'float32', [2, 2], [1, 2, 3, 4]);
      const w2 = first.add('w2', 'int64', [3], [7n, 8n, 9n]);
      const w3 = second.add('w3', 'float16', [1], [0x3c00]);
      const path = await writeModel(
        modelFolder,
        'model.onnx',
        model(
          graph({
            initializers: [w1, w2],
            nodes: [constantNode('w3', w3), node('MatMul', ['x', 'w1'], ['y'], { name: 'mm' })],
          }),
        ),
        [first, second],
      );
      const opened = await onnxFormat.open(path);
      const entry = byName(opened, 'w1');
      assert.equal(entry.info.location, 'external');
      assert.equal(entry.info.file, 'model.onnx.data');
      assert.equal(entry.info.node, 'mm');
      assert.deepEqual(entry.data, {
        kind: 'file',
        path: join(modelFolder, 'model.onnx.data'),
        offset: 0,
        length: 16,
      });
      const w2Entry = byName(opened, 'w2');
      assert.equal(w2Entry.info.byteOffset, 16);
      assert.deepEqual(await bytesOf(w2Entry.data), encodeValues('int64', [7, 8, 9]));
      const w3Entry = byName(opened, 'w3');
      assert.equal(w3Entry.info.file, 'weights/extra.bin');
      assert.equal(w3Entry.info.location, 'external');
      assert.deepEqual(await bytesOf(w3Entry.data), new Uint8Array([0x00, 0x3c]));
      const summary = opened.summary;
      assert.deepEqual(summary.dataFiles, ['model.onnx.data', 'weights/extra.bin']);
      assert.equal(
        summary.totalBytes,
        summary.fileBytes + first.bytes().length + second.bytes().length,
      );
    } finally {
      await remove();
    }
  });

  test('a missing length is taken from the shape; offsets default to 0', async () => {
    const { folder: modelFolder, remove } = await makeTempFolder();
    try {
      await writeFile(join(modelFolder, 'w.bin'), encodeValues('float32', [5, 6]));
      const path = await writeModel(
        modelFolder,
        'model.onnx',
        model(
          graph({ initializers: [externalTensor('w', 'float32', [2], { location: 'w.bin' })] }),
        ),
      );
      const opened = await onnxFormat.open(path);
      assert.deepEqual(await bytesOf(byName(opened, 'w').data), encodeValues('float32', [5, 6]));
    } finally {
      await remove();
    }
  });

  /** A model in its own folder whose tensor `w` [4] float32 reads `entries` from external data. */
  async function externalModel(
    entries: Parameters<typeof externalTensor>[3],
    prepare: (modelFolder: string) => Promise<void> = async () => undefined,
  ): Promise<{ path: string; modelFolder: string; remove: () => Promise<void> }> {
    const { folder: outer, remove } = await makeTempFolder();
    const modelFolder = join(outer, 'model');
    await mkdir(modelFolder);
    await writeFile(join(outer, 'secret.bin'), new Uint8Array(64));
    await prepare(modelFolder);
    const path = await writeModel(
      modelFolder,
      'model.onnx',
      model(graph({ initializers: [externalTensor('w', 'float32', [4], entries)] })),
    );
    return { path, modelFolder, remove };
  }

  const refusals: readonly [string, Parameters<typeof externalTensor>[3], RegExp][] = [
    [
      'a ../ escape',
      { location: '../secret.bin' },
      /'\.\.\/secret\.bin' points outside the model's folder/,
    ],
    [
      'a nested ../ escape',
      { location: 'sub/../../secret.bin' },
      /points outside the model's folder/,
    ],
    ['an absolute path', { location: '/etc/passwd' }, /'\/etc\/passwd' is an absolute path/],
    ['a Windows absolute path', { location: 'C:\\weights.bin' }, /is an absolute path/],
    [
      'a missing file',
      { location: 'missing.bin' },
      /'missing\.bin' names a file that does not exist/,
    ],
    [
      'a length that does not fit the shape',
      { location: 'data.bin', length: 12 },
      /external data length 12 does not match .* \(16 bytes\)/,
    ],
    [
      'a malformed offset',
      { location: 'data.bin', offset: -1 },
      /offset '-1' is not a valid byte count/,
    ],
  ];
  for (const [what, entries, problem] of refusals) {
    test(`external data with ${what} is refused`, async () => {
      const { path, remove } = await externalModel(entries, (dir) =>
        writeFile(join(dir, 'data.bin'), new Uint8Array(16)),
      );
      try {
        await assertModelError(onnxFormat.open(path), path, problem);
      } finally {
        await remove();
      }
    });
  }

  test('a symbolic link that leads outside the folder is refused', async () => {
    const { path, remove } = await externalModel({ location: 'link.bin' }, (dir) =>
      symlink(join(dir, '..', 'secret.bin'), join(dir, 'link.bin')),
    );
    try {
      await assertModelError(
        onnxFormat.open(path),
        path,
        /'link\.bin' leads \(through a symbolic link\) outside the model's folder/,
      );
    } finally {
      await remove();
    }
  });

  test('a symbolic link inside the folder is followed', async () => {
    const { path, remove } = await externalModel({ location: 'link.bin' }, async (dir) => {
      await writeFile(join(dir, 'real.bin'), encodeValues('float32', [1, 2, 3, 4]));
      await symlink('real.bin', join(dir, 'link.bin'));
    });
    try {
      const opened = await onnxFormat.open(path);
      assert.deepEqual(
        await bytesOf(byName(opened, 'w').data),
        encodeValues('float32', [1, 2, 3, 4]),
      );
    } finally {
      await remove();
    }
  });

  for (const [what, entries] of [
    ['an offset beyond the end', { location: 'data.bin', offset: 32 }],
    ['a range running past the end', { location: 'data.bin', offset: 8, length: 16 }],
  ] as const) {
    test(`external data with ${what} of the file is refused, naming the data file`, async () => {
      const { path, modelFolder, remove } = await externalModel(entries, (dir) =>
        writeFile(join(dir, 'data.bin'), new Uint8Array(16)),
      );
      try {
        await assertModelError(
          onnxFormat.open(path),
          join(modelFolder, 'data.bin'),
          /tensor 'w' needs bytes \d+–\d+ .* only 16 bytes/,
        );
      } finally {
        await remove();
      }
    });
  }
});

describe('summary', () => {
  test('counts, dtypes, inputs, outputs and metadata', async () => {
    const opened = await openGraph(
      graph({
        name: 'main',
        initializers: [
          tensor('w', 'float32', [2, 2], [1, 2, 3, 4]),
          tensor('b', 'float16', [2], [0, 0]),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 2]), valueInfo('w', 'float32', [2, 2])],
        outputs: [valueInfo('y', 'float32', ['batch', null])],
        nodes: [
          constantNode('k', tensor('', 'int64', [3], [1, 2, 3])),
          node('MatMul', ['x', 'w'], ['h']),
          node('Add', ['h', 'b'], ['y']),
        ],
      }),
      {
        irVersion: 9,
        opsets: { '': 18, 'com.microsoft': 1 },
        producerName: 'pytorch',
        producerVersion: '2.3.0',
        domain: 'org.example',
        modelVersion: 3,
        docString: 'x'.repeat(5000),
        metadata: { license: 'MIT', author: 'tests' },
      },
    );
    const s = opened.summary;
    assert.equal(s.format, 'onnx');
    assert.equal(s.fileName, `model-${modelCounter}.onnx`);
    assert.equal(s.fileBytes, (await readFile(opened.path)).length);
    assert.equal(s.totalBytes, s.fileBytes);
    assert.deepEqual(s.dataFiles, []);
    assert.equal(s.tensorCount, 3);
    assert.equal(s.parameterCount, 4 + 2 + 3);
    assert.deepEqual(s.parametersByDType, { float32: 4, float16: 2, int64: 3 });
    assert.deepEqual(s.bytesByDType, { float32: 16, float16: 4, int64: 24 });
    assert.deepEqual(s.opCounts, { Constant: 1, MatMul: 1, Add: 1 });
    assert.equal(s.nodeCount, 3);
    assert.deepEqual(s.inputs, [
      { name: 'x', dtype: 'float32', shape: ['batch', 2] },
      { name: 'w', dtype: 'float32', shape: [2, 2] },
    ]);
    assert.deepEqual(s.outputs, [{ name: 'y', dtype: 'float32', shape: ['batch', null] }]);
    const metadata = new Map(s.metadata.map((m) => [m.key, m.value]));
    assert.equal(metadata.get('IR version'), '9');
    assert.equal(metadata.get('opset ai.onnx'), '18');
    assert.equal(metadata.get('opset com.microsoft'), '1');
    assert.equal(metadata.get('producer'), 'pytorch 2.3.0');
    assert.equal(metadata.get('domain'), 'org.example');
    assert.equal(metadata.get('model version'), '3');
    assert.equal(metadata.get('license'), 'MIT');
    assert.equal(metadata.get('author'), 'tests');
    assert.ok(metadata.get('doc string')!.length < 1100, 'the doc string is truncated');
    assert.deepEqual(s.warnings, []);
    assert.equal(opened.tensors.find((t) => t.info.name === 'w')?.info.node, 'MatMul_1');
  });

  test('IR version 3 graphs list initializers as inputs: they are left out', async () => {
    const opened = await openGraph(
      graph({
        initializers: [tensor('w', 'float32', [1], [1])],
        inputs: [valueInfo('x', 'float32', [1]), valueInfo('w', 'float32', [1])],
        nodes: [node('Mul', ['x', 'w'], ['y'])],
      }),
      { irVersion: 3, opsets: { '': 8 } },
    );
    assert.deepEqual(
      opened.summary.inputs.map((i) => i.name),
      ['x'],
    );
  });

  test('duplicate tensor names are reported as warnings', async () => {
    const opened = await openGraph(
      graph({
        initializers: [tensor('w', 'float32', [1], [1]), tensor('w', 'float32', [1], [2])],
        nodes: [constantNode('w', tensor('', 'float32', [1], [3]))],
      }),
    );
    assert.equal(opened.tensors.length, 3);
    assert.equal(opened.summary.warnings.length, 2);
    assert.match(
      opened.summary.warnings[0]!,
      /tensor name 'w' is defined more than once in graph 'main'/,
    );
  });
});

describe('match', () => {
  test('recognises encoded models by their first fields', () => {
    assert.equal(onnxFormat.match(encodeModel(model(graph()))), true);
    const withoutIrVersion = encodeModel({
      graph: graph({ initializers: [tensor('w', 'float32', [1], [1])] }),
    });
    assert.equal(onnxFormat.match(withoutIrVersion), true);
    assert.equal(
      onnxFormat.match(encodeModel(model(graph())).subarray(0, 3)),
      true,
      'a short head is still plausible',
    );
  });

  test('refuses bytes that are not a ModelProto', () => {
    assert.equal(onnxFormat.match(new Uint8Array(0)), false);
    const safetensorsHead = new Uint8Array(16);
    new DataView(safetensorsHead.buffer).setBigUint64(0, 120n, true);
    safetensorsHead.set(new TextEncoder().encode('{"w":'), 8);
    assert.equal(onnxFormat.match(safetensorsHead), false);
    assert.equal(onnxFormat.match(new TextEncoder().encode('PK\u0003\u0004 zip archive')), false);
    assert.equal(
      onnxFormat.match(new Uint8Array([0x08, 0x00, 0x12, 0x01, 0x41])),
      false,
      'ir_version 0',
    );
    assert.equal(
      onnxFormat.match(new Uint8Array([0x08, 0x08, 0x10, 0x01])),
      false,
      'producer_name as a varint is no ModelProto field',
    );
  });
});

describe('malformed files', () => {
  async function writeBytes(name: string, bytes: Uint8Array): Promise<string> {
    const path = join(folder(), name);
    await writeFile(path, bytes);
    return path;
  }

  const valid = encodeModel(
    model(
      graph({
        initializers: [tensor('w', 'float32', [64], new Array<number>(64).fill(1))],
        nodes: [node('Relu', ['w'], ['y'])],
      }),
    ),
  );

  test('a truncated file', async () => {
    const path = await writeBytes('truncated.onnx', valid.subarray(0, valid.length - 100));
    await assertModelError(
      onnxFormat.open(path),
      path,
      /not a valid ONNX model: the protobuf is truncated or corrupt/,
    );
  });

  test('random bytes', async () => {
    let seed = 12345;
    const random = new Uint8Array(4096).map(() => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    });
    const path = await writeBytes('random.onnx', random);
    await assertModelError(onnxFormat.open(path), path, /not a valid ONNX model/);
  });

  test('an empty file', async () => {
    const path = await writeBytes('empty.onnx', new Uint8Array(0));
    await assertModelError(
      onnxFormat.open(path),
      path,
      /not a valid ONNX model: the file is empty/,
    );
  });

  test('a file larger than protobuf allows is refused before it is read', async () => {
    const path = await writeBytes('oversized.onnx', valid);
    await truncate(path, MAX_ONNX_PROTO_BYTES + 1);
    await assertModelError(
      onnxFormat.open(path),
      path,
      /is 2147483648 bytes, more than the 2147483647/,
    );
    await truncate(path, 0);
  });

  test('a model without a graph', async () => {
    const path = await writeBytes(
      'no-graph.onnx',
      encodeModel({ irVersion: 8, producerName: 'x' }),
    );
    await assertModelError(onnxFormat.open(path), path, /it has no graph/);
  });

  test('a missing file', async () => {
    const path = join(folder(), 'does-not-exist.onnx');
    await assertModelError(onnxFormat.open(path), path, /cannot be read/);
  });

  const tensorProblems: readonly [string, ReturnType<typeof tensor>, RegExp][] = [
    [
      'huge declared dims',
      rawTensor('w', 'float32', [2n ** 40n, 2n ** 40n], new Uint8Array(4)),
      /tensor 'w': shape \[1099511627776, 1099511627776\] has more than/,
    ],
    [
      'a dim beyond 2^53',
      rawTensor('w', 'float32', [2n ** 60n], new Uint8Array(4)),
      /tensor 'w': dimension 1152921504606846976 is not a valid size/,
    ],
    [
      'a negative dim',
      rawTensor('w', 'float32', [-3], new Uint8Array(4)),
      /tensor 'w': dimension -3 is not a valid size/,
    ],
    [
      'too many dims',
      rawTensor('w', 'float32', new Array<number>(40).fill(1), new Uint8Array(4)),
      /tensor 'w': rank 40 is more than the 32/,
    ],
    [
      'a raw_data length mismatch',
      rawTensor('w', 'float32', [3], new Uint8Array(10)),
      /tensor 'w': raw_data holds 10 bytes but shape \[3\] of float32 needs 12 bytes/,
    ],
    [
      'an unknown data type',
      rawTensor('w', 99, [1], new Uint8Array(4)),
      /tensor 'w': data type unknown \(99\) is not supported/,
    ],
    [
      'a data type newer than LayerLens',
      rawTensor('w', 23, [2], new Uint8Array(1)),
      /data type FLOAT4E2M1 \(23\) is not supported/,
    ],
    [
      'no data type',
      rawTensor('w', 0, [1], new Uint8Array(4)),
      /data type UNDEFINED \(0\) is not supported/,
    ],
    [
      'no values at all',
      { name: 'w', dataType: 1, dims: [2] },
      /tensor 'w': it has no values \(shape \[2\] needs 2\)/,
    ],
    [
      'a typed field of the wrong length',
      { name: 'w', dataType: 1, dims: [3], floatData: [1, 2] },
      /float_data holds 2 values but shape \[3\] of float32 needs 3/,
    ],
    [
      'values in the wrong typed field',
      { name: 'w', dataType: 1, dims: [1], int64Data: [1] },
      /float32 values cannot be stored in int64_data/,
    ],
    [
      'external data without location',
      { name: 'w', dataType: 1, dims: [1], dataLocation: 1, externalData: [] },
      /names no location/,
    ],
  ];
  for (const [what, proto, problem] of tensorProblems) {
    test(`a tensor with ${what}`, async () => {
      const path = await writeBytes(
        `bad-${what.replace(/\W+/g, '-')}.onnx`,
        encodeModel(model(graph({ initializers: [proto] }))),
      );
      await assertModelError(onnxFormat.open(path), path, problem);
    });
  }

  test('a bad tensor inside a subgraph names its graph', async () => {
    const inner = graph({
      nodes: [constantNode('c', rawTensor('', 'float32', [2], new Uint8Array(3)))],
    });
    const path = await writeBytes(
      'bad-subgraph.onnx',
      encodeModel(model(graph({ nodes: [ifNode('cond', [], inner, graph(), 'gate')] }))),
    );
    await assertModelError(
      onnxFormat.open(path),
      path,
      /tensor 'c' in graph 'gate\/then_branch': raw_data holds 3 bytes/,
    );
  });
});

/**
 * The GGUF reader on files written by test/support/gguf_fixtures.py (an independent writer
 * from the specification): versions 2 and 3, metadata of every value type, tensor infos,
 * alignment, split files, and the values of every decoded ggml type read back through the
 * statistics workers' path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeValues } from '../../../../src/server/analysis/decode';
import { dequantizedBytes } from '../../../../src/server/analysis/ggmlValues';
import { fileTensorBytes } from '../../../../src/server/analysis/stats';
import { ggufFormat } from '../../../../src/server/formats/gguf';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError, type OpenedModel } from '../../../../src/server/formats/types';
import { valueBytesOf } from '../../../../src/server/jobs/tensorSource';
import { workerSourceOf } from '../../../../src/server/jobs/computeStats';
import { float32Of, writeGgufFixtures, type GgufFixtures } from '../../../support/ggufFixtures';

let fixtures: GgufFixtures;
before(() => {
  fixtures = writeGgufFixtures();
});
after(() => fixtures.remove());

const DECODED_TYPES = [
  'Q8_0',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'IQ4_NL',
  'IQ4_XS',
  'MXFP4',
];

/** Every value the tensor's bytes give through the workers' source (dequantized or plain). */
async function valuesOf(
  model: OpenedModel,
  name: string,
  chunkBytes = 1 << 20,
): Promise<Float32Array> {
  const entry = model.tensors.find((candidate) => candidate.info.name === name);
  assert.ok(entry, `tensor ${name}`);
  const source = valueBytesOf(workerSourceOf(entry.data)!, entry.data.blocks);
  const bytes = new Uint8Array(source.byteLength);
  let filled = 0;
  await source.chunks(chunkBytes, (chunk) => {
    bytes.set(chunk, filled);
    filled += chunk.byteLength;
  });
  assert.equal(filled, source.byteLength);
  const { dtype } = entry.info;
  assert.ok(dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16');
  return Float32Array.from(decodeValues(dtype, bytes, entry.info.parameterCount));
}

function assertSameValues(actual: Float32Array, expected: readonly number[], what: string): void {
  const want = float32Of(expected);
  assert.equal(actual.length, want.length, `${what}: count`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(actual[i], want[i])) {
      assert.fail(`${what}: value ${i} is ${actual[i]}, the specification gives ${want[i]}`);
    }
  }
}

for (const version of [2, 3]) {
  describe(`GGUF version ${version}`, () => {
    const file = `types-v${version}.gguf`;
    let model: OpenedModel;
    before(async () => {
      model = await openModelFile(fixtures.path(file));
    });

    test('the summary: format, tensors, readable metadata with arrays summarised', () => {
      const { summary } = model;
      assert.equal(summary.format, 'gguf');
      assert.equal(summary.tensorCount, 17);
      const { fileSize, ...capabilities } = summary.capabilities!;
      assert.deepEqual(capabilities, {
        compress: ['ggml'],
        run: false,
        sensitivity: true,
        graph: false,
        storage: {},
      });
      // What re-typing does to the size depends on the type the user picks.
      assert.equal(fileSize?.ggml?.kind, 'depends');
      const meta = new Map(summary.metadata.map((entry) => [entry.key, entry.value]));
      assert.equal(meta.get('GGUF version'), String(version));
      assert.equal(meta.get('tensor data alignment'), '32');
      assert.equal(meta.get('general.architecture'), '"llama"');
      assert.equal(meta.get('llama.context_length'), '4096');
      assert.equal(meta.get('test.i8'), '-100');
      assert.equal(meta.get('test.u64'), String(2 ** 40));
      assert.equal(meta.get('test.i64'), String(-(2 ** 40)));
      assert.equal(meta.get('test.f32'), '0.5');
      assert.equal(meta.get('test.bool'), 'true');
      const tokens = meta.get('tokenizer.ggml.tokens')!;
      assert.match(tokens, /^\[string × 1000\] "tok0", "tok1", "tok2", "tok3", "tok4", …$/);
      assert.match(meta.get('tokenizer.ggml.scores')!, /^\[float32 × 1000\] 0, -1, -2, -3, -4, …$/);
      assert.equal(meta.get('test.nested'), '[array × 2] [int32 × 2] 1, 2, [int32 × 1] 3');
      const template = meta.get('tokenizer.chat_template')!;
      assert.ok(template.length < 260, `a long string is cut: ${template.length} characters`);
      assert.match(template, /… \(580 characters\)$/);
    });

    test('bytes and parameters by type count each tensor as stored: ggml block types by name', () => {
      const { summary } = model;
      const q4k = model.tensors.find((entry) => entry.info.encoding?.scheme === 'Q4_K')!.info;
      assert.equal(summary.bytesByDType.Q4_K, q4k.byteLength);
      assert.equal(summary.parametersByDType.Q4_K, q4k.parameterCount);
      const plainF32 = model.tensors
        .filter((entry) => entry.info.dtype === 'float32' && !entry.info.encoding)
        .reduce((sum, entry) => sum + entry.info.byteLength, 0);
      assert.equal(summary.bytesByDType.float32 ?? 0, plainF32);
      const total = Object.values(summary.bytesByDType).reduce((a: number, b) => a + (b ?? 0), 0);
      assert.equal(
        total,
        model.tensors.reduce((sum, entry) => sum + entry.info.byteLength, 0),
      );
    });

    test('tensor infos: PyTorch-order shapes, ne in fileShape, layers, encodings', () => {
      const byName = new Map(model.tensors.map((entry) => [entry.info.name, entry.info]));
      const q4k = byName.get('blk.7.ffn_q4_k.weight')!;
      assert.deepEqual(q4k.shape, [2, 256]);
      assert.deepEqual(q4k.fileShape, [256, 2]);
      assert.equal(q4k.node, 'blk.7.ffn_q4_k');
      assert.equal(q4k.dtype, 'float32');
      assert.equal(q4k.location, 'gguf');
      assert.equal(q4k.byteLength, 2 * 144);
      assert.deepEqual(q4k.encoding, {
        scheme: 'Q4_K',
        bitsPerWeight: 4.5,
        granularity: 'block',
        blockSize: 256,
        storedType: 'Q4_K',
        notDecoded: null,
        countsCodes: false,
        blockScales: true,
      });
      assert.equal(byName.get('blk.0.ffn_q8_0.weight')!.encoding!.bitsPerWeight, 8.5);
      assert.equal(byName.get('blk.12.ffn_mxfp4.weight')!.encoding!.bitsPerWeight, 4.25);
      assert.equal(byName.get('f16_norm.weight')!.dtype, 'float16');
      assert.equal(byName.get('bf16_norm.weight')!.dtype, 'bfloat16');
      assert.equal(byName.get('f32_norm.weight')!.encoding, undefined);
      const listed = byName.get('blk.99.ffn_iq2_xxs.weight')!;
      assert.equal(listed.encoding!.scheme, 'IQ2_XXS');
      assert.match(listed.encoding!.notDecoded!, /values not decoded.*IQ2_XXS/);
      for (const { info, data } of model.tensors) {
        assert.equal(data.kind, 'file');
        if (data.kind === 'file') assert.equal(data.offset % 32, 0, `${info.name} is aligned`);
      }
    });

    for (const type of DECODED_TYPES) {
      test(`${type}: the dequantized values are those the specification gives`, async () => {
        const name = model.tensors.find((entry) => entry.info.encoding?.scheme === type)!.info.name;
        assertSameValues(await valuesOf(model, name), fixtures.expected[file]![name]!, type);
      });
    }

    test('F32, F16 and BF16 tensors read as plain values', async () => {
      for (const name of ['f32_norm.weight', 'f16_norm.weight', 'bf16_norm.weight']) {
        assertSameValues(await valuesOf(model, name), fixtures.expected[file]![name]!, name);
      }
    });

    test('a type that is not decoded is refused with its reason, not misread', () => {
      const entry = model.tensors.find(
        (candidate) => candidate.info.encoding?.scheme === 'IQ2_XXS',
      )!;
      assert.throws(
        () => valueBytesOf(workerSourceOf(entry.data)!, entry.data.blocks),
        /values not decoded.*IQ2_XXS/,
      );
    });
  });
}

test('dequantization streams block by block: chunks that split blocks give the same values', async () => {
  const model = await openModelFile(fixtures.path('types-v3.gguf'));
  for (const type of ['Q3_K', 'Q5_0', 'MXFP4']) {
    const entry = model.tensors.find((candidate) => candidate.info.encoding?.scheme === type)!;
    const { data } = entry;
    assert.equal(data.kind, 'file');
    if (data.kind !== 'file') continue;
    const source = dequantizedBytes(
      fileTensorBytes(data.path, data.offset, data.length),
      data.blocks!,
    );
    // Chunks of 4 bytes of output ask for one block at a time; the stored side splits none.
    // Then a stored source whose chunks end mid-block (7 bytes) is carried over.
    const odd = {
      byteLength: data.length,
      chunks: (_: number, visit: (chunk: Uint8Array) => void) =>
        fileTensorBytes(data.path, data.offset, data.length).chunks(7, visit),
    };
    for (const bytes of [source, dequantizedBytes(odd, data.blocks!)]) {
      const out = new Uint8Array(bytes.byteLength);
      let filled = 0;
      await bytes.chunks(4, (chunk) => {
        out.set(chunk, filled);
        filled += chunk.byteLength;
      });
      assertSameValues(
        new Float32Array(out.buffer),
        fixtures.expected['types-v3.gguf']![entry.info.name]!,
        type,
      );
    }
  }
});

test('general.alignment 64: offsets and values follow it', async () => {
  const model = await openModelFile(fixtures.path('aligned64.gguf'));
  const meta = new Map(model.summary.metadata.map((entry) => [entry.key, entry.value]));
  assert.equal(meta.get('tensor data alignment'), '64');
  for (const { info, data } of model.tensors) {
    if (data.kind === 'file') assert.equal(data.offset % 64, 0);
    assertSameValues(
      await valuesOf(model, info.name),
      fixtures.expected['aligned64.gguf']![info.name]!,
      info.name,
    );
  }
});

test('a split model opens from any of its files, with every file’s tensors', async () => {
  const expected = fixtures.expected['split-00001-of-00003.gguf']!;
  for (const file of ['split-00001-of-00003.gguf', 'split-00003-of-00003.gguf']) {
    const model = await openModelFile(fixtures.path(file));
    assert.equal(model.summary.format, 'gguf');
    assert.deepEqual(
      model.tensors.map((entry) => entry.info.name),
      Object.keys(expected),
    );
    assert.deepEqual(
      model.tensors.map((entry) => entry.info.file),
      ['split-00001-of-00003.gguf', 'split-00002-of-00003.gguf', 'split-00003-of-00003.gguf'],
    );
    assert.equal(model.summary.dataFiles.length, 2);
    assert.ok(!model.summary.dataFiles.includes(file));
    const meta = new Map(model.summary.metadata.map((entry) => [entry.key, entry.value]));
    assert.equal(meta.get('general.architecture'), '"llama"', 'metadata of the first file');
    assert.equal(meta.get('split files'), '3');
    for (const name of Object.keys(expected)) {
      assertSameValues(await valuesOf(model, name), expected[name]!, name);
    }
  }
});

test('a split model with a file missing names the missing file', async () => {
  await assert.rejects(
    ggufFormat.open(fixtures.path('lonely-00001-of-00002.gguf')),
    (error: unknown) => {
      assert.ok(error instanceof ModelFileError);
      assert.equal(error.file, fixtures.path('lonely-00002-of-00002.gguf'));
      assert.match(error.problem, /split model .* \(2 of 2\) is missing/);
      return true;
    },
  );
});

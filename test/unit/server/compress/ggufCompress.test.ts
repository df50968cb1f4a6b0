/**
 * The ggml method on a GGUF through the compression entry point (what the editor's
 * Compress… and the right-click menu run): the chosen F32/F16/BF16 tensors re-typed in a
 * new GGUF, read back by LayerLens's reader with the values roundTripGgml gives.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import { compressModel } from '../../../../src/server/compress';
import { roundTripGgml } from '../../../../src/server/compress/ggml';
import { openModelFile } from '../../../../src/server/formats/registry';
import type { OpenedModel } from '../../../../src/server/formats/types';
import { writeGgufLlm, writeImatrixDat } from '../../../support/ggufFixtures';
import { makeTempDir } from '../../../support/safetensorsBuilder';

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function valuesOf(model: OpenedModel, name: string): Promise<Float32Array> {
  const entry = model.tensors.find((candidate) => candidate.info.name === name)!;
  return Float32Array.from(await loadTensorValues(entry, tensorMatrixShape(entry, true)));
}

/** The stored bytes of tensor `name`. */
function bytesOf(model: OpenedModel, name: string): Buffer {
  const { data } = model.tensors.find((candidate) => candidate.info.name === name)!;
  assert.equal(data.kind, 'file');
  return readFileSync(data.path).subarray(data.offset, data.offset + data.length);
}

describe('compressing a GGUF with the ggml method', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let source: string;
  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-gguf-compress-'));
    source = join(dir, 'model.gguf');
    writeGgufLlm(source, { layers: 1, width: 256, ff: 512, vocab: 256, alignment: 32 });
  });
  after(() => remove());

  it('offers the ggml method for GGUF through its capabilities', async () => {
    const model = await openModelFile(source);
    assert.deepEqual(model.summary.capabilities?.compress, ['ggml']);
  });

  it('re-types the chosen tensors to Q4_K, keeps the rest, reports and reads back', async () => {
    const before = sha(source);
    const original = await openModelFile(source);
    const report = await compressModel(source, {
      tensors: [],
      tensorPattern: 'attn_(q|k)\\.weight|attn_norm',
      options: { method: 'ggml', ggmlType: 'Q4_K' },
    });
    assert.equal(sha(source), before, 'the original is untouched');
    assert.equal(report.output, join(dir, 'model.ggml.gguf'));
    assert.ok(existsSync(report.reportPath));
    assert.equal(report.fileBytesAfter, statSync(report.output).size);
    assert.ok(report.fileBytesAfter < report.fileBytesBefore);
    const done = report.tensors.filter((t) => !t.skipped).map((t) => t.name);
    assert.deepEqual(done, ['blk.0.attn_q.weight', 'blk.0.attn_k.weight']);
    // A norm vector is kept as llama.cpp keeps it, and the report says so.
    const norm = report.tensors.find((t) => t.name === 'blk.0.attn_norm.weight');
    assert.deepEqual([norm?.skipped, norm?.detail], [true, 'vector: kept as stored']);

    const written = await openModelFile(report.output);
    assert.equal(written.tensors.length, original.tensors.length);
    for (const entry of written.tensors) {
      const name = entry.info.name;
      const result = report.tensors.find((t) => t.name === name && !t.skipped);
      if (!result) {
        assert.equal(entry.info.encoding, undefined, name);
        assert.deepEqual(bytesOf(written, name), bytesOf(original, name), `${name} is kept`);
        continue;
      }
      const before = await valuesOf(original, name);
      const after = await valuesOf(written, name);
      assert.equal(entry.info.encoding?.scheme, 'Q4_K', name);
      assert.deepEqual(after, roundTripGgml('Q4_K', before), name);
      assert.ok(result.relativeError > 0 && result.relativeError < 0.2, `${result.relativeError}`);
      assert.equal(result.bytesAfter, (before.length / 256) * 144);
    }
  });

  it('skips tensors whose rows are not whole blocks, with the reason', async () => {
    const small = join(dir, 'narrow.gguf');
    writeGgufLlm(small, { layers: 1, width: 96, ff: 128, vocab: 64, alignment: 32 });
    const report = await compressModel(small, {
      tensors: [],
      tensorPattern: 'ffn_(up|down)',
      options: { method: 'ggml', ggmlType: 'Q4_K' },
    }).catch((error: Error) => error);
    assert.ok(report instanceof Error);
    assert.match(report.message, /narrow\.gguf.*not a whole number of Q4_K blocks of 256/s);
    assert.equal(existsSync(join(dir, 'narrow.ggml.gguf')), false);
  });

  it('weights the chosen type by an importance matrix (imatrixPath)', async () => {
    const importance = Float32Array.from({ length: 256 }, (_, j) => (j % 16 < 4 ? 64 : 1 / 64));
    const dat = join(dir, 'imatrix.dat');
    writeImatrixDat(dat, new Map([['blk.0.attn_v.weight', importance]]), 8);
    const report = await compressModel(source, {
      tensors: [],
      tensorPattern: 'attn_(v|output)\\.weight',
      options: { method: 'ggml', ggmlType: 'Q4_K', imatrixPath: dat },
      outPath: join(dir, 'weighted.gguf'),
    });
    assert.deepEqual(
      report.tensors.map((t) => [t.name, /weighted by the importance matrix/.test(t.detail)]),
      [
        ['blk.0.attn_v.weight', true],
        ['blk.0.attn_output.weight', false],
      ],
    );
    const original = await openModelFile(source);
    const written = await openModelFile(report.output);
    const v = await valuesOf(original, 'blk.0.attn_v.weight');
    const weighted = await valuesOf(written, 'blk.0.attn_v.weight');
    assert.deepEqual(weighted, roundTripGgml('Q4_K', v, importance));
    assert.notDeepEqual(weighted, roundTripGgml('Q4_K', v));
    const out = await valuesOf(original, 'blk.0.attn_output.weight');
    assert.deepEqual(
      await valuesOf(written, 'blk.0.attn_output.weight'),
      roundTripGgml('Q4_K', out),
    );
    await assert.rejects(
      compressModel(source, {
        tensors: [],
        tensorPattern: 'ffn_up',
        options: { method: 'ggml', ggmlType: 'Q4_K', imatrixPath: join(dir, 'missing.dat') },
      }),
      /missing\.dat.*importance matrix cannot be read/,
    );
  });

  it('refuses an output path that exists', async () => {
    const out = join(dir, 'taken.gguf');
    await compressModel(source, {
      tensors: [],
      tensorPattern: 'ffn_up',
      options: { method: 'ggml', ggmlType: 'Q8_0' },
      outPath: out,
    });
    await assert.rejects(
      compressModel(source, {
        tensors: [],
        tensorPattern: 'ffn_up',
        options: { method: 'ggml', ggmlType: 'Q8_0' },
        outPath: out,
      }),
      /never overwrites/,
    );
  });
});

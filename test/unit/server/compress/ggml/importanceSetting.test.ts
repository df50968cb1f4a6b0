/**
 * The setting `layerlens.compress.importanceMatrix`: the editor's ggml compress and GGUF
 * plans weight by the matrix it names (relative to the model's folder) as the CLI's
 * --imatrix does, and a job's own matrix wins.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  loadTensorValues,
  tensorMatrixShape,
} from '../../../../../src/server/analysis/tensorMatrix';
import { compressModel } from '../../../../../src/server/compress';
import { roundTripGgml } from '../../../../../src/server/compress/ggml';
import { openModelFile } from '../../../../../src/server/formats/registry';
import { planModel } from '../../../../../src/server/plan';
import { planGguf } from '../../../../../src/server/plan/gguf';
import { writeGgufLlm, writeImatrixDat } from '../../../../support/ggufFixtures';
import { makeTempDir } from '../../../../support/safetensorsBuilder';

const TENSOR = 'blk.0.attn_q.weight';

describe('the importanceMatrix setting', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let model: string;
  const importance = Float32Array.from({ length: 256 }, (_, j) => (j % 16 < 4 ? 64 : 1 / 64));
  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-imatrix-setting-'));
    model = join(dir, 'tiny.gguf');
    writeGgufLlm(model, { layers: 1, width: 256, ff: 512, vocab: 256, alignment: 32 });
    writeImatrixDat(join(dir, 'imatrix.dat'), new Map([[TENSOR, importance]]), 4);
  });
  after(() => remove());

  const valuesOf = async (path: string) => {
    const opened = await openModelFile(path);
    const entry = opened.tensors.find((t) => t.info.name === TENSOR)!;
    return Float32Array.from(await loadTensorValues(entry, tensorMatrixShape(entry, true)));
  };

  it('weights the ggml compress of the editor', async () => {
    const opened = await openModelFile(model);
    const index = opened.tensors.findIndex((t) => t.info.name === TENSOR);
    const report = await compressModel(
      model,
      {
        tensors: [index],
        options: { method: 'ggml', ggmlType: 'Q4_K' },
        outPath: join(dir, 'weighted.gguf'),
      },
      { settings: { 'compress.importanceMatrix': 'imatrix.dat' } },
    );
    assert.match(report.tensors[0]!.detail, /weighted by the importance matrix/);
    const source = await valuesOf(model);
    const written = await valuesOf(report.output);
    assert.deepEqual(written, roundTripGgml('Q4_K', source, importance));
    assert.notDeepEqual(written, roundTripGgml('Q4_K', source));
  });

  it('weights the editor’s GGUF plan, whose recipe and llama-quantize command name it', async () => {
    const settings = { 'compress.importanceMatrix': 'imatrix.dat' };
    const plan = await planModel(
      model,
      { target: { kind: 'bpw', value: 5 }, measured: false },
      { settings },
    );
    const matrix = join(dir, 'imatrix.dat');
    const step = plan.steps.find((s) => s.tensor === TENSOR)!;
    const expected = await planGguf(model, 5, {}, matrix);
    const row = expected.rows.find((r) => r.name === TENSOR)!;
    assert.equal(step.predictedDeviation, row.relativeError);
    const unweighted = (await planGguf(model, 5)).rows.find((r) => r.name === TENSOR)!;
    assert.notEqual(row.relativeError, unweighted.relativeError);
    assert.ok(plan.llamaQuantize?.includes(`--imatrix ${matrix}`), plan.llamaQuantize);
    assert.ok(
      plan.recipe.steps.every((s) => s.options.imatrixPath === matrix),
      'every recipe step names the matrix',
    );
  });
});

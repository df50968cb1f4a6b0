/**
 * The ggml block types as sensitivity levels: the proxy of each type on each weight of a
 * safetensors LLM (levels named in the request), and which tensors a type cannot take.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { roundTripGgml } from '../../../../../src/server/compress/ggml';
import { relativeFrobeniusError } from '../../../../../src/server/compress/kernels';
import { GGML_LEVELS } from '../../../../../src/server/compress/methods/ggml';
import { computeSensitivity } from '../../../../../src/server/sensitivity';
import { optionsProblem } from '../../../../../src/shared/compressMethods';
import { makeTempDir, writeSafetensors } from '../../../../support/safetensorsBuilder';

function weights(count: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32 - 0.5) * 0.1;
  });
}

describe('ggml types as sensitivity levels', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let path: string;
  const q = weights(64 * 256, 1);
  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-ggml-'));
    path = await writeSafetensors(join(dir, 'model.safetensors'), [
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [64, 256], data: q },
      // 96 inputs: whole Q8_0 blocks, but not a whole K-quant super-block.
      {
        name: 'model.layers.0.mlp.up_proj.weight',
        dtype: 'F32',
        shape: [8, 96],
        data: weights(8 * 96, 2),
      },
      { name: 'model.norm.weight', dtype: 'F32', shape: [256], data: weights(256, 3) },
    ]);
  });
  after(() => remove());

  it('give each weight the relative error and SQNR of every type', async () => {
    const result = await computeSensitivity(path, {
      indices: [],
      levels: GGML_LEVELS,
      measured: false,
    });
    const qProj = result.layers.find((layer) => layer.name.endsWith('q_proj.weight'))!;
    assert.equal(qProj.proxy.length, 9);
    for (const point of qProj.proxy) {
      const type = point.key.slice('ggml:'.length);
      const expected = relativeFrobeniusError(q, roundTripGgml(type, q));
      assert.equal(point.relativeError, expected, type);
      assert.ok(Math.abs(point.sqnrDb + 20 * Math.log10(expected)) < 1e-9);
    }
    const up = result.layers.find((layer) => layer.name.endsWith('up_proj.weight'))!;
    assert.deepEqual(
      up.proxy.map((point) => point.key),
      ['ggml:Q8_0', 'ggml:Q5_0', 'ggml:Q4_0', 'ggml:IQ4_NL'],
    );
    assert.match(
      up.skipped!.find((s) => s.key === 'ggml:Q4_K')!.reason,
      /rows of 96 inputs are not a whole number of Q4_K blocks of 256/,
    );
    assert.equal(
      result.layers.find((layer) => layer.name === 'model.norm.weight'),
      undefined,
    );
  });

  it('levels sit at their bits per weight; unknown types are refused', () => {
    assert.deepEqual(
      GGML_LEVELS.map((level) => [level.label, level.x]),
      [
        ['Q8_0', 8.5],
        ['Q6_K', 6.5625],
        ['Q5_K', 5.5],
        ['Q5_0', 5.5],
        ['Q4_K', 4.5],
        ['Q4_0', 4.5],
        ['IQ4_NL', 4.5],
        ['Q3_K', 3.4375],
        ['Q2_K', 2.625],
      ],
    );
    assert.match(optionsProblem({ method: 'ggml', ggmlType: 'Q1_9' })!, /ggmlType must be one of/);
  });
});

/**
 * The llama.cpp quantization plan of a generated unquantized GGUF: meets the bits-per-weight
 * target within 0.5%, keeps the conventional tensors at Q6_K, and predicts the size of the
 * file the writer then writes exactly.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeRetypedGguf } from '../../../../src/server/compress/ggml/ggufWriter';
import { readGgufHeader } from '../../../../src/server/formats/gguf/header';
import { planModel } from '../../../../src/server/plan';
import { applyRecipe } from '../../../../src/server/plan/apply';
import { llamaQuantizeCommand, planGguf, type GgufPlan } from '../../../../src/server/plan/gguf';
import { writeGgufLlm } from '../../../support/ggufFixtures';
import { makeTempDir } from '../../../support/safetensorsBuilder';

// 3.9M weights: 4 layers of width 256 and FFN 768, 1024 tokens (see the report for 100M).
const SHAPE = { layers: 4, width: 256, ff: 768, vocab: 1024, alignment: 32 };

describe('planning llama.cpp types for a target bits per weight', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let source: string;
  let weights: number;
  let plan: GgufPlan;
  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-gguf-plan-'));
    source = join(dir, 'model.gguf');
    weights = writeGgufLlm(source, SHAPE);
    plan = await planGguf(source, 4.5);
  });
  after(() => remove());

  it('meets 4.5 bpw within 0.5%, counted over every tensor', () => {
    assert.equal(plan.weights, weights);
    assert.ok(plan.feasible);
    assert.ok(plan.bpw <= 4.5 && plan.bpw >= 4.5 * 0.995, `${plan.bpw}`);
    const bytes = plan.rows.reduce((sum, row) => sum + row.bytes, 0);
    assert.equal(plan.tensorBytes, bytes);
    assert.equal(plan.bpw, (bytes * 8) / weights);
    // The solver mixes types: more than one is chosen among the free tensors.
    const free = new Set(plan.rows.filter((row) => !row.fixed).map((row) => row.type));
    assert.ok(free.size >= 2, [...free].join(', '));
  });

  it('keeps the output and token embeddings at Q6_K and vectors as stored, saying why', () => {
    const row = (name: string) => plan.rows.find((r) => r.name === name)!;
    assert.equal(row('output.weight').type, 'Q6_K');
    assert.match(row('output.weight').fixed!, /llama\.cpp keeps it at Q6_K/);
    assert.equal(row('token_embd.weight').type, 'Q6_K');
    assert.equal(row('blk.0.attn_norm.weight').type, 'F32');
    assert.match(row('blk.0.attn_norm.weight').fixed!, /vector/);
    const args = plan.llamaQuantizeArgs;
    assert.deepEqual(args.slice(0, 4), [
      '--output-tensor-type',
      'q6_k',
      '--token-embedding-type',
      'q6_k',
    ]);
    const base = args.at(-1)!;
    assert.equal(args.at(-3), source);
    // Every chosen tensor not of the base type has an exact, anchored override.
    for (const r of plan.rows.filter((r) => !r.fixed && r.type !== base)) {
      const pattern = `^${r.name.replace(/\./g, '\\.')}$=${r.type.toLowerCase()}`;
      assert.ok(args.includes(pattern), pattern);
    }
    assert.ok(!args.some((a) => a.includes(`=${base.toLowerCase()}`)));
  });

  it('predicts the written file’s size exactly', async () => {
    const written = await writeRetypedGguf(source, plan.choices, { label: 'plan' });
    assert.equal(statSync(written.path).size, plan.predictedFileBytes);
    const back = readGgufHeader(written.path);
    for (const row of plan.rows) {
      assert.equal(back.tensors.find((t) => t.name === row.name)!.type.name, row.type, row.name);
    }
  });

  it('is the editor plan of a bpw target, and Apply writes the predicted file', async () => {
    const view = await planModel(source, { target: { kind: 'bpw', value: 4.5 }, measured: false });
    assert.equal(view.predictedFileBytes, plan.predictedFileBytes);
    assert.equal(view.llamaQuantize, llamaQuantizeCommand(plan));
    assert.deepEqual(
      view.recipe.steps.map((step) => [step.tensor, step.options.ggmlType]),
      [...plan.choices],
    );
    const result = await applyRecipe(source, view.recipe, { refine: false });
    assert.equal(result.report.fileBytesAfter, plan.predictedFileBytes);
    assert.equal(statSync(result.report.output).size, plan.predictedFileBytes);
    assert.equal(result.targetMet, true);
    // A size target becomes bits per weight over the tensors; a deviation is refused.
    const sized = await planModel(source, {
      target: { kind: 'sizeMB', value: plan.predictedFileBytes / 1e6 },
      measured: false,
    });
    assert.ok(sized.predictedFileBytes <= plan.predictedFileBytes, `${sized.predictedFileBytes}`);
    await assert.rejects(
      planModel(source, { target: { kind: 'deviation', value: 0.1 }, measured: false }),
      /LayerLens does not run GGUF models/,
    );
  });

  it('refuses a target that is not a positive number', async () => {
    await assert.rejects(planGguf(source, 0), /positive number/);
  });
});

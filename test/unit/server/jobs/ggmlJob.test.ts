/**
 * ggml quantization in the worker threads: the workers write the bytes and errors the
 * quantizers give in this thread, a cancel stops a tensor between pieces, and the GGUF plan
 * reports each tensor and stops when cancelled.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GGML_QUANT_TYPES,
  quantizeGgml,
  roundTripGgml,
} from '../../../../src/server/compress/ggml';
import { ggmlTypeErrors } from '../../../../src/server/compress/ggml/typeErrors';
import { relativeFrobeniusError } from '../../../../src/server/compress/kernels';
import { readGgufHeader } from '../../../../src/server/formats/gguf/header';
import { GGML_PIECE_WEIGHTS, GgmlWorkers } from '../../../../src/server/jobs/ggmlJob';
import { runGgmlJob } from '../../../../src/server/jobs/ggmlRun';
import { isAbortError } from '../../../../src/server/jobs/workerPool';
import { planGguf } from '../../../../src/server/plan/gguf';
import { writeGgufLlm } from '../../../support/ggufFixtures';
import { gaussian } from '../../../support/matrices';
import { makeTempDir } from '../../../support/safetensorsBuilder';

function weights(count: number, seed: number): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: count }, () => 0.02 * next());
}

describe('ggml workers', () => {
  const workers = new GgmlWorkers(2);
  after(() => workers.dispose());

  it('quantize a tensor to the bytes of this thread, with its relative error', async () => {
    const values = weights(512 * 64, 1);
    const importance = Float32Array.from({ length: 512 }, (_, j) => 1 + (j % 7));
    const expected = quantizeGgml('Q4_K', values, importance);
    const error = relativeFrobeniusError(values, roundTripGgml('Q4_K', values, importance));
    const result = await workers.quantize('Q4_K', values.slice(), importance, undefined);
    assert.deepEqual(result.bytes, expected);
    assert.equal(result.relativeError, error);
  });

  it('measure every type’s error as ggmlTypeErrors does here', async () => {
    const values = weights(256 * 16, 2);
    const here = ggmlTypeErrors(values, 256, GGML_QUANT_TYPES, Infinity);
    const there = await workers.typeErrors(values.slice(), 256, GGML_QUANT_TYPES, undefined);
    assert.deepEqual([...there.keys()], GGML_QUANT_TYPES);
    for (const type of GGML_QUANT_TYPES) {
      assert.equal(there.get(type)!.relativeError, here.get(type)!.relativeError, type);
    }
  });

  it('stop a tensor between pieces when cancelled', () => {
    const values = weights(3 * GGML_PIECE_WEIGHTS, 3);
    let checks = 0;
    assert.throws(
      () => runGgmlJob({ kind: 'quantize', type: 'Q8_0', values }, () => ++checks > 1),
      (error: unknown) => isAbortError(error),
    );
    assert.equal(checks, 2, 'the first piece ran, the second was refused');
  });

  it('reject a job aborted while it runs, and run the next one', async () => {
    const values = weights(8 * GGML_PIECE_WEIGHTS, 4);
    const controller = new AbortController();
    const running = workers.quantize('Q5_K', values, undefined, controller.signal);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(running, (error: unknown) => isAbortError(error));
    const small = weights(256 * 4, 5);
    const next = await workers.quantize('Q6_K', small.slice(), undefined, undefined);
    assert.deepEqual(next.bytes, quantizeGgml('Q6_K', small));
  });
});

describe('the GGUF plan in the workers', () => {
  let remove: () => Promise<void>;
  let source: string;
  before(async () => {
    let dir: string;
    ({ dir, remove } = await makeTempDir('layerlens-ggml-jobs-'));
    source = join(dir, 'model.gguf');
    writeGgufLlm(source, { layers: 2, width: 256, ff: 512, vocab: 256, alignment: 32 });
  });
  after(() => remove());

  it('reports every tensor once, up to the count', async () => {
    const total = readGgufHeader(source).tensors.length;
    const reports: [number, number, string][] = [];
    await planGguf(source, 5, { onProgress: (done, all, name) => reports.push([done, all, name]) });
    assert.deepEqual(
      reports.map(([done]) => done),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.ok(reports.every(([, all]) => all === total));
    assert.equal(new Set(reports.map(([, , name]) => name)).size, total);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    let reports = 0;
    const plan = planGguf(source, 5, {
      signal: controller.signal,
      onProgress: () => {
        if (++reports === 2) controller.abort();
      },
    });
    await assert.rejects(plan, (error: unknown) => isAbortError(error));
    assert.ok(reports < readGgufHeader(source).tensors.length, `${reports} tensors reported`);
  });
});

/**
 * GGUF files packed losslessly: the round trip is byte-exact, quantized blocks are coded as
 * plain bytes, and the packed file opens as the GGUF it holds, with every analysis on the
 * dequantized values of its packed blocks. A split model is refused clearly.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { loadTensorValues, tensorMatrixShape } from '../../../../src/server/analysis/tensorMatrix';
import { openModelFile } from '../../../../src/server/formats/registry';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { readContainer } from '../../../../src/server/lossless/container';
import {
  losslessWorkerScript,
  poolRunner,
  type LosslessJob,
  type LosslessResult,
} from '../../../../src/server/lossless/jobs';
import { packFile, unpackFile } from '../../../../src/server/lossless/pack';
import { float32Of, writeGgufFixtures, type GgufFixtures } from '../../../support/ggufFixtures';
import { expectedChunkDigest } from '../../../support/llzIndex';

let fixtures: GgufFixtures;
let lossless: WorkerPool<LosslessJob, LosslessResult>;
let stats: WorkerPool;

before(() => {
  fixtures = writeGgufFixtures();
  lossless = new WorkerPool<LosslessJob, LosslessResult>(1, losslessWorkerScript());
  stats = new WorkerPool(1);
});
after(() => {
  lossless.dispose();
  stats.dispose();
  fixtures.remove();
});

test('a GGUF file packs and unpacks byte for byte; the packed file opens as the GGUF', async () => {
  const file = fixtures.path('types-v3.gguf');
  const runner = poolRunner(lossless);
  const packed = await packFile(file, { runner });
  const unpacked = fixtures.path('types-v3.unpacked.gguf');
  await unpackFile(packed.out, { out: unpacked, runner });
  const original = await fs.readFile(file);
  assert.ok(original.equals(await fs.readFile(unpacked)), 'unpacked bytes equal the original');
  assert.equal(packed.digest, expectedChunkDigest(await fs.readFile(packed.out), original));

  const container = await readContainer(packed.out);
  assert.equal(container.index.original.format, 'gguf');
  const layouts = new Map(
    container.index.segments.filter((s) => s.kind === 'tensor').map((s) => [s.name, s.layout]),
  );
  assert.equal(
    layouts.get('blk.7.ffn_q4_k.weight'),
    'bytes',
    'quantized blocks are coded as bytes',
  );
  assert.equal(layouts.get('f16_norm.weight'), 'f16');

  const model = await openModelFile(packed.out);
  assert.equal(model.summary.format, 'gguf');
  const entry = model.tensors.find((candidate) => candidate.info.encoding?.scheme === 'Q4_K')!;
  assert.equal(entry.data.kind, 'memory');
  const expected = float32Of(fixtures.expected['types-v3.gguf']![entry.info.name]!);
  const values = await loadTensorValues(entry, tensorMatrixShape(entry, true));
  assert.deepEqual(Array.from(values), Array.from(expected));
  const summary = await computeTensorStats(stats, entry);
  assert.equal(summary.count, expected.length);
  assert.equal(summary.min, Math.min(...expected));
  assert.equal(summary.max, Math.max(...expected));
});

test('a split GGUF model is refused with the reason', async () => {
  await assert.rejects(
    packFile(fixtures.path('split-00001-of-00003.gguf'), { runner: poolRunner(lossless) }),
    /split model keeps its tensors in 3 files/,
  );
});

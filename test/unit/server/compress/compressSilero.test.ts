/**
 * Every method on the real Silero VAD models (legacy, v5, v6): the output loads and runs
 * in onnxruntime against the original, sizes shrink as the method says, the original
 * file is unchanged. Each model is copied into a temporary folder first.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { CompressionMethod, CompressionOptions } from '../../../../src/shared/compress';
import { compressModel } from '../../../../src/server/compress';
import { makeTempFolder } from '../../../support/onnxBuilder';

const MODELS = ['legacy', 'v5', 'v6'] as const;

let folder: string;
let remove: () => Promise<void>;
const paths = new Map<string, string>();
const checksums = new Map<string, string>();

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-compress-silero-'));
  for (const version of MODELS) {
    const source = `node_modules/@ricky0123/vad-web/dist/silero_vad_${version}.onnx`;
    const path = join(folder, `silero_vad_${version}.onnx`);
    await copyFile(source, path);
    paths.set(version, path);
    checksums.set(version, await sha256(path));
  }
});
after(() => remove());

/** Per method: the options, and the bounds its quantized tensors must meet. */
const CASES: readonly {
  readonly options: CompressionOptions;
  /** Bytes before / after over the compressed tensors, at least and at most. */
  readonly ratio: readonly [number, number];
}[] = [
  // int8: one float32 scale per output channel; legacy's depthwise convs have 5 inputs per channel.
  { options: { method: 'int8' }, ratio: [3.7, 4] },
  { options: { method: 'int4', blockSize: 32 }, ratio: [6, 6.4] },
  { options: { method: 'fp16' }, ratio: [2, 2] },
  { options: { method: 'prune', sparsity: 0.5 }, ratio: [1, 1] },
  { options: { method: 'nm' }, ratio: [1, 1] },
  { options: { method: 'lowrank', energy: 0.9 }, ratio: [1.05, 10] },
];

for (const version of MODELS) {
  for (const { options, ratio } of CASES) {
    test(`Silero ${version}: ${options.method}`, async () => {
      const path = paths.get(version)!;
      const report = await compressModel(path, { tensors: [], options });
      assert.equal(await sha256(path), checksums.get(version));
      const done = report.tensors.filter((t) => !t.skipped);
      assert.ok(done.length > 0);
      const before = done.reduce((s, t) => s + t.bytesBefore, 0);
      const after = done.reduce((s, t) => s + t.bytesAfter, 0);
      assert.ok(
        before / after >= ratio[0] - 1e-9 && before / after <= ratio[1] + 1e-9,
        `${before / after}`,
      );
      if (ratio[0] > 1) assert.ok(report.fileBytesAfter < report.fileBytesBefore);
      // Validation ran both models on the same generated inputs (Silero needs sr = 16000).
      assert.ok(
        report.validation.some((line) => line.startsWith('run (')),
        report.validation.join('; '),
      );
      assert.match(report.inputs, /input \[1, 512\]/);
      const names = report.outputs.map((o) => o.output);
      assert.deepEqual(names, version === 'legacy' ? ['output', 'hn', 'cn'] : ['output', 'stateN']);
      for (const output of report.outputs) {
        assert.ok(Number.isFinite(output.maxAbsDiff) && Number.isFinite(output.relativeL2));
        if (options.method === 'fp16')
          assert.ok(output.relativeL2 < 1e-2, `${output.output}: ${output.relativeL2}`);
        // cosine is the worst of the samples; the mean is the typical sample.
        if (options.method === 'int8') {
          assert.ok(output.meanCosine! > 0.97, `${output.output}: ${output.meanCosine}`);
          assert.ok(output.cosine > 0.95, `${output.output}: ${output.cosine}`);
        }
      }
      // The Silero models keep their conv and LSTM weights; everything else is skipped with a reason.
      assert.ok(report.tensors.filter((t) => t.skipped).every((t) => t.detail.length > 0));
    });
  }
}

test('Silero v5 low-rank at an explicit rank that saves nothing is refused for every layer', async () => {
  await assert.rejects(
    compressModel(paths.get('v5')!, {
      tensors: [],
      tensorPattern: 'encoder\\.0\\.reparam_conv\\.weight',
      options: { method: 'lowrank' as CompressionMethod, rank: 100 },
    }),
    /nothing to compress with lowrank: .*largest rank that saves is/,
  );
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { streamsSpectrum } from '../../../../src/server/analysis/spectrum';
import {
  loadTensorValues,
  matrixFileSource,
  tensorMatrixShape,
} from '../../../../src/server/analysis/tensorMatrix';
import { float32ToBfloat16Bits } from '../../../../src/server/compress/kernels';
import { openModelFile } from '../../../../src/server/formats/registry';
import { disposeSpectrumWorker, spectrumOf } from '../../../../src/server/jobs/computeSpectrum';
import { MAX_SPECTRUM_HELD_BYTES } from '../../../../src/shared/limits';
import { gaussianMatrix } from '../../../support/matrices';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-spectrum-jobs-');
after(disposeSpectrumWorker);

test('a file matrix over the held bound is streamed by the spectrum worker, with the in-memory result', async () => {
  // Just over MAX_SPECTRUM_HELD_BYTES of float32 values (stored as bfloat16, half of it).
  const cols = 1024;
  const rows = Math.floor(MAX_SPECTRUM_HELD_BYTES / (4 * cols)) + 16;
  const values = Float32Array.from(gaussianMatrix(rows, cols, 3), (v, i) =>
    i % cols === 0 ? 40 * v : v,
  );
  const path = await writeSafetensors(join(dir(), 'large.safetensors'), [
    { name: 'w', dtype: 'BF16', shape: [rows, cols], data: float32ToBfloat16Bits(values) },
  ]);
  const entry = (await openModelFile(path)).tensors[0]!;
  const shape = tensorMatrixShape(entry, true);
  const options = { method: 'topk' as const, k: 6 };
  assert.equal(streamsSpectrum([rows, cols], options), true);
  const source = matrixFileSource(entry, shape)!;
  const streamed = await spectrumOf({ source }, [rows, cols], 0, options);
  const held = await spectrumOf(
    { values: await loadTensorValues(entry, shape) },
    [rows, cols],
    0,
    options,
  );
  assert.match(streamed.backend, /streamed from the file in row panels/);
  assert.doesNotMatch(held.backend, /streamed/);
  assert.equal(streamed.singularValues.length, 6);
  for (let i = 0; i < 6; i++) {
    const relative = Math.abs(streamed.singularValues[i]! / held.singularValues[i]! - 1);
    assert.ok(
      relative < 1e-4,
      `σ${i + 1}: ${streamed.singularValues[i]} vs ${held.singularValues[i]}`,
    );
  }
  assert.ok(Math.abs(streamed.metrics.stableRank / held.metrics.stableRank - 1) < 1e-4);
});

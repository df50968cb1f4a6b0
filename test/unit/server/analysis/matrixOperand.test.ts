import assert from 'node:assert/strict';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fileMatrixPanels,
  memoryOperand,
  streamedOperand,
  type MatrixOperand,
} from '../../../../src/server/analysis/matrixOperand';
import { randomizedRange } from '../../../../src/server/analysis/randomizedSvd';
import { estimateSpectralSums } from '../../../../src/server/analysis/spectralSums';
import {
  computeSpectrumInThread,
  computeStreamedSpectrum,
  frobeniusSquaredOf,
  streamsSpectrum,
} from '../../../../src/server/analysis/spectrum';
import {
  loadTensorValues,
  matrixFileSource,
  tensorMatrixShape,
} from '../../../../src/server/analysis/tensorMatrix';
import {
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../../../../src/server/compress/kernels';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import { MatMulRuntime, type GemmArray, type Matrix } from '../../../../src/server/runtime/matmul';
import { MAX_SPECTRUM_HELD_BYTES } from '../../../../src/shared/limits';
import { gaussianMatrix } from '../../../support/matrices';
import { writeSafetensors } from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-matrix-operand-');
const runtime = new MatMulRuntime('cpu', 1);
const noCancel = () => {};

/** A tall and a wide matrix in every float type a file may hold, columns of falling scale. */
async function model(name: string) {
  const tensors = [];
  for (const [label, rows, cols] of [
    ['tall', 203, 61],
    ['wide', 58, 190],
  ] as const) {
    const values = Float32Array.from(
      gaussianMatrix(rows, cols, rows),
      (v, i) => v / (1 + (i % cols)) ** 0.5,
    );
    tensors.push(
      { name: `${label}.f32`, dtype: 'F32' as const, shape: [rows, cols], data: values },
      {
        name: `${label}.f16`,
        dtype: 'F16' as const,
        shape: [rows, cols],
        data: float32ToFloat16Bits(values),
      },
      {
        name: `${label}.bf16`,
        dtype: 'BF16' as const,
        shape: [rows, cols],
        data: float32ToBfloat16Bits(values),
      },
      {
        name: `${label}.f64`,
        dtype: 'F64' as const,
        shape: [rows, cols],
        data: Float64Array.from(values),
      },
    );
  }
  const path = await writeSafetensors(join(dir(), name), tensors);
  return openModelFile(path);
}

/** ‖x − y‖ ≤ tolerance·‖y‖ (the sums of a streamed product run in another order). */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  label: string,
) {
  assert.equal(actual.length, expected.length, label);
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += (actual[i]! - expected[i]!) ** 2;
    norm += expected[i]! ** 2;
  }
  assert.ok(norm > 0, label);
  assert.ok(
    Math.sqrt(difference) <= tolerance * Math.sqrt(norm),
    `${label}: relative difference ${Math.sqrt(difference / norm)}`,
  );
}

function gaussian(
  Element: Float32ArrayConstructor | Float64ArrayConstructor,
  rows: number,
  cols: number,
  seed: number,
): Matrix {
  const data = new Element(rows * cols);
  data.set(gaussianMatrix(rows, cols, seed) as never);
  return { rows, cols, data };
}

test('products streamed in row panels from the file equal those of the matrix held whole', async () => {
  const opened = await model('products.safetensors');
  for (const entry of opened.tensors) {
    const shape = tensorMatrixShape(entry, true);
    const source = matrixFileSource(entry, shape)!;
    const whole = await loadTensorValues(entry, shape);
    for (const Element of [Float32Array, Float64Array] as const) {
      // float32 products: float32 rounding, in another order; float64: far closer.
      const tolerance = Element === Float32Array ? 1e-5 : 1e-12;
      const data = new Element(whole.length);
      data.set(whole);
      const memory: MatrixOperand = memoryOperand<GemmArray>(runtime, {
        rows: shape.rows,
        cols: shape.cols,
        data,
      });
      // 7 rows of panel: several panels and a shorter last one.
      const panels = fileMatrixPanels<GemmArray>(
        source,
        Element,
        7 * shape.cols * data.BYTES_PER_ELEMENT,
      );
      const streamed: MatrixOperand = streamedOperand(runtime, panels);
      try {
        let heights = 0;
        await panels.forEachPanel((start, panel) => {
          assert.equal(start, heights);
          assert.ok(panel.rows <= 7 && panel.data instanceof Element);
          heights += panel.rows;
        });
        assert.equal(heights, shape.rows);
        const label = `${entry.info.name} in ${Element.name}`;
        const x = gaussian(Element, shape.cols, 5, 1);
        const y = gaussian(Element, shape.rows, 5, 2);
        const side = Math.min(shape.rows, shape.cols);
        const probes = gaussian(Element, 3, side, 3);
        assertClose(
          (await streamed.times(x)).data,
          (await memory.times(x)).data,
          tolerance,
          `${label} A·X`,
        );
        assertClose(
          (await streamed.transposeTimes(y)).data,
          (await memory.transposeTimes(y)).data,
          tolerance,
          `${label} Aᵀ·Y`,
        );
        assertClose(
          (await streamed.gramTimesRows(probes)).data,
          (await memory.gramTimesRows(probes)).data,
          tolerance,
          `${label} X·G`,
        );
      } finally {
        panels.close();
      }
    }
  }
});

test("the 'fast' method's steps on a streamed matrix give the in-memory results", async () => {
  const opened = await model('fast.safetensors');
  for (const name of ['tall.bf16', 'wide.f16']) {
    const entry = opened.tensors.find((tensor) => tensor.info.name === name)!;
    const shape = tensorMatrixShape(entry, true);
    const a = {
      rows: shape.rows,
      cols: shape.cols,
      data: (await loadTensorValues(entry, shape)) as Float32Array,
    };
    const panels = fileMatrixPanels(matrixFileSource(entry, shape)!, Float32Array, 4096);
    try {
      const streamed = streamedOperand(runtime, panels);
      const transposed = shape.rows > shape.cols;
      const fromMemory = await randomizedRange(runtime, a, 20, noCancel, 2, transposed);
      const fromPanels = await randomizedRange(runtime, streamed, 20, noCancel, 2, transposed);
      assertClose(fromPanels.eigenvalues, fromMemory.eigenvalues, 1e-4, `${name} Ritz values`);
      const frobenius = frobeniusSquaredOf(a.data);
      const memorySums = await estimateSpectralSums(runtime, a, frobenius, noCancel, {
        deflation: fromMemory,
      });
      const streamedSums = await estimateSpectralSums(runtime, streamed, frobenius, noCancel, {
        deflation: fromPanels,
      });
      assertClose(
        [streamedSums.sigma, streamedSums.sigmaLogSigma],
        [memorySums.sigma, memorySums.sigmaLogSigma],
        1e-4,
        `${name} spectral sums`,
      );
    } finally {
      panels.close();
    }
  }
});

test('a streamed top-k spectrum equals the one computed from the whole matrix', async () => {
  const opened = await model('topk.safetensors');
  const entry = opened.tensors.find((tensor) => tensor.info.name === 'tall.bf16')!;
  const shape = tensorMatrixShape(entry, true);
  const values = await loadTensorValues(entry, shape);
  const options = { method: 'topk' as const, k: 12 };
  const whole = await computeSpectrumInThread(values, [shape.rows, shape.cols], options);
  const panels = fileMatrixPanels(matrixFileSource(entry, shape)!, Float32Array, 2048);
  try {
    const streamed = await computeStreamedSpectrum(panels, options);
    assert.equal(streamed.method, 'topk');
    assert.match(streamed.backend, /streamed from the file in row panels/);
    assert.ok(Math.abs(streamed.frobeniusSquared / whole.frobeniusSquared - 1) < 1e-12);
    assertClose(streamed.singularValues, whole.singularValues, 1e-4, 'top-12 singular values');
  } finally {
    panels.close();
  }
});

test('only a two-dimensional matrix larger than the held bound, asked for products only, is streamed', () => {
  const held = [2048, 2048];
  const square = [4096, 4096];
  const mlp = [11008, 4096];
  assert.ok(held[0]! * held[1]! * 4 <= MAX_SPECTRUM_HELD_BYTES);
  assert.equal(streamsSpectrum(held, { method: 'fast' }), false);
  assert.equal(streamsSpectrum(square, { method: 'fast' }), true);
  assert.equal(streamsSpectrum(mlp, { method: 'fast' }), true);
  assert.equal(streamsSpectrum(mlp, { method: 'topk' }), true);
  // float64 values of the held one pass the bound.
  assert.equal(streamsSpectrum(held, { method: 'topk', precision: 'float64' }), true);
  assert.equal(streamsSpectrum(mlp, { method: 'full' }), false);
  assert.equal(streamsSpectrum([11008, 64, 64], { method: 'topk' }), false);
});

test('a file cut short while its panels stream is reported with its path', async () => {
  const opened = await model('cut.safetensors');
  const entry = opened.tensors.find((tensor) => tensor.info.name === 'wide.bf16')!;
  const source = matrixFileSource(entry, tensorMatrixShape(entry, true))!;
  await truncate(source.path, source.offset + 100);
  const panels = fileMatrixPanels(source, Float32Array, 1024);
  try {
    await assert.rejects(
      computeStreamedSpectrum(panels, { method: 'topk', k: 4 }),
      (error: unknown) => {
        assert.ok(error instanceof ModelFileError);
        assert.match(error.message, /cut\.safetensors/);
        assert.match(error.message, /ends at byte/);
        return true;
      },
    );
  } finally {
    panels.close();
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ggmlKernel } from '../../../../src/server/analysis/ggmlKernel';
import { GGML_QUANT_TYPES, quantizeGgml } from '../../../../src/server/compress/ggml';
import { ggmlType } from '../../../../src/server/formats/gguf/ggmlTypes';
import { gaussian } from '../../../support/matrices';

const ROW = 512;
const ROWS = 24;

/** Weights that exercise the quantizers' branches, row by row (rows of ROW weights). */
function generatedWeights(seed: number): Float32Array {
  const next = gaussian(seed);
  const values = new Float32Array(ROW * ROWS);
  for (let row = 0; row < ROWS; row++) {
    const sigma = 10 ** (-4 + (row % 6));
    for (let i = 0; i < ROW; i++) values[row * ROW + i] = sigma * next();
  }
  const at = (row: number, i: number) => row * ROW + i;
  // Outliers: a single large weight, of either sign, in otherwise small blocks.
  values[at(1, 3)] = 40;
  values[at(2, 100)] = -35;
  values[at(3, 7)] = 1e4;
  // Zero blocks and rows, a near-zero block, a constant block, a positive-only block.
  values.fill(0, at(4, 0), at(5, 0));
  values.fill(0, at(5, 32), at(5, 96));
  values.fill(1e-20, at(5, 256), at(5, 288));
  values.fill(0.25, at(6, 0), at(6, 256));
  for (let i = 0; i < 256; i++) values[at(7, i)] = Math.abs(values[at(7, i)]!);
  // Sparse rows (most weights zero), and f16-subnormal scales.
  for (let i = 0; i < ROW; i++) if (i % 7) values[at(8, i)] = 0;
  for (let i = 0; i < ROW; i++) values[at(9, i)] = 1e-7 * next();
  // Halfway values where rounding mode matters.
  for (let i = 0; i < ROW; i++) values[at(10, i)] = ((i % 33) - 16) / 2;
  // Ties at scale 1 (extreme 127 → Q8_0's d = 1; −8 → Q4_0's d = 1): x.5 weights.
  for (let i = 0; i < ROW; i++) values[at(11, i)] = i % 32 === 0 ? 127 : (i % 32) - 16.5;
  for (let i = 0; i < ROW; i++) values[at(12, i)] = i % 32 === 0 ? -8 : ((i % 15) - 7) / 2;
  return values;
}

function importance(seed: number, zeros: boolean): Float32Array {
  const next = gaussian(seed);
  const out = Float32Array.from({ length: ROW }, () => Math.exp(2 * next()));
  if (zeros) out.fill(0, 64, 160);
  return out;
}

describe('ggml quantizers in WebAssembly', () => {
  it('load', () => assert.ok(ggmlKernel(), 'the ggml wasm module loads'));

  for (const name of GGML_QUANT_TYPES) {
    it(`${name}: the same bytes as the TypeScript reference, with and without importance`, () => {
      const type = ggmlType(name);
      for (const seed of [1, 2, 3]) {
        const values = generatedWeights(seed);
        const cases: [string, Float32Array | undefined][] = [
          ['no importance', undefined],
          ['importance', importance(seed + 10, false)],
          ['importance with zero columns', importance(seed + 20, true)],
        ];
        for (const [label, weights] of cases) {
          const reference = quantizeGgml(name, values, weights, true);
          const wasm = new Uint8Array(reference.length);
          assert.ok(ggmlKernel()!.quantize(type, values, wasm, weights), `${name} runs in wasm`);
          const differs = wasm.findIndex((byte, i) => byte !== reference[i]);
          assert.equal(
            differs,
            -1,
            `${name}, seed ${seed}, ${label}: first difference in block ${Math.floor(differs / type.blockBytes)}, byte ${differs % type.blockBytes}`,
          );
          // quantizeGgml runs the wasm itself.
          assert.deepEqual(quantizeGgml(name, values, weights), reference);
        }
      }
    });
  }

  it('quantize more weights than one piece of module memory, rows across pieces', () => {
    const next = gaussian(99);
    const values = Float32Array.from({ length: 4096 * 160 }, () => 0.02 * next());
    const weights = Float32Array.from({ length: 4096 }, () => Math.exp(next()));
    for (const name of ['Q4_K', 'Q8_0']) {
      assert.deepEqual(
        quantizeGgml(name, values, weights),
        quantizeGgml(name, values, weights, true),
      );
    }
  });

  it('leave non-finite weights to the reference, which stores them', () => {
    const values = generatedWeights(4);
    values[5] = Number.NaN;
    values[700] = Number.POSITIVE_INFINITY;
    for (const name of GGML_QUANT_TYPES) {
      assert.deepEqual(quantizeGgml(name, values), quantizeGgml(name, values, undefined, true));
    }
  });
});

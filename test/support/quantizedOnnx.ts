/**
 * Quantized ONNX models built by quantizedOnnx.py (Python's onnx package and NumPy,
 * independently of LayerLens), with what NumPy computes for each quantized weight.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pythonWithNumpy } from './python';

/** What quantizedOnnx.py says a reader should report of one weight. */
export interface QuantizedReference {
  /** (q − zero point) · scale in float32, row-major in the shape LayerLens shows. */
  readonly values: readonly number[];
  readonly codes: readonly number[];
  readonly bitsPerWeight: number;
  /** Singular values of the values as [shape[0], rest]. */
  readonly sigma: readonly number[];
  readonly levelsUsed: number;
  readonly codeCounts: Readonly<Record<string, number>>;
  readonly scheme: string;
  readonly granularity: 'tensor' | 'channel' | 'block';
  readonly blockSize?: number;
  readonly symmetric: boolean;
  /** The model computes Y = X·W with W this weight: an identity X gives W back. */
  readonly identity?: boolean;
  /** The weight's shape when it differs from the codes' (MatMulNBits: [K, N]). */
  readonly shape?: readonly number[];
}

export interface QuantizedModelReference {
  readonly input: { readonly name: string; readonly shape: readonly number[] };
  readonly weights: Readonly<Record<string, QuantizedReference>>;
}

/** Write the models into `folder`; returns their references by model name (file `<name>.onnx`). */
export async function writeQuantizedModels(
  folder: string,
): Promise<Record<string, QuantizedModelReference>> {
  const script = resolve('test/support/quantizedOnnx.py');
  const run = spawnSync(pythonWithNumpy(), [script, folder], { encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(
      `quantizedOnnx.py failed (it needs python3-onnx: apt-get install python3-onnx): ${run.stderr}`,
    );
  }
  return JSON.parse(await readFile(join(folder, 'reference.json'), 'utf8')) as Record<
    string,
    QuantizedModelReference
  >;
}

/**
 * PyTorch checkpoints written by an encoder independent of LayerLens (torchSave.py:
 * Python's pickle and zipfile with torch's global names, numpy values), and the
 * reference numpy gives for each tensor.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pythonWithNumpy } from './python';

export const TORCH_SAVE_SCRIPT = resolve(__dirname, 'torchSave.py');

export interface ReferenceTensor {
  /** torch storage type (`FloatStorage`). */
  readonly storage: string;
  readonly shape: readonly number[];
  /** Dense row-major bytes of the tensor's view, as hex. */
  readonly hex: string;
  /** The values as numbers (bfloat16 widened to float32 by numpy). */
  readonly values: readonly number[];
}

export interface CheckpointReference {
  readonly tensors: Readonly<Record<string, ReferenceTensor>>;
  /** Names of the pickle opcodes the file uses (pickletools). */
  readonly opcodes?: readonly string[];
}

function runScript(args: readonly string[]): void {
  const result = spawnSync(pythonWithNumpy(), [TORCH_SAVE_SCRIPT, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`torchSave.py failed: ${result.stderr}`);
}

/** Write the fixtures into `dir`; the reference of each, by file name. */
export async function writeTorchCheckpoints(
  dir: string,
): Promise<Readonly<Record<string, CheckpointReference>>> {
  runScript([dir]);
  return JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Record<
    string,
    CheckpointReference
  >;
}

/** Write the hostile pickles into `dir`; each would run `touch marker` when Python loads it. */
export function writeHostileCheckpoints(dir: string, marker: string): void {
  runScript(['hostile', dir, marker]);
}

/** Write checkpoints broken in one way each into `dir` (see torchSave.py `malformed`). */
export function writeMalformedCheckpoints(dir: string): void {
  runScript(['malformed', dir]);
}

/** Write a checkpoint of N(0, 0.02) 1024×1024 weights (`megabytes` in all) in float32 or bfloat16. */
export function writeGaussianCheckpoint(
  file: string,
  megabytes: number,
  dtype: 'float32' | 'bfloat16',
): void {
  runScript(['gaussian', file, String(megabytes), dtype]);
}

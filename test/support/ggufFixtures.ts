/**
 * GGUF files for the tests, written by test/support/gguf_fixtures.py (python3 + numpy, from
 * the GGUF/ggml specification, independent of LayerLens's reader), with the values each
 * tensor's blocks stand for, computed there from the block fields.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pythonWithNumpy } from './python';

export interface GgufFixtures {
  readonly dir: string;
  /** File name → tensor name → the values (float64, exactly the float32 ones expected). */
  readonly expected: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>>;
  /** Tensor name of types-v3.gguf/types-v2.gguf → the scale d of each block, row by row. */
  readonly scales: Readonly<Record<string, readonly number[]>>;
  path(name: string): string;
  remove(): void;
}

/** Well-formed files among the fixtures (the fuzz harness's seeds); the rest are broken on purpose. */
export const GGUF_SEEDS = [
  'types-v3.gguf',
  'types-v2.gguf',
  'aligned64.gguf',
  'split-00001-of-00003.gguf',
] as const;

/** Write the fixtures into `dir` (created), or into a new temporary folder. */
export function writeGgufFixtures(
  dir = mkdtempSync(join(tmpdir(), 'layerlens-gguf-')),
): GgufFixtures {
  const script = resolve(__dirname, 'gguf_fixtures.py');
  const run = spawnSync(pythonWithNumpy(), [script, dir], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`gguf_fixtures.py failed: ${run.stderr}`);
  const expected = JSON.parse(
    readFileSync(join(dir, 'expected.json'), 'utf8'),
  ) as GgufFixtures['expected'];
  const scales = JSON.parse(
    readFileSync(join(dir, 'scales.json'), 'utf8'),
  ) as GgufFixtures['scales'];
  return {
    dir,
    expected,
    scales,
    path: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The values as float32, as the decoders must give them. */
export function float32Of(values: readonly number[]): Float32Array {
  return Float32Array.from(values);
}

export interface GgufLlmShape {
  readonly layers: number;
  readonly width: number;
  readonly ff: number;
  readonly vocab: number;
  readonly alignment: number;
}

/**
 * Write an unquantized llama-shaped GGUF (F16 matrices, F32 norms, BF16 output; see
 * gguf_fixtures.py --llm) to `path`; its parameter count.
 */
export function writeGgufLlm(path: string, shape: GgufLlmShape): number {
  const script = resolve(__dirname, 'gguf_fixtures.py');
  const { layers, width, ff, vocab, alignment } = shape;
  const args = [layers, width, ff, vocab, alignment].map(String);
  const run = spawnSync(pythonWithNumpy(), [script, '--llm', path, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`gguf_fixtures.py --llm failed: ${run.stderr}`);
  return 2 * vocab * width + layers * (4 * width * width + 3 * width * ff + 2 * width) + width;
}

/** llama-imatrix's legacy `.dat` at `dat` rewritten in its GGUF form at `path` (by the Python fixture writer). */
export function writeImatrixGguf(dat: string, path: string): void {
  const script = resolve(__dirname, 'gguf_fixtures.py');
  const run = spawnSync(pythonWithNumpy(), [script, '--imatrix-gguf', dat, path], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`gguf_fixtures.py --imatrix-gguf failed: ${run.stderr}`);
}

/**
 * llama-imatrix's legacy `.dat` at `path`: `entries` (tensor name → mean squares per input
 * column) stored as sums over `calls` calls, then the last chunk and a dataset name.
 */
export function writeImatrixDat(
  path: string,
  entries: ReadonlyMap<string, Float32Array>,
  calls: number,
): void {
  const int = (value: number): Buffer => {
    const bytes = Buffer.alloc(4);
    bytes.writeInt32LE(value);
    return bytes;
  };
  const parts: Buffer[] = [int(entries.size)];
  for (const [name, values] of entries) {
    const bytes = Buffer.from(name, 'utf8');
    parts.push(int(bytes.length), bytes, int(calls), int(values.length));
    const sums = Buffer.alloc(4 * values.length);
    values.forEach((value, i) => sums.writeFloatLE(value * calls, 4 * i));
    parts.push(sums);
  }
  const dataset = Buffer.from('wiki.train.raw', 'utf8');
  parts.push(int(calls), int(dataset.length), dataset);
  writeFileSync(path, Buffer.concat(parts));
}

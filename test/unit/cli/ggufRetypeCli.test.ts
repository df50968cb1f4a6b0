/**
 * Re-typing a GGUF on the CLI, run as a user runs it: `layerlens plan FILE.gguf --target-bpw B
 * --llama-quantize --write` and `layerlens compress FILE.gguf --method ggml --ggml-type T`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadTensorValues, tensorMatrixShape } from '../../../src/server/analysis/tensorMatrix';
import { roundTripGgml } from '../../../src/server/compress/ggml';
import { openModelFile } from '../../../src/server/formats/registry';
import type { CompressionReport } from '../../../src/shared/compress';
import { writeGgufLlm, writeImatrixDat } from '../../support/ggufFixtures';

let folder: string;
let model: string;
before(() => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-gguf-plan-cli-'));
  model = join(folder, 'tiny.gguf');
  writeGgufLlm(model, { layers: 1, width: 256, ff: 512, vocab: 256, alignment: 32 });
});
after(() => rmSync(folder, { recursive: true, force: true }));

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
    encoding: 'utf8',
  });
}

test('plan --target-bpw prints the types, the predicted size and llama-quantize; --write matches it', () => {
  const run = layerlens('plan', model, '--target-bpw', '5', '--llama-quantize', '--write');
  assert.equal(run.status, 0, run.stderr);
  assert.match(
    run.stdout,
    /^output\.weight\s+BF16\s+Q6_K\s+\d+\s+[\d.]+\s+output matrix: llama\.cpp keeps it at Q6_K/m,
  );
  assert.match(
    run.stdout,
    /^blk\.0\.attn_norm\.weight\s+F32\s+F32\s+1024\s+—\s+vector: kept as stored/m,
  );
  const predicted = Number(
    /predicted \((\d+) bytes, metadata and alignment counted\)/.exec(run.stdout)![1],
  );
  const written = /wrote (.+\.plan\.gguf): (\d+) bytes/.exec(run.stdout)!;
  assert.equal(statSync(written[1]!).size, predicted);
  const command = run.stdout.split('\n').find((line) => line.startsWith('llama-quantize '))!;
  assert.match(command, /--output-tensor-type q6_k --token-embedding-type q6_k/);
  assert.ok(
    command.endsWith(
      `${model} ${join(folder, 'tiny')}.${command.split(' ').at(-1)}.gguf ${command.split(' ').at(-1)}`,
    ),
    command,
  );
});

test('--llama-quantize without --target-bpw is a usage error', () => {
  const run = layerlens('plan', model, '--ratio', '2', '--llama-quantize');
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /--llama-quantize and --write go with --target-bpw/);
});

test('--method ggml --ggml-type Q5_K writes a GGUF whose values are the round trip', async () => {
  const original = readFileSync(model);
  const run = layerlens(
    'compress',
    model,
    '--method',
    'ggml',
    '--ggml-type',
    'Q5_K',
    '--layers',
    'ffn_(up|gate)',
    '--json',
  );
  // Written, but not validated: LayerLens does not run GGUF models.
  assert.equal(run.status, 3, run.stderr);
  const report = JSON.parse(run.stdout) as CompressionReport;
  assert.deepEqual(readFileSync(model), original, 'the original is untouched');
  assert.equal(report.output, join(folder, 'tiny.ggml.gguf'));
  assert.equal(statSync(report.output).size, report.fileBytesAfter);
  assert.deepEqual(
    report.tensors.map((t) => [t.name, t.skipped]),
    [
      ['blk.0.ffn_gate.weight', false],
      ['blk.0.ffn_up.weight', false],
    ],
  );
  const before = await openModelFile(model);
  const after = await openModelFile(report.output);
  for (const { name } of report.tensors) {
    const read = async (m: typeof before) => {
      const entry = m.tensors.find((t) => t.info.name === name)!;
      return Float32Array.from(await loadTensorValues(entry, tensorMatrixShape(entry, true)));
    };
    const entry = after.tensors.find((t) => t.info.name === name)!;
    assert.equal(entry.info.encoding?.scheme, 'Q5_K');
    assert.deepEqual(await read(after), roundTripGgml('Q5_K', await read(before)), name);
  }
});

test('--ggml-type with another method, or an unknown type, is a usage error', () => {
  const other = layerlens('compress', model, '--method', 'int8', '--ggml-type', 'Q4_K');
  assert.equal(other.status, 2);
  assert.match(other.stderr, /--ggml-type applies to --method ggml/);
  const unknown = layerlens('compress', model, '--method', 'ggml', '--ggml-type', 'Q9_X');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /ggmlType must be one of Q8_0/);
});

test('plan --target-bpw --imatrix weighs the errors and gives llama-quantize the matrix', () => {
  const dat = join(folder, 'imatrix.dat');
  const importance = Float32Array.from({ length: 256 }, (_, j) => (j % 16 < 4 ? 64 : 1 / 64));
  writeImatrixDat(dat, new Map([['blk.0.attn_q.weight', importance]]), 4);
  const plain = layerlens('plan', model, '--target-bpw', '5', '--json');
  const weighted = layerlens('plan', model, '--target-bpw', '5', '--imatrix', dat, '--json');
  assert.equal(weighted.status, 0, weighted.stderr);
  const rowOf = (run: typeof plain) =>
    (
      JSON.parse(run.stdout) as { rows: { name: string; relativeError: number; type: string }[] }
    ).rows.find((row) => row.name === 'blk.0.attn_q.weight')!;
  assert.notEqual(rowOf(weighted).relativeError, rowOf(plain).relativeError);
  const args = (JSON.parse(weighted.stdout) as { llamaQuantizeArgs: string[] }).llamaQuantizeArgs;
  assert.deepEqual(args.slice(0, 2), ['--imatrix', dat]);
});

test('compress --method ggml --imatrix writes the importance-weighted blocks and says so', async () => {
  const dat = join(folder, 'compress-imatrix.dat');
  const importance = Float32Array.from({ length: 256 }, (_, j) => (j % 16 < 4 ? 64 : 1 / 64));
  writeImatrixDat(dat, new Map([['blk.0.attn_q.weight', importance]]), 4);
  const args = ['compress', model, '--method', 'ggml', '--ggml-type', 'Q4_K'];
  const run = layerlens(...args, '--layers', 'attn_[qk]', '--imatrix', dat, '--json');
  assert.equal(run.status, 3, run.stderr);
  const report = JSON.parse(run.stdout) as CompressionReport;
  const detail = (name: string) => report.tensors.find((t) => t.name === name)!.detail;
  assert.match(detail('blk.0.attn_q.weight'), /weighted by the importance matrix/);
  // The matrix has no entry for attn_k: it is quantized unweighted.
  assert.doesNotMatch(detail('blk.0.attn_k.weight'), /importance/);
  const before = await openModelFile(model);
  const after = await openModelFile(report.output);
  const read = async (m: typeof before, name: string) => {
    const entry = m.tensors.find((t) => t.info.name === name)!;
    return Float32Array.from(await loadTensorValues(entry, tensorMatrixShape(entry, true)));
  };
  const source = await read(before, 'blk.0.attn_q.weight');
  const written = await read(after, 'blk.0.attn_q.weight');
  assert.deepEqual(written, roundTripGgml('Q4_K', source, importance));
  assert.notDeepEqual(written, roundTripGgml('Q4_K', source));
  assert.deepEqual(
    await read(after, 'blk.0.attn_k.weight'),
    roundTripGgml('Q4_K', await read(before, 'blk.0.attn_k.weight')),
  );

  const missing = layerlens(...args, '--imatrix', join(folder, 'absent.dat'));
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /absent\.dat.*cannot be read \(ENOENT\)/);
});

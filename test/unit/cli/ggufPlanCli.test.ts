/** `layerlens plan FILE.gguf --target-bpw B --llama-quantize --write`, run as a user runs it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeGgufLlm } from '../../support/ggufFixtures';

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

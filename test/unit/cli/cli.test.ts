/** The `layerlens` command, run as a user runs it: the built bundle in a child process. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const SILERO = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const CLI = ['--import', 'tsx', 'src/cli/bin.ts'];
let folder: string;

before(() => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-cli-'));
});
after(() => rmSync(folder, { recursive: true, force: true }));

function layerlens(...args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8' });
}

test('inspect --json prints the summary and every tensor with its layer', () => {
  const result = layerlens('inspect', SILERO, '--json');
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as {
    format: string;
    fileBytes: number;
    parameterCount: number;
    tensors: {
      name: string;
      dtype: string;
      shape: number[];
      parameterCount: number;
      node: string;
      op: string | null;
    }[];
  };
  assert.equal(report.format, 'onnx');
  assert.ok(report.fileBytes > 0);
  assert.ok(report.tensors.length > 0);
  const sum = report.tensors.reduce((total, tensor) => total + tensor.parameterCount, 0);
  assert.equal(report.parameterCount, sum);
  for (const tensor of report.tensors) {
    assert.equal(typeof tensor.name, 'string');
    assert.equal(
      tensor.parameterCount,
      tensor.shape.reduce((product, dim) => product * dim, 1),
    );
    assert.ok('node' in tensor && 'op' in tensor && 'dtype' in tensor, tensor.name);
  }
});

test('a long --json report reaches a pipe whole', () => {
  // Silero v5's report is more than twice the 64 KiB a pipe takes at once.
  const result = layerlens('inspect', SILERO_V5, '--json');
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.length > 2 * 65536, `${result.stdout.length} characters`);
  assert.equal((JSON.parse(result.stdout) as { tensors: unknown[] }).tensors.length, 341);
});

test('inspect --stats prints a statistics column for each tensor', () => {
  const result = layerlens('inspect', SILERO, '--stats');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /SPARSITY\s+MEAN\s+STD/);
  assert.match(result.stdout, /parameters/);
});

test('a corrupt file exits with status 1 and names the file and the problem; nothing is written', () => {
  const broken = join(folder, 'corrupt.onnx');
  writeFileSync(broken, Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
  const result = layerlens('inspect', broken);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /corrupt\.onnx/);
  assert.ok(result.stderr.length > 'layerlens: '.length + broken.length + 5, result.stderr);
  assert.deepEqual(execFileSync('ls', [folder], { encoding: 'utf8' }).trim().split('\n'), [
    'corrupt.onnx',
  ]);
});

test('a file of no known format, and a missing file, are refused clearly', () => {
  const text = join(folder, 'notes.txt');
  writeFileSync(text, 'hello');
  const unknown = layerlens('inspect', text);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /notes\.txt: not a model format/);
  const missing = layerlens('inspect', join(folder, 'missing.onnx'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing\.onnx: the file does not exist/);
  assert.equal(existsSync(join(folder, 'missing.onnx')), false);
});

test('wrong usage prints the usage and exits with status 2', () => {
  const result = layerlens('frobnicate');
  assert.equal(result.status, 2);
  assert.match(result.stderr, /Usage: layerlens inspect FILE/);
});

test('inspect --spectra --sparsity --json adds spectral metrics and structured sparsity', () => {
  const result = layerlens('inspect', SILERO_V5, '--spectra', '--sparsity', '--json');
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as {
    tensors: {
      name: string;
      shape: number[];
      dtype: string;
      spectrum?: {
        rows: number;
        cols: number;
        metrics: { stableRank: number; rank90: number; rank99: number; spectralNorm: number };
      };
      structuredSparsity?: { rows: number; zeroRows: number; groups: number };
    }[];
  };
  const lstm = report.tensors.find((tensor) => tensor.name.endsWith('decoder.rnn.weight_ih'))!;
  assert.deepEqual([lstm.spectrum?.rows, lstm.spectrum?.cols], [512, 128]);
  const { metrics } = lstm.spectrum!;
  assert.ok(metrics.stableRank >= 1 && metrics.stableRank <= 128, `${metrics.stableRank}`);
  assert.ok(metrics.rank90 <= metrics.rank99 && metrics.rank99 <= 128);
  assert.equal(lstm.structuredSparsity?.rows, 512);
  assert.equal(lstm.structuredSparsity?.groups, 512 * 32);
  // 1-D tensors have neither; every float matrix has a spectrum.
  for (const tensor of report.tensors) {
    if (tensor.shape.length < 2) assert.equal(tensor.spectrum, undefined, tensor.name);
    else if (tensor.dtype === 'float32') assert.ok(tensor.spectrum, tensor.name);
  }
  const text = layerlens('inspect', SILERO_V5, '--spectra');
  assert.equal(text.status, 0, text.stderr);
  assert.match(
    text.stdout.split('\n').find((line) => line.startsWith('TENSOR'))!,
    /STABLE RANK/,
  );
});

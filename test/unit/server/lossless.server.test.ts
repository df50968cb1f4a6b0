/**
 * Lossless packing through the real server process over JSON-RPC (as the extension's
 * language client talks to it), and through the `layerlens` command.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { isCompressibilityError } from '../../../src/shared/lossless';
import { LspMethods, type LspMethod } from '../../../src/shared/lsp';
import { expectedChunkDigest } from '../../support/llzIndex';
import { writeSafetensors } from '../../support/safetensorsBuilder';
import { startServer, type ServerProcess } from '../../support/serverProcess';

const SILERO_V5 = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');

let server: ServerProcess;
let folder: string;

function request<P, R>(method: LspMethod<P, R>, params: P, token?: CancellationTokenSource) {
  return server.request(method, params, token?.token);
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** The chunk digest a packed file should record for `original` (worked out from the format). */
const chunkDigestOf = (packed: string, original: string) =>
  expectedChunkDigest(readFileSync(packed), readFileSync(original));

before(async () => {
  folder = mkdtempSync(join(tmpdir(), 'layerlens-lossless-server-'));
  server = await startServer({ 'stats.workerCount': 2 });
});

after(() => {
  server.stop();
  rmSync(folder, { recursive: true, force: true });
});

test('pack, open, compressibility and unpack over JSON-RPC, with progress', async () => {
  const model = join(folder, 'silero_vad_v5.onnx');
  copyFileSync(SILERO_V5, model);
  const uri = pathToFileURL(model).toString();
  const packed = await request(LspMethods.pack, { uri, workDoneToken: 'pack-1' });
  assert.equal(packed.out, `${model}.llz`);
  assert.equal(packed.digest, chunkDigestOf(packed.out, model));
  assert.ok(packed.packedBytes < packed.originalBytes);
  const kinds = (server.progressByToken.get('pack-1') ?? []).map((value) => value.kind);
  assert.equal(kinds[0], 'begin');
  assert.equal(kinds.at(-1), 'end');
  assert.ok(kinds.includes('report'));

  const packedUri = pathToFileURL(packed.out).toString();
  const summary = await request(LspMethods.openModel, { uri: packedUri });
  const original = await request(LspMethods.openModel, { uri });
  assert.equal(summary.tensorCount, original.tensorCount);
  assert.equal(summary.parameterCount, original.parameterCount);

  const indices = Array.from({ length: summary.tensorCount }, (_, i) => i);
  const results = await request(LspMethods.compressibility, { uri: packedUri, indices });
  assert.equal(results.length, indices.length);
  const { tensors } = await request(LspMethods.tensors, {
    uri: packedUri,
    offset: 0,
    limit: summary.tensorCount,
  });
  const resultOf = (suffix: string) => {
    const tensor = tensors.find((t) => t.name.endsWith(suffix));
    const result = tensor && results[indices.indexOf(tensor.index)];
    assert.ok(result && !isCompressibilityError(result), `${suffix}: ${JSON.stringify(result)}`);
    return result;
  };
  // A trained weight: the byte groups code it, at or above their exponent-entropy bound.
  const lstm = resultOf('decoder.rnn.weight_ih');
  assert.ok(lstm.exponentEntropyBits! > 1 && lstm.exponentEntropyBits! < 6);
  assert.ok(lstm.ratio < 0.9 && lstm.ratio >= lstm.boundRatio! - 1e-9);
  // The STFT basis repeats its values: brotli codes it whole, below the byte groups' bound.
  const basis = resultOf('forward_basis_buffer');
  assert.ok(basis.ratio < 0.35 && basis.ratio < basis.boundRatio!, JSON.stringify(basis));

  const out = join(folder, 'restored.onnx');
  const unpacked = await request(LspMethods.unpack, {
    uri: packedUri,
    outUri: pathToFileURL(out).toString(),
  });
  assert.equal(unpacked.digest, packed.digest);
  assert.equal(sha256(out), sha256(model));
});

test('a cancelled pack leaves no file behind, and errors name the file', async () => {
  // 64 MiB of float32: long enough to be cancelled mid-way on any machine.
  const large = await writeSafetensors(join(folder, 'cancel.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [16 * 1024 * 1024], data: randomBytes(64 * 1024 * 1024) },
  ]);
  const source = new CancellationTokenSource();
  const pending = request(LspMethods.pack, { uri: pathToFileURL(large).toString() }, source);
  setTimeout(() => source.cancel(), 50);
  await assert.rejects(pending, ResponseError);
  assert.equal(existsSync(`${large}.llz`), false);
  const partials = spawnSync('ls', [folder], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(partials, /\.partial/);

  const model = join(folder, 'cancel.onnx');
  copyFileSync(SILERO_V5, model);

  await assert.rejects(
    request(LspMethods.unpack, { uri: pathToFileURL(model).toString() }),
    (error: unknown) =>
      error instanceof ResponseError &&
      /cancel\.onnx: not a LayerLens packed file/.test(error.message),
  );
});

test('the layerlens command packs, extracts one tensor, reports compressibility and unpacks', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
      encoding: 'utf8',
    });
  const model = join(folder, 'cli.onnx');
  copyFileSync(SILERO_V5, model);
  const packed = cli('pack', model);
  assert.equal(packed.status, 0, packed.stderr);
  assert.match(packed.stdout, new RegExp(`chunk digest ${chunkDigestOf(`${model}.llz`, model)}`));

  const report = cli('compressibility', `${model}.llz`, '--json');
  assert.equal(report.status, 0, report.stderr);
  const parsed = JSON.parse(report.stdout) as {
    ratio: number;
    tensors: { name: string; exponentEntropyBits: number | null; ratio: number }[];
  };
  assert.ok(parsed.ratio > 0.5 && parsed.ratio < 0.95, String(parsed.ratio));
  const weight = parsed.tensors.find((t) => t.name.endsWith('decoder.rnn.weight_ih'))!;
  assert.ok(weight.exponentEntropyBits! > 1);
  const text = cli('compressibility', model);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /EXP\.ENTROPY\s+BOUND\s+RATIO/);

  const tensorOut = join(folder, 'weight.bin');
  const extracted = cli('unpack', `${model}.llz`, '--tensor', weight.name, '--out', tensorOut);
  assert.equal(extracted.status, 0, extracted.stderr);
  assert.equal(readFileSync(tensorOut).length, 262144);

  const refused = cli('unpack', `${model}.llz`);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /already exists/);
  const restored = join(folder, 'cli-restored.onnx');
  const unpacked = cli('unpack', `${model}.llz`, '--out', restored);
  assert.equal(unpacked.status, 0, unpacked.stderr);
  assert.equal(sha256(restored), sha256(model));
  assert.equal(cli('pack').status, 2);
});

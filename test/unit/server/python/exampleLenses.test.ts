/**
 * The example workspace's lenses over JSON-RPC with the real server and the real Silero
 * model: every lens is short (several short lenses rather than one that runs off screen),
 * nothing is lost (full names in the tooltips), and vad.py's ✗ says why: the model holds
 * the first encoder layer in two branches with different shapes.
 */
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodeLens } from 'vscode-languageserver-protocol';
import { MAX_LENS_TITLE } from '../../../../src/server/python/lensText';
import { startServer, type ServerProcess } from '../../../support/serverProcess';

let workspace: string;
let server: ServerProcess;

before(async () => {
  workspace = await mkdtemp(path.join(tmpdir(), 'layerlens-example-'));
  const copy = spawnSync(process.execPath, ['scripts/example-workspace.mjs', '--copy', workspace], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  assert.equal(copy.status, 0, 'scripts/example-workspace.mjs --copy failed');
  server = await startServer({ 'stats.workerCount': 1 }, workspace);
});

after(async () => {
  server?.stop();
  await rm(workspace, { recursive: true, force: true });
});

/** The script's lenses, resolved as VS Code resolves the ones it shows, by line. */
async function lensesOf(script: string): Promise<Map<number, CodeLens[]>> {
  const uri = pathToFileURL(path.join(workspace, script)).toString();
  const text = await readFile(path.join(workspace, script), 'utf8');
  await server.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text },
  });
  const found = (await server.connection.sendRequest('textDocument/codeLens', {
    textDocument: { uri },
  })) as CodeLens[];
  const resolved = await Promise.all(
    found.map(async (lens) =>
      lens.command
        ? lens
        : ((await server.connection.sendRequest('codeLens/resolve', lens)) as CodeLens),
    ),
  );
  const byLine = new Map<number, CodeLens[]>();
  for (const lens of resolved) {
    byLine.set(lens.range.start.line, [...(byLine.get(lens.range.start.line) ?? []), lens]);
  }
  return byLine;
}

function lineOf(text: string, needle: string): number {
  return text.split('\n').findIndex((line) => line.includes(needle));
}

test('every lens of the example scripts is at most MAX_LENS_TITLE characters', async () => {
  for (const script of ['vad.py', 'train.py']) {
    const byLine = await lensesOf(script);
    assert.ok(byLine.size >= 3, `${script}: ${byLine.size} lens lines`);
    for (const [line, lenses] of byLine) {
      for (const lens of lenses) {
        const title = lens.command!.title;
        assert.ok(
          title.length <= MAX_LENS_TITLE,
          `${script}:${line + 1}: ${title.length}: ${title}`,
        );
      }
    }
  }
});

test('vad.py: the ✗ names the branch and says why; the full paths are in the tooltip', async () => {
  const text = await readFile(path.join(workspace, 'vad.py'), 'utf8');
  const lenses = (await lensesOf('vad.py')).get(lineOf(text, 'self.reparam_conv = '))!;
  const titles = lenses.map((lens) => lens.command!.title);
  assert.equal(titles[0], 'LayerLens: 8 matches in silero_vad_v5.onnx · 7 ✓ · 1 ✗');
  // The 8 kHz (else) branch reads 65 STFT bins, the 16 kHz (then) branch the declared 129.
  const mismatch = lenses.find((lens) => lens.command!.title.includes('✗ 128×65×3'));
  assert.ok(mismatch, titles.join(' | '));
  assert.equal(
    mismatch.command!.title,
    'else branch encoder.0 ✗ 128×65×3: branches differ, then branch encoder.0 ✓',
  );
  const tooltip = mismatch.command!.tooltip ?? '';
  assert.match(
    tooltip,
    /If_0_else_branch__Inline_0__encoder\.0\.reparam_conv: ✗ declared 128×129×3, file 128×65×3/,
  );
  assert.match(
    tooltip,
    /two branches with different shapes; If_0_then_branch__Inline_0__encoder\.0\.reparam_conv is 128×129×3/,
  );
  // The rest are counted, and the hover lists them all.
  assert.ok(titles.includes('+7 more (hover for all)'), titles.join(' | '));
  assert.equal(titles.at(-1), 'Compress…');

  const rnn = (await lensesOf('vad.py')).get(lineOf(text, 'self.rnn = '))!;
  assert.deepEqual(
    rnn.map((lens) => lens.command!.title),
    [
      'LayerLens: 2 matches in silero_vad_v5.onnx · 2 ✓',
      'else branch decoder.rnn ✓ weight_ih 512×128',
      'then branch decoder.rnn ✓ weight_ih 512×128',
      'Compress…',
    ],
  );
  assert.deepEqual(
    rnn.slice(1, 3).map((lens) => lens.command!.tooltip?.split(':')[0]),
    ['If_0_else_branch__Inline_0__decoder.rnn', 'If_0_then_branch__Inline_0__decoder.rnn'],
  );
});

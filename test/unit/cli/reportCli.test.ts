/**
 * `layerlens report`: the file it writes holds the model's data as the editor would ask for
 * it (checked against values computed here), inlines its script and stylesheet so that
 * nothing is fetched, leaves the model untouched, and refuses bad arguments and bad files.
 * The page itself runs in headless Chromium in test/webview/report.webview.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { after, before, test } from 'node:test';
import { reportCommand } from '../../../src/cli/report';
import { ModelFileError } from '../../../src/server/formats/modelFileError';
import { isStatsError } from '../../../src/shared/model';
import { REPORT_MAX_HISTOGRAMS, REPORT_MAX_SPECTRA } from '../../../src/shared/limits';
import { REPORT_DATA_ELEMENT_ID, type ReportData } from '../../../src/shared/report';
import { normalValues } from '../../support/matrices';
import {
  graph,
  makeTempFolder,
  model,
  node,
  tensor,
  valueInfo,
  writeModel,
} from '../../support/onnxBuilder';

let folder: string;
let remove: () => Promise<void>;
let original: string;
const W1 = normalValues(32 * 24, 7, 0.25);

/** A stand-in page script with the sequences that would end or comment out a `<script>`. */
let script: string;
const SCRIPT_TEXT =
  'window.__reportScript = "</script><!-- still the script";\n//# sourceMappingURL=report.js.map\n';

before(async () => {
  ({ folder, remove } = await makeTempFolder('layerlens-report-cli-'));
  original = await writeModel(
    folder,
    'net.onnx',
    model(
      graph({
        initializers: [
          tensor('fc1.weight', 'float32', [32, 24], W1),
          tensor('fc1.bias', 'float32', [24], normalValues(24, 8, 0.1)),
          tensor('fc2.weight', 'float32', [24, 8], normalValues(24 * 8, 9, 0.25)),
        ],
        inputs: [valueInfo('x', 'float32', ['batch', 32])],
        outputs: [valueInfo('y', 'float32', ['batch', 8])],
        nodes: [
          node('MatMul', ['x', 'fc1.weight'], ['h0'], { name: 'fc1' }),
          node('Add', ['h0', 'fc1.bias'], ['h1']),
          node('MatMul', ['h1', 'fc2.weight'], ['y'], { name: 'fc2' }),
        ],
      }),
    ),
  );
  script = join(folder, 'report.js');
  writeFileSync(script, SCRIPT_TEXT);
});
after(() => remove());

const assets = () => ({ script, stylesheet: 'media/layerlens.css' });

function embeddedData(html: string): ReportData {
  const open = `<script type="application/json" id="${REPORT_DATA_ELEMENT_ID}">`;
  const start = html.indexOf(open);
  assert.ok(start >= 0, 'the page embeds its data');
  const end = html.indexOf('</script>', start);
  return JSON.parse(html.slice(start + open.length, end)) as ReportData;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

test('report writes one self-contained page with the model, its statistics and spectra', async () => {
  const before = sha256(original);
  const out = join(folder, 'net.report.html');
  assert.equal(await reportCommand([original, '--html', out], assets), 0);
  assert.equal(sha256(original), before, 'the model is not modified');
  const html = readFileSync(out, 'utf8');

  // Nothing outside the file: no linked scripts, stylesheets or fonts, and a CSP that forbids them.
  assert.doesNotMatch(html, /<script[^>]*\ssrc=|<link\s|@import|url\(\s*['"]?(https?:|\/\/)/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.ok(html.includes(readFileSync('media/layerlens.css', 'utf8').slice(0, 200)));
  assert.match(html, /--vscode-editor-background: #ffffff;/);
  assert.match(
    html,
    /@media \(prefers-color-scheme: dark\)[^@]*--vscode-editor-background: #1f1f1f;/,
  );
  // The script is inlined whole, unable to end its element early; its source map is dropped.
  const inlined = /<script nonce="[^"]+">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(inlined?.includes('"<\\/script><\\x21-- still the script"'));
  const window: { __reportScript?: string } = {};
  runInNewContext(inlined!, { window });
  assert.equal(window.__reportScript, '</script><!-- still the script');
  assert.equal(html.match(/<\/script>/g)?.length, 2, 'the data and the page script, nothing else');
  assert.doesNotMatch(html, /sourceMappingURL/);

  const data = embeddedData(html);
  assert.equal(data.comparison, null);
  assert.equal(data.model.file, original);
  assert.deepEqual(
    data.model.tensors.map((t) => t.name),
    ['fc1.weight', 'fc1.bias', 'fc2.weight'],
  );
  assert.equal(data.model.summary.tensorCount, 3);
  // fc1.weight's statistics, against the values it was written with (stored as float32).
  const values = Float32Array.from(W1);
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length);
  const stats = data.model.stats[0]!;
  assert.ok(!isStatsError(stats));
  assert.equal(stats.count, 32 * 24);
  assert.ok(Math.abs(stats.mean! - mean) < 1e-6);
  assert.ok(Math.abs(stats.std! - std) < 1e-6);
  assert.equal(stats.min, Math.min(...values));
  assert.equal(stats.max, Math.max(...values));
  assert.equal(
    stats.histogram?.counts.reduce((sum, c) => sum + c, 0),
    32 * 24,
  );
  // Spectra of the weight matrices, largest first; fc1.weight's has min(32, 24) values.
  assert.ok(data.model.spectra.length <= REPORT_MAX_SPECTRA);
  assert.deepEqual(
    data.model.spectra.map((s) => s.index),
    [0, 2],
  );
  assert.equal(data.model.spectra[0]!.singularValues.length, 24);
  assert.ok(data.omitted.some((note) => /Heatmaps/.test(note)));
});

test('report --compare embeds the diff and both histograms of each pair', async () => {
  const other = join(folder, 'net.other.onnx');
  writeFileSync(other, readFileSync(original));
  const out = join(folder, 'compare.html');
  assert.equal(await reportCommand([original, '--compare', other, '--html', out], assets), 0);
  const { comparison } = embeddedData(readFileSync(out, 'utf8'));
  assert.ok(comparison);
  assert.equal(comparison.diff.pairs.length, 3);
  assert.ok(comparison.diff.pairs.every((pair) => !pair.changed));
  assert.equal(comparison.histograms.length, 3);
  // The same file on both sides: each pair's two histograms are the same.
  for (const pair of comparison.histograms) assert.deepEqual(pair.a, pair.b);
});

test('report keeps the histograms of the REPORT_MAX_HISTOGRAMS largest tensors and says what it left out', async () => {
  // Six small tensors more than the limit, and one large tensor last in the file.
  const small = REPORT_MAX_HISTOGRAMS + 5;
  const many = await writeModel(
    folder,
    'many.onnx',
    model(
      graph({
        initializers: [
          ...Array.from({ length: small }, (_, i) => tensor(`t${i}`, 'float32', [2], [i, i + 0.5])),
          tensor('big', 'float32', [16], normalValues(16, 11, 1)),
        ],
        inputs: [valueInfo('x', 'float32', [2])],
        outputs: [valueInfo('y', 'float32', [2])],
        nodes: [node('Add', ['x', 't0'], ['y'])],
      }),
    ),
  );
  const out = join(folder, 'many.html');
  assert.equal(await reportCommand([many, '--html', out], assets), 0);
  const data = embeddedData(readFileSync(out, 'utf8'));
  const kept = data.model.stats.filter((s) => !isStatsError(s) && s.histogram !== null);
  assert.equal(kept.length, REPORT_MAX_HISTOGRAMS);
  const big = data.model.stats[small]!;
  assert.ok(!isStatsError(big) && big.histogram !== null, 'the largest tensor keeps its histogram');
  // The rest keep their numbers; ties in size go by the model's order, so the last small ones lose.
  const last = data.model.stats[small - 1]!;
  assert.ok(!isStatsError(last) && last.histogram === null && last.mean === small - 1 + 0.25);
  assert.ok(
    data.omitted.some((note) => note.startsWith('Value histograms of 6 tensors')),
    data.omitted.join('\n'),
  );
});

test('report refuses a broken model with an error naming the file', async () => {
  const broken = join(folder, 'broken.onnx');
  writeFileSync(broken, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  await assert.rejects(
    reportCommand([broken, '--html', join(folder, 'broken.html')], assets),
    (error: unknown) => error instanceof ModelFileError && error.message.includes(broken),
  );
});

test('report without --html, or writing over its model, is a usage error (exit 2)', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'report', ...args], {
      encoding: 'utf8',
    });
  const missing = cli(original);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /report needs --html OUT\.html/);
  const overwrite = cli(original, '--html', original);
  assert.equal(overwrite.status, 2);
  assert.match(overwrite.stderr, /would overwrite a model/);
});

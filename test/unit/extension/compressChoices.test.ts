/** The Compress… flow's choices: methods per format, levels, custom values, row contexts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  isRowContext,
  levelChoices,
  methodChoices,
  tensorsOfRowContext,
} from '../../../src/extension/compressChoices';
import { capabilitiesOf } from '../../../src/server/formats/registry';

/** What the server sends with a summary of each format. */
const SAFETENSORS = capabilitiesOf('safetensors');
const ONNX = capabilitiesOf('onnx');
const GGUF = capabilitiesOf('gguf');

test('each format is offered the methods that apply to it', () => {
  assert.deepEqual(
    methodChoices(SAFETENSORS.compress).map((choice) => choice.method),
    ['prune', 'nm', 'int8', 'int4', 'lowrank', 'fp16', 'bf16'],
  );
  assert.deepEqual(
    methodChoices(ONNX.compress).map((choice) => choice.method),
    ['prune', 'nm', 'int8', 'int4', 'lowrank', 'fp16', 'bf16'],
  );
});

test('a GGUF is offered the llama.cpp types, as the levels of its one method', () => {
  assert.deepEqual(
    methodChoices(GGUF.compress).map((choice) => choice.method),
    ['ggml'],
  );
  assert.deepEqual(
    levelChoices('ggml', GGUF).map((choice) => [choice.label, choice.options]),
    ['Q8_0', 'Q6_K', 'Q5_K', 'Q5_0', 'Q4_K', 'Q4_0', 'IQ4_NL', 'Q3_K', 'Q2_K'].map((type) => [
      type,
      { method: 'ggml', ggmlType: type },
    ]),
  );
});

test('levels: int8 storage only for safetensors, int4 formats only for ONNX, casts ask nothing', () => {
  const int8 = levelChoices('int8', SAFETENSORS);
  assert.deepEqual(
    int8.map((level) => level.options?.storeQuantized ?? false),
    [false, true],
  );
  assert.equal(levelChoices('int8', ONNX).length, 1);
  assert.ok(
    levelChoices('int4', ONNX).some((level) => level.options?.int4Format === 'matmulnbits'),
  );
  assert.ok(
    levelChoices('int4', SAFETENSORS).every((level) => level.options?.int4Format === undefined),
  );
  assert.deepEqual(levelChoices('fp16', ONNX), [{ label: 'Float16', options: { method: 'fp16' } }]);
  assert.deepEqual(levelChoices('nm', ONNX)[0]!.options, { method: 'nm', n: 2, m: 4 });
});

test('custom levels parse what users type and explain what they refuse', () => {
  const custom = (method: 'prune' | 'nm' | 'lowrank') =>
    levelChoices(method, SAFETENSORS).find((level) => level.custom)!.custom!;
  assert.deepEqual(custom('prune').parse('65%'), { method: 'prune', sparsity: 0.65 });
  assert.equal(typeof custom('prune').parse('100'), 'string');
  assert.equal(typeof custom('prune').parse(''), 'string');
  assert.deepEqual(custom('nm').parse(' 1 : 8 '), { method: 'nm', n: 1, m: 8 });
  assert.equal(typeof custom('nm').parse('5:4'), 'string');
  assert.deepEqual(custom('lowrank').parse('24'), { method: 'lowrank', rank: 24 });
  assert.deepEqual(custom('lowrank').parse('0.97'), { method: 'lowrank', energy: 0.97 });
  assert.equal(typeof custom('lowrank').parse('-3'), 'string');
});

test('a right-clicked row compresses the selection it belongs to, or itself alone', () => {
  const context = { webview: 'layerlens.modelEditor', webviewSection: 'tensorRow' };
  assert.ok(isRowContext(context));
  assert.ok(!isRowContext({ webview: 'other.view' }));
  // A .bin checkpoint opened with the option editor is the same editor.
  assert.ok(isRowContext({ ...context, webview: 'layerlens.modelEditor.bin' }));
  assert.deepEqual(
    tensorsOfRowContext({ ...context, tensorIndex: 4, tensorIndices: [2, 4, 7] }),
    [2, 4, 7],
  );
  assert.deepEqual(tensorsOfRowContext({ ...context, tensorIndex: 5, tensorIndices: [2, 4] }), [5]);
  assert.deepEqual(tensorsOfRowContext({ ...context, tensorIndex: 3 }), [3]);
});

test('the manifest offers Compress… in the palette, the explorer and the editor rows', () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
    contributes: { menus: Record<string, { command: string; when?: string }[]> };
  };
  const menus = manifest.contributes.menus;
  assert.ok(menus.commandPalette!.some((item) => item.command === 'layerlens.compress'));
  const explorer = menus['explorer/context']!.find((item) => item.command === 'layerlens.compress');
  assert.match(explorer?.when ?? '', /resourceExtname == \.onnx/);
  assert.match(explorer?.when ?? '', /resourceExtname == \.safetensors/);
  const webview = menus['webview/context']!.find((item) => item.command === 'layerlens.compress');
  // The regular expression that accepts every view type is checked in manifest.test.ts.
  assert.match(webview?.when ?? '', /webviewId =~ \/\^layerlens/);
  assert.match(webview?.when ?? '', /webviewSection == 'tensorRow'/);
});

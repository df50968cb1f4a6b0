/** The Compress… flow's choices: methods per format, levels, custom values, row contexts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  isRowContext,
  levelChoices,
  methodChoices,
  tensorsOfRowContext,
  weightBits,
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

/** The size text of each offered method, by method. */
function sizes(capabilities: ReturnType<typeof capabilitiesOf>, bits?: number) {
  return Object.fromEntries(
    methodChoices(capabilities.compress, capabilities, bits).map((c) => [c.method, c.description]),
  );
}

test('ONNX: each method says what it does to the file size, from the format capabilities', () => {
  const text = sizes(ONNX, 32);
  assert.match(text.prune!, /^same size: zeros stored densely \(no sparse storage/);
  assert.match(text.nm!, /^same size: zeros stored densely/);
  assert.equal(text.int8, 'smaller: ~4.0× (8 bits a weight, plus a scale per output channel)');
  assert.equal(text.int4, 'smaller: ~8.0× (4 bits a weight, plus a scale per block)');
  assert.equal(text.fp16, 'smaller: ~2.0× (16 bits a weight)');
  assert.match(text.lowrank!, /^smaller when rank × \(rows \+ cols\) < rows × cols$/);
  // Against the model's own weights: a float16 model gains nothing from fp16.
  assert.equal(sizes(ONNX, 16).fp16, 'no smaller: the weights are 16-bit already');
  assert.equal(
    sizes(ONNX, 16).int8,
    'smaller: ~2.0× (8 bits a weight, plus a scale per output channel)',
  );
  assert.equal(
    sizes(ONNX).int4,
    'smaller: ~8.0× from float32 (4 bits a weight, plus a scale per block)',
  );
});

test('safetensors: round trips say "same size", and only int8 + scales shrinks among them', () => {
  const text = sizes(SAFETENSORS, 32);
  assert.match(text.prune!, /^same size: zeros stored densely/);
  assert.match(text.int4!, /^same size: int4 rounding only, stored back in the original dtype$/);
  assert.match(text.lowrank!, /^same size: the rank-r product is stored back as a dense tensor/);
  assert.equal(
    text.int8,
    'Fake-quant: same size: int8 rounding only, stored back in the original dtype; ' +
      'Int8 + scales: smaller: ~4.0× (8 bits a weight, plus a float32 scale per output channel)',
  );
  assert.equal(text.bf16, 'smaller: ~2.0× (16 bits a weight)');
  const int8 = levelChoices('int8', SAFETENSORS, 32);
  assert.match(int8[0]!.description!, /— same size: int8 rounding only/);
  assert.match(int8[1]!.description!, /— smaller: ~4\.0×/);
  assert.ok(
    levelChoices('prune', SAFETENSORS, 32)
      .filter((level) => level.options)
      .every((level) => /^same size: zeros stored densely/.test(level.description ?? '')),
    'every prune level says it keeps the size',
  );
  assert.match(levelChoices('nm', SAFETENSORS, 32)[0]!.description!, /same size/);
});

test('PyTorch checkpoints are written as safetensors and say the same; GGUF offers its ggml types', () => {
  const pytorch = capabilitiesOf('pytorch');
  assert.deepEqual(sizes(pytorch, 32), sizes(SAFETENSORS, 32));
  const gguf = capabilitiesOf('gguf');
  const choices = methodChoices(gguf.compress, gguf);
  assert.deepEqual(
    choices.map((choice) => choice.method),
    ['ggml'],
  );
  // The bits a weight of each type, from the ggml type table: Q4_K stores 144 bytes per 256.
  assert.match(choices[0]!.description!, /^smaller by the type chosen: .*Q4_K 4\.5,/);
});

test('the size text comes from the capabilities: none sent, none said', () => {
  assert.ok(
    methodChoices(undefined, undefined).every((choice) => choice.description === undefined),
  );
  const own = {
    ...ONNX,
    fileSize: { ...ONNX.fileSize, prune: { kind: 'bits', bits: 2 } as const },
  };
  assert.match(sizes(own, 32).prune!, /^smaller: ~16\.0×/);
});

test("weightBits: the floating-point type holding most of the model's bytes", () => {
  assert.equal(weightBits({ bytesByDType: { float16: 900, float32: 100, int64: 5000 } }), 16);
  assert.equal(weightBits({ bytesByDType: { float32: 900, bfloat16: 100 } }), 32);
  assert.equal(weightBits({ bytesByDType: { int8: 100 } }), undefined);
});

/**
 * The GGUF writer: a generated F16/F32/BF16 llama-shaped model re-typed per tensor, read
 * back by LayerLens's reader and by @huggingface/gguf's independent parser.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { dequantizeReference } from '../../../../../src/server/analysis/ggmlDequant';
import { decodeValues } from '../../../../../src/server/analysis/decode';
import { quantizeGgml } from '../../../../../src/server/compress/ggml';
import {
  ggufFileBytes,
  writeRetypedGguf,
} from '../../../../../src/server/compress/ggml/ggufWriter';
import { readGgufHeader, type GgufHeader } from '../../../../../src/server/formats/gguf/header';
import { openModelFile } from '../../../../../src/server/formats/registry';
import type { GgmlQuantType } from '../../../../../src/shared/compressMethods';
import { writeGgufLlm } from '../../../../support/ggufFixtures';
import { makeTempDir } from '../../../../support/safetensorsBuilder';

const ALIGNMENT = 64;

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function tensorBytes(header: GgufHeader, name: string): Uint8Array {
  const info = header.tensors.find((t) => t.name === name)!;
  return new Uint8Array(
    readFileSync(header.path).subarray(info.offset, info.offset + info.byteLength),
  );
}

describe('re-typing a GGUF', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let source: string;
  let header: GgufHeader;
  const choices = new Map<string, GgmlQuantType>([
    ['token_embd.weight', 'Q8_0'],
    ['blk.0.attn_q.weight', 'Q4_K'],
    ['blk.0.attn_k.weight', 'Q3_K'],
    ['blk.0.attn_v.weight', 'Q6_K'],
    ['blk.0.attn_output.weight', 'Q5_K'],
    ['blk.0.ffn_gate.weight', 'Q2_K'],
    ['blk.0.ffn_up.weight', 'IQ4_NL'],
    ['blk.0.ffn_down.weight', 'Q5_0'],
    ['blk.1.attn_q.weight', 'Q4_0'],
    ['output.weight', 'Q6_K'],
  ]);

  before(async () => {
    ({ dir, remove } = await makeTempDir('layerlens-gguf-write-'));
    source = join(dir, 'model.gguf');
    writeGgufLlm(source, { layers: 2, width: 256, ff: 512, vocab: 512, alignment: ALIGNMENT });
    header = readGgufHeader(source);
  });
  after(() => remove());

  it('writes the predicted size, readable by LayerLens with the chosen types and values', async () => {
    const before = sha(source);
    const written = await writeRetypedGguf(source, choices);
    assert.equal(written.path, join(dir, 'model.retyped.gguf'));
    assert.equal(sha(source), before, 'the original is untouched');
    assert.equal(statSync(written.path).size, ggufFileBytes(header, choices));
    assert.equal(written.bytes, statSync(written.path).size);
    assert.ok(written.bytes < header.fileBytes, `${written.bytes} vs ${header.fileBytes}`);

    const back = readGgufHeader(written.path);
    assert.deepEqual(back.warnings, []);
    assert.equal(back.alignment, ALIGNMENT);
    assert.deepEqual(
      back.metadata.map((e) => [e.key, e.text]),
      header.metadata.map((e) => [e.key, e.text]),
    );
    assert.deepEqual(
      back.tensors.map((t) => [t.name, t.ne]),
      header.tensors.map((t) => [t.name, t.ne]),
    );
    for (const tensor of back.tensors) {
      assert.equal((tensor.offset - back.dataOffset) % ALIGNMENT, 0, tensor.name);
      const original = header.tensors.find((t) => t.name === tensor.name)!;
      const chosen = choices.get(tensor.name);
      if (!chosen) {
        assert.equal(tensor.type.name, original.type.name);
        assert.deepEqual(tensorBytes(back, tensor.name), tensorBytes(header, tensor.name));
        continue;
      }
      assert.equal(tensor.type.name, chosen);
      const values = Float32Array.from(
        decodeValues(
          original.type.plain as 'float16',
          tensorBytes(header, tensor.name),
          original.elements,
        ),
      );
      const stored = tensorBytes(back, tensor.name);
      assert.deepEqual(stored, quantizeGgml(chosen, values), tensor.name);
      const restored = dequantizeReference(
        chosen,
        stored,
        original.elements / tensor.type.blockElements,
        new Float32Array(original.elements),
      );
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < values.length; i++) {
        diff += (values[i]! - restored[i]!) ** 2;
        norm += values[i]! ** 2;
      }
      assert.ok(Math.sqrt(diff / norm) < 0.35, `${tensor.name}: ${Math.sqrt(diff / norm)}`);
    }
    const opened = await openModelFile(written.path);
    const q = opened.tensors.find((t) => t.info.name === 'blk.0.attn_q.weight')!;
    assert.equal(q.info.encoding?.scheme, 'Q4_K');
    assert.equal(q.info.encoding?.notDecoded, null);
  });

  it('reads back identically with @huggingface/gguf: tensor infos, aligned offsets', async () => {
    const out = join(dir, 'hf-check.gguf');
    await writeRetypedGguf(source, choices, { outPath: out });
    const parsed = await gguf(out, { allowLocalFile: true });
    const ours = readGgufHeader(out);
    assert.equal((parsed.metadata as Record<string, unknown>)['general.alignment'], ALIGNMENT);
    assert.equal(parsed.metadata['general.architecture'], 'llama');
    assert.equal(Number(parsed.tensorDataOffset), ours.dataOffset);
    assert.equal(parsed.tensorInfos.length, ours.tensors.length);
    parsed.tensorInfos.forEach((info, i) => {
      const mine = ours.tensors[i]!;
      assert.equal(info.name, mine.name);
      assert.deepEqual(info.shape.map(Number), mine.ne);
      assert.equal(info.dtype, mine.type.id);
      assert.equal(Number(info.offset) + ours.dataOffset, mine.offset);
      assert.equal(Number(info.offset) % ALIGNMENT, 0);
    });
  });

  it('never overwrites, and refuses what it cannot write, naming the tensor', async () => {
    const out = join(dir, 'model.gguf');
    await assert.rejects(writeRetypedGguf(source, choices, { outPath: out }), /never overwrites/);
    const second = await writeRetypedGguf(source, new Map([['blk.1.ffn_up.weight', 'Q8_0']]));
    assert.match(second.path, /model\.retyped-1\.gguf$/);
    await assert.rejects(
      writeRetypedGguf(second.path, new Map([['blk.1.ffn_up.weight', 'Q4_0']])),
      /"blk\.1\.ffn_up\.weight" is Q8_0; only F32, F16 and BF16 tensors are re-typed/,
    );
    await assert.rejects(
      writeRetypedGguf(source, new Map([['missing.weight', 'Q4_0']])),
      /no tensor is named "missing\.weight"/,
    );
  });
});

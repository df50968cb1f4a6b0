import assert from 'node:assert/strict';
import { mkdir, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { safetensorsFormat } from '../../../../src/server/formats/safetensors';
import { ModelFileError } from '../../../../src/server/formats/types';
import { MAX_SAFETENSORS_HEADER_BYTES, MAX_TENSOR_RANK } from '../../../../src/shared/limits';
import {
  encodeSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
  type SafetensorsTensor,
} from '../../../support/safetensorsBuilder';
import { useTempFolder } from '../../../support/tempFolder';

const dir = useTempFolder('layerlens-st-');

let fileCounter = 0;
async function writeBytes(
  bytes: Uint8Array,
  name = `bad-${++fileCounter}.safetensors`,
): Promise<string> {
  const path = join(dir(), name);
  await writeFile(path, bytes);
  return path;
}

/** Opening `path` fails with a ModelFileError naming `file` (default: `path`) and matching `problem`. */
async function assertRejects(path: string, problem: RegExp, file = path): Promise<void> {
  await assert.rejects(safetensorsFormat.open(path), (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `expected a ModelFileError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.problem, problem);
    assert.ok(error.message.includes(file));
    return true;
  });
}

const oneTensor = (offsets: [number, number], extra: Record<string, unknown> = {}) => ({
  w: { dtype: 'F32', shape: [2], data_offsets: offsets, ...extra },
});

test('a file shorter than the 8-byte length field', async () => {
  await assertRejects(
    await writeBytes(new Uint8Array([1, 0, 0]), 'short.safetensors'),
    /3 bytes long, too short/,
  );
});

test('a header length beyond the limit', async () => {
  const bytes = encodeSafetensors(oneTensor([0, 8]), new Uint8Array(8));
  new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_SAFETENSORS_HEADER_BYTES) + 1n, true);
  await assertRejects(await writeBytes(bytes), /more than the limit/);
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  await assertRejects(await writeBytes(bytes), /more than the limit/);
});

test('a header length beyond the end of the file', async () => {
  const bytes = encodeSafetensors(oneTensor([0, 8]), new Uint8Array(0));
  new DataView(bytes.buffer).setBigUint64(0, 4096n, true);
  await assertRejects(await writeBytes(bytes), /claims 4096 bytes, but the file holds only \d+/);
});

test('a file truncated inside its data section', async () => {
  const path = await writeSafetensors(join(dir(), 'truncated.safetensors'), [
    { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    { name: 'b', dtype: 'F32', shape: [4], data: new Float32Array(4) },
  ]);
  await truncate(path, (await stat(path)).size - 5);
  await assertRejects(
    path,
    /tensor "b": data_offsets \[16, 32\] lie outside the data section \(27 bytes\)/,
  );
});

test('a header that is not valid JSON, or not an object', async () => {
  await assertRejects(
    await writeBytes(encodeSafetensors('{"w": {"dtype": "F32",', new Uint8Array(0))),
    /not valid JSON/,
  );
  await assertRejects(
    await writeBytes(encodeSafetensors([1, 2], new Uint8Array(0))),
    /not a JSON object/,
  );
  await assertRejects(
    await writeBytes(encodeSafetensors('null', new Uint8Array(0))),
    /not a JSON object/,
  );
  await assertRejects(
    await writeBytes(encodeSafetensors({ w: 3 }, new Uint8Array(0))),
    /tensor "w": its header entry is not an object/,
  );
});

test('an unknown dtype', async () => {
  await assertRejects(
    await writeBytes(
      encodeSafetensors(
        { w: { dtype: 'F4', shape: [2], data_offsets: [0, 1] } },
        new Uint8Array(1),
      ),
    ),
    /tensor "w": unknown dtype "F4"/,
  );
  await assertRejects(
    await writeBytes(
      encodeSafetensors(
        { w: { dtype: 'toString', shape: [], data_offsets: [0, 0] } },
        new Uint8Array(0),
      ),
    ),
    /unknown dtype "toString"/,
  );
});

test('shapes with negative, fractional or non-numeric dimensions, or too many of them', async () => {
  const shapes: [unknown, RegExp][] = [
    [[-1, 2], /not a non-negative integer/],
    [[1.5], /not a non-negative integer/],
    [['2'], /not a non-negative integer/],
    [[2 ** 53], /not a non-negative integer/],
    ['2', /not a list of dimensions/],
    [new Array(MAX_TENSOR_RANK + 1).fill(1), /rank 33 exceeds the limit of 32/],
    [[2 ** 30, 2 ** 30, 2 ** 30], /too many elements/],
  ];
  for (const [shape, problem] of shapes) {
    await assertRejects(
      await writeBytes(encodeSafetensors(oneTensor([0, 8], { shape }), new Uint8Array(8))),
      problem,
    );
  }
});

test('data offsets outside the data section or malformed', async () => {
  const cases: [unknown, RegExp][] = [
    [[0, 16], /\[0, 16\] lie outside the data section \(8 bytes\)/],
    [[-8, 0], /lie outside the data section/],
    [[8, 0], /lie outside the data section/],
    [[0], /not a pair/],
    [[0, '8'], /are not integers/],
    [[0.5, 8.5], /are not integers/],
  ];
  for (const [offsets, problem] of cases) {
    await assertRejects(
      await writeBytes(
        encodeSafetensors(
          { w: { dtype: 'F32', shape: [2], data_offsets: offsets } },
          new Uint8Array(8),
        ),
      ),
      problem,
    );
  }
});

test('a byte range that does not match the shape and dtype', async () => {
  await assertRejects(
    await writeBytes(
      encodeSafetensors(
        { w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } },
        new Uint8Array(8),
      ),
    ),
    /tensor "w": data_offsets \[0, 8\] span 8 bytes, but shape \[3\] of F16 needs 6/,
  );
});

test('overlapping and duplicated byte ranges are refused', async () => {
  const overlapping = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  };
  await assertRejects(
    await writeBytes(encodeSafetensors(overlapping, new Uint8Array(12))),
    /"a" \[0, 8\] and "b" \[4, 12\] overlap/,
  );
  const duplicated = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'I32', shape: [2], data_offsets: [0, 8] },
  };
  await assertRejects(
    await writeBytes(encodeSafetensors(duplicated, new Uint8Array(8))),
    /overlap/,
  );
});

const tensor = (name: string): SafetensorsTensor => ({
  name,
  dtype: 'F32',
  shape: [1],
  data: new Float32Array([1]),
});

test('shard paths must stay inside the index folder', async () => {
  const shardDir = join(dir(), 'escape', 'model');
  await writeSafetensors(join(dir(), 'escape', 'outside.safetensors'), [tensor('x')]);
  for (const shardName of [
    '../outside.safetensors',
    '/etc/passwd',
    'C:\\models\\a.safetensors',
    'sub/../../outside.safetensors',
  ]) {
    const indexPath = await writeShardedSafetensors(shardDir, [], { weightMap: { x: shardName } });
    await assertRejects(indexPath, /must be a file name inside the model's folder/);
  }
  await mkdir(shardDir, { recursive: true });
  await symlink(join(dir(), 'escape', 'outside.safetensors'), join(shardDir, 'linked.safetensors'));
  const indexPath = await writeShardedSafetensors(shardDir, [], {
    weightMap: { x: 'linked.safetensors' },
  });
  await assertRejects(indexPath, /links to a file outside the model's folder/);
});

test('a missing shard is named in the error', async () => {
  const shardDir = join(dir(), 'missing');
  const indexPath = await writeShardedSafetensors(
    shardDir,
    [{ file: 'present.safetensors', tensors: [tensor('a')] }],
    {
      weightMap: { a: 'present.safetensors', b: 'absent.safetensors' },
    },
  );
  await assertRejects(
    indexPath,
    /listed in model\.safetensors\.index\.json, is missing/,
    join(shardDir, 'absent.safetensors'),
  );
});

test('a tensor listed in the weight map but absent from its shard', async () => {
  const shardDir = join(dir(), 'absent-tensor');
  const indexPath = await writeShardedSafetensors(
    shardDir,
    [{ file: 'part.safetensors', tensors: [tensor('a')] }],
    {
      weightMap: { a: 'part.safetensors', ghost: 'part.safetensors' },
    },
  );
  await assertRejects(
    indexPath,
    /tensor "ghost" is listed for this shard .* but is not in it/,
    join(shardDir, 'part.safetensors'),
  );
});

test('a malformed shard is reported against the shard file', async () => {
  const shardDir = join(dir(), 'bad-shard');
  const indexPath = await writeShardedSafetensors(shardDir, [], {
    weightMap: { a: 'broken.safetensors' },
  });
  await writeFile(join(shardDir, 'broken.safetensors'), new Uint8Array([9, 9]));
  await assertRejects(indexPath, /too short/, join(shardDir, 'broken.safetensors'));
});

test('JSON that is not a safetensors index is refused clearly', async () => {
  await assertRejects(
    await writeBytes(new TextEncoder().encode('{"name": "package"}'), 'package.json'),
    /not a safetensors index/,
  );
  await assertRejects(
    await writeBytes(new TextEncoder().encode('{"weight_map": '), 'cut.index.json'),
    /not valid JSON/,
  );
  await assertRejects(
    await writeBytes(new TextEncoder().encode('{"weight_map": {"a": 7}}'), 'numbers.index.json'),
    /weight map entry of tensor "a" is not a file name/,
  );
});

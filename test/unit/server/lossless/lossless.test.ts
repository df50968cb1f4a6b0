/**
 * Lossless packing (.llz): byte grouping and the rANS coder, byte-for-byte round trips of
 * real and generated files (every dtype, empty and tiny tensors, odd sizes, unaligned
 * data, a multi-GB sparse file), single-tensor extraction, fine-tune XOR deltas, corrupt
 * containers, and packed files opened as models.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { openModelFile } from '../../../../src/server/formats/registry';
import { computeTensorStats, workerSourceOf } from '../../../../src/server/jobs/computeStats';
import { WorkerPool } from '../../../../src/server/jobs/workerPool';
import { ModelFileError } from '../../../../src/server/formats/types';
import {
  BYTE_LAYOUTS,
  joinStreams,
  splitStreams,
} from '../../../../src/server/lossless/byteGroups';
import {
  ChunkFormatError,
  crc32,
  decodeChunk,
  encodeChunk,
  repeatsValues,
} from '../../../../src/server/lossless/chunkCodec';
import {
  LLZ_TRAILER_BYTES,
  LLZ_VERSION,
  llzTrailer,
  readContainer,
} from '../../../../src/server/lossless/container';
import {
  CHUNKS_PER_JOB,
  chunksPerJob,
  FILE_DECODE_CHUNKS_PER_JOB,
  fileDecodeChunksPerJob,
  losslessWorkerScript,
  poolRunner,
  type AnalyseResult,
  type DecodeResult,
  type EncodeResult,
  type LosslessJob,
  type LosslessResult,
} from '../../../../src/server/lossless/jobs';
import { extractTensor, packFile, unpackFile } from '../../../../src/server/lossless/pack';
import { byteHistogram, ransDecode, ransEncode } from '../../../../src/server/lossless/rans';
import { xxh64Reference } from '../../../../src/server/lossless/chunkHash';
import { LosslessService } from '../../../../src/server/lossless/service';
import { ModelService } from '../../../../src/server/modelService';
import { seededNormal } from '../../../../src/server/runtime/sampleInputs';
import { isCompressibilityError } from '../../../../src/shared/lossless';
import { fixtureOriginal } from '../../../support/llzFixtures';
import { expectedChunkDigest } from '../../../support/llzIndex';
import { encodeModel, graph, model, node, rawTensor, tensor } from '../../../support/onnxBuilder';
import {
  encodeSafetensors,
  layoutSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
  type SafetensorsDType,
} from '../../../support/safetensorsBuilder';
import { temporaryFolder } from '../../../../src/server/tempFiles';

const SILERO = ['legacy', 'v5', 'v6'].map((version) =>
  resolve(`node_modules/@ricky0123/vad-web/dist/silero_vad_${version}.onnx`),
);

let folder: string;
let pool: WorkerPool<LosslessJob, LosslessResult>;

before(async () => {
  folder = await fs.mkdtemp(join((await import('node:os')).tmpdir(), 'layerlens-lossless-'));
  pool = new WorkerPool<LosslessJob, LosslessResult>(2, losslessWorkerScript());
});
after(async () => {
  pool.dispose();
  await fs.rm(folder, { recursive: true, force: true });
});

/** Deterministic pseudo-random bytes. */
function randomBytesOf(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed * 2654435761 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** Gaussian-like float32 weights (sum of uniforms), deterministic. */
function weights(count: number, seed = 7, scale = 0.02): Float32Array {
  const values = new Float32Array(count);
  const noise = randomBytesOf(count * 3, seed);
  for (let i = 0; i < count; i++) {
    values[i] = ((noise[3 * i]! + noise[3 * i + 1]! + noise[3 * i + 2]!) / 765 - 0.5) * 6 * scale;
  }
  return values;
}

function bf16Of(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Uint16Array.from(words, (word) => word >>> 16);
}

async function sha256(filePath: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(filePath))
    .digest('hex');
}

/** Temporary files left beside the outputs or in LayerLens's temporary folder. */
async function leftovers(): Promise<string[]> {
  return [
    ...(await fs.readdir(folder)).filter((name) => name.endsWith('.tmp')),
    ...(await fs.readdir(temporaryFolder())),
  ];
}

/** Pack and unpack `file`; assert the unpacked bytes equal the original's. */
async function roundTrip(file: string, options: { chunkBytes?: number; base?: string } = {}) {
  const packed = `${file}.llz`;
  const unpacked = `${file}.unpacked`;
  const runner = poolRunner(pool);
  const packResult = await packFile(file, { ...options, runner });
  const unpackResult = await unpackFile(packed, { out: unpacked, base: options.base, runner });
  const original = await fs.readFile(file);
  assert.ok(Buffer.from(await fs.readFile(unpacked)).equals(original), `${file} round trip`);
  const expected = expectedChunkDigest(await fs.readFile(packed), original);
  assert.equal(packResult.digest, expected);
  assert.equal(unpackResult.digest, expected);
  return { packed, unpacked, packResult };
}

describe('byte grouping and coding', () => {
  test('every layout splits and joins back any length', () => {
    for (const layout of BYTE_LAYOUTS) {
      for (const length of [0, 1, 2, 3, 7, 8, 9, 1001, 4096 + 5]) {
        const bytes = randomBytesOf(length, length + 3);
        const streams = splitStreams(layout, bytes);
        const joined = joinStreams(layout, streams, new Uint8Array(length));
        assert.deepEqual(joined, bytes, `${layout} × ${length}`);
        const chunk = encodeChunk(layout, bytes);
        assert.deepEqual(decodeChunk(layout, chunk.payload, length), bytes, `${layout} chunk`);
      }
    }
  });

  test('bf16 grouping puts the whole exponent in one byte and the sign with the mantissa', () => {
    // 1.0 is 0x3f80: sign 0, exponent 127, mantissa 0; −2.5 is 0xc020: sign 1, exponent 128.
    const [exponent, signMantissa] = splitStreams('bf16', new Uint8Array([0x80, 0x3f, 0x20, 0xc0]));
    assert.deepEqual([...exponent!], [127, 128]);
    assert.deepEqual([...signMantissa!], [0x00, 0x80 | 0x20]);
  });

  test('rANS round-trips skewed streams close to their entropy and rejects corruption', () => {
    const symbols = new Uint8Array(100_000);
    const noise = randomBytesOf(symbols.length, 5);
    for (let i = 0; i < symbols.length; i++)
      symbols[i] = 120 + (noise[i]! % 4 === 0 ? noise[i]! % 7 : 3);
    const counts = byteHistogram(symbols);
    const encoded = ransEncode(symbols, counts);
    assert.deepEqual(ransDecode(encoded, symbols.length), symbols);
    assert.ok(encoded.length < symbols.length / 3, `${encoded.length} bytes`);
    const corrupt = encoded.slice();
    corrupt[corrupt.length - 10]! ^= 0x40;
    assert.throws(() => {
      const decoded = ransDecode(corrupt, symbols.length);
      // A flip that still decodes must at least change the symbols.
      assert.notDeepEqual(decoded, symbols);
      throw new Error('changed');
    });
  });

  test('a job codes a run of chunks, each decodable alone, and names a corrupt one', async () => {
    const values = weights(5 * 1024 + 100, 13);
    const bytes = new Uint8Array(values.buffer);
    const chunkBytes = 4096;
    const job = (copy: Uint8Array): LosslessJob => ({
      op: 'encode',
      layout: 'f32',
      generic: false,
      bytes: copy,
      chunkBytes,
    });
    const encoded = (await pool.run(job(bytes.slice()))) as EncodeResult;
    assert.equal(encoded.payloadLengths.length, 6);
    let at = 0;
    const chunks = encoded.payloadLengths.map((payloadLength, c) => {
      const raw = bytes.subarray(c * chunkBytes, (c + 1) * chunkBytes);
      // Each payload is the chunk's own, and the CRC that of its original bytes.
      assert.deepEqual(
        encoded.payload.subarray(at, at + payloadLength),
        encodeChunk('f32', raw).payload,
      );
      assert.equal(encoded.checks[c], crc32(raw));
      at += payloadLength;
      return {
        payloadLength,
        rawLength: raw.length,
        crc: encoded.checks[c]!,
        where: `chunk ${c} of tensor "w"`,
      };
    });
    const decode = (payload: Uint8Array) =>
      pool.run({ op: 'decode', layout: 'f32', payload, chunks, file: 'model.llz' });
    const decoded = (await decode(encoded.payload.slice())) as DecodeResult;
    assert.deepEqual(decoded.bytes, bytes);
    const corrupt = encoded.payload.slice();
    const third = chunks[0]!.payloadLength + chunks[1]!.payloadLength + chunks[2]!.payloadLength;
    corrupt[third + chunks[3]!.payloadLength - 3]! ^= 0x10;
    await assert.rejects(decode(corrupt), (error: Error) => {
      assert.ok(error instanceof ModelFileError, String(error));
      assert.match(error.message, /model\.llz: chunk 3 of tensor "w" is corrupt/);
      return true;
    });
    // Jobs hold up to CHUNKS_PER_JOB chunks, fewer for short runs (at least four jobs).
    assert.deepEqual([1, 4, 5, 9, 31, 32, 1000].map(chunksPerJob), [
      1,
      1,
      2,
      3,
      CHUNKS_PER_JOB,
      CHUNKS_PER_JOB,
      CHUNKS_PER_JOB,
    ]);
    // Decoding file to file, up to FILE_DECODE_CHUNKS_PER_JOB.
    assert.deepEqual([1, 9, 100, 128, 1000].map(fileDecodeChunksPerJob), [
      1,
      3,
      25,
      FILE_DECODE_CHUNKS_PER_JOB,
      FILE_DECODE_CHUNKS_PER_JOB,
    ]);
  });

  test('Gaussian bf16 and f32 weights pack near the exponent-entropy bound', () => {
    const values = weights(1 << 17);
    const bf16 = new Uint8Array(bf16Of(values).buffer);
    const f32 = new Uint8Array(values.buffer);
    assert.ok(encodeChunk('bf16', bf16).payload.length / bf16.length < 0.7);
    assert.ok(encodeChunk('f32', f32).payload.length / f32.length < 0.86);
  });

  test('a chunk that repeats values (a DFT basis) is coded whole by brotli; weights are not', () => {
    // Rows cos(2πkn/N) and sin(2πkn/N), as the STFT of a speech model stores them.
    const n = 256;
    const basis = new Float32Array(2 * 64 * n);
    for (let k = 0; k < 64; k++) {
      for (let t = 0; t < n; t++) {
        basis[k * n + t] = Math.cos((2 * Math.PI * k * t) / n);
        basis[(64 + k) * n + t] = Math.sin((2 * Math.PI * k * t) / n);
      }
    }
    const raw = new Uint8Array(basis.buffer);
    assert.ok(repeatsValues('f32', raw));
    const chunk = encodeChunk('f32', raw);
    assert.equal(chunk.payload[0], 255, 'coded whole');
    assert.ok(chunk.payload.length < raw.length * 0.3, `${chunk.payload.length} bytes`);
    // The byte groups' own coding is still reported, for the exponent-entropy bound.
    assert.ok(chunk.groupedBytes > chunk.payload.length);
    assert.deepEqual(decodeChunk('f32', chunk.payload, raw.length), raw);
    // Written into a caller's buffer, as the jobs do.
    const into = new Uint8Array(raw.length + 1);
    const placed = encodeChunk('f32', raw, false, undefined, into);
    assert.equal(placed.payload.buffer, into.buffer);
    assert.deepEqual(decodeChunk('f32', placed.payload, raw.length), raw);

    // Trained-like weights, sparse ones included, and bf16 pairs do not repeat.
    const next = seededNormal(3);
    const gaussian = Float32Array.from({ length: 1 << 16 }, () => 0.02 * next());
    assert.equal(repeatsValues('f32', new Uint8Array(gaussian.buffer)), false);
    assert.equal(repeatsValues('bf16', new Uint8Array(bf16Of(gaussian).buffer)), false);
    const sparse = gaussian.map((v, i) => (i % 4 === 0 ? v : 0));
    assert.equal(repeatsValues('f32', new Uint8Array(sparse.buffer)), false);
    assert.notEqual(encodeChunk('f32', new Uint8Array(gaussian.buffer)).payload[0], 255);
    // Integer planes and plain bytes are never sampled.
    assert.equal(repeatsValues('bytes', raw), false);
    assert.equal(repeatsValues('planes4', raw), false);

    // A damaged brotli chunk is refused, never decoded into wrong bytes.
    const damaged = chunk.payload.slice(0, chunk.payload.length - 9);
    assert.throws(() => decodeChunk('f32', damaged, raw.length), ChunkFormatError);
    const flipped = chunk.payload.slice();
    flipped[20] ^= 0x5a;
    assert.throws(() => decodeChunk('f32', flipped, raw.length), ChunkFormatError);
    assert.throws(() => decodeChunk('f32', chunk.payload, raw.length - 4), ChunkFormatError);
  });
});

describe('round trips', () => {
  test('safetensors with every dtype, empty and tiny tensors, odd sizes and unaligned data', async () => {
    const dtypes: [SafetensorsDType, number][] = [
      ['F64', 8],
      ['F32', 4],
      ['F16', 2],
      ['BF16', 2],
      ['F8_E4M3', 1],
      ['F8_E5M2', 1],
      ['I64', 8],
      ['U64', 8],
      ['I32', 4],
      ['U32', 4],
      ['I16', 2],
      ['U16', 2],
      ['I8', 1],
      ['U8', 1],
      ['BOOL', 1],
    ];
    const tensors = dtypes.flatMap(([dtype, size], d) =>
      [0, 1, 3, 1037].map((count) => ({
        name: `t${d}.${dtype}.${count}`,
        dtype,
        shape: [count],
        data: randomBytesOf(count * size, d * 31 + count),
      })),
    );
    // A float tensor with real weight statistics, spanning several chunks.
    tensors.push({
      name: 'w.f32',
      dtype: 'F32',
      shape: [5003],
      data: new Uint8Array(weights(5003).buffer),
    });
    const { header, data } = layoutSafetensors(tensors, { metadata: { format: 'pt' } });
    // Unpadded header: the data section starts at an odd offset.
    const bytes = encodeSafetensors(header, data, false);
    const file = join(folder, 'every-dtype.safetensors');
    await fs.writeFile(file, bytes);
    const { packed, packResult } = await roundTrip(file, { chunkBytes: 1024 });
    assert.equal(packResult.tensors, tensors.filter((t) => t.data.byteLength > 0).length);
    const container = await readContainer(packed);
    assert.ok(
      container.index.segments.some((s) => s.chunks.length > 3),
      'several chunks per tensor',
    );
    assert.deepEqual(await leftovers(), []);
  });

  test('ONNX with raw initializers of several dtypes', async () => {
    const m = model(
      graph({
        nodes: [
          node('MatMul', ['x', 'w'], ['y'], { name: 'mm' }),
          node('Add', ['y', 'b'], ['z'], { name: 'add' }),
        ],
        initializers: [
          rawTensor('w', 'float32', [33, 7], new Uint8Array(weights(33 * 7).buffer)),
          rawTensor('h', 'float16', [9], randomBytesOf(18, 2)),
          rawTensor('bf', 'bfloat16', [11], randomBytesOf(22, 3)),
          rawTensor('i', 'int64', [5], randomBytesOf(40, 4)),
          rawTensor('q', 'int8', [13], randomBytesOf(13, 5)),
          tensor('b', 'float32', [3], [1, 2, 3], 'typed'),
        ],
      }),
    );
    const file = join(folder, 'small.onnx');
    await fs.writeFile(file, encodeModel(m));
    await roundTrip(file, { chunkBytes: 64 });
  });

  test('the three Silero VAD models, byte for byte', async () => {
    for (const original of SILERO) {
      const file = join(folder, original.split('/').pop()!);
      await fs.copyFile(original, file);
      const { packed, packResult } = await roundTrip(file);
      assert.equal(
        packResult.digest,
        expectedChunkDigest(await fs.readFile(packed), await fs.readFile(original)),
      );
      assert.ok(packResult.packedBytes < packResult.originalBytes * 0.9, file);
      // The STFT basis (a DFT matrix, values repeated) is coded whole by brotli.
      const container = await readContainer(packed);
      const bytes = new Uint8Array(await fs.readFile(packed));
      const basis = container.index.segments.find((s) => s.name?.endsWith('forward_basis_buffer'));
      assert.ok(basis, `${file} has an STFT basis`);
      assert.equal(bytes[basis.chunks[0]![0]], 255);
    }
  });

  test('a sparse 2.2 GB safetensors file packs small and unpacks sparse, fast', async () => {
    const bigBytes = 2 ** 31 + 4096;
    const tail = weights(1000, 11);
    const header = {
      big: { dtype: 'U8', shape: [bigBytes], data_offsets: [0, bigBytes] },
      tail: { dtype: 'F32', shape: [1000], data_offsets: [bigBytes, bigBytes + 4000] },
    };
    const head = encodeSafetensors(header, new Uint8Array(0));
    const file = join(folder, 'sparse.safetensors');
    const handle = await fs.open(file, 'wx');
    await handle.write(head, 0, head.length, 0);
    await handle.write(new Uint8Array([1, 2, 3]), 0, 3, head.length + 12345);
    await handle.write(new Uint8Array(tail.buffer), 0, 4000, head.length + bigBytes);
    await handle.close();
    const size = (await fs.stat(file)).size;
    assert.equal(size, head.length + bigBytes + 4000);
    const runner = poolRunner(pool);
    const packed = await packFile(file, { runner, chunkBytes: 4 * 1024 * 1024 });
    assert.ok(packed.packedBytes < 100_000, `${packed.packedBytes} bytes`);
    const out = join(folder, 'sparse.unpacked');
    const unpacked = await unpackFile(packed.out, { runner, out });
    assert.equal(unpacked.digest, packed.digest);
    const stats = await fs.stat(out);
    assert.equal(stats.size, size);
    assert.ok(stats.blocks * 512 < 64 * 1024 * 1024, 'the unpacked file stays sparse');
    const tailOut = join(folder, 'tail.bin');
    await extractTensor(packed.out, 'tail', { out: tailOut, runner });
    assert.deepEqual(new Uint8Array(await fs.readFile(tailOut)), new Uint8Array(tail.buffer));
    await Promise.all([file, out, packed.out, tailOut].map((f) => fs.rm(f)));
  });
});

describe('container versions', () => {
  const v1Fixture = resolve('test/fixtures/v1.safetensors.llz');

  /** The stream codecs of every chunk of `segmentName` in `file`. */
  async function codecsOf(file: string, segmentName: string): Promise<number[]> {
    const container = await readContainer(file);
    const bytes = new Uint8Array(await fs.readFile(file));
    const segment = container.index.segments.find((s) => s.name === segmentName)!;
    return segment.chunks.flatMap(([offset]) =>
      Array.from({ length: bytes[offset]! }, (_, i) => bytes[offset + 1 + 5 * i]!),
    );
  }

  // Containers written by earlier coders, with the codec of their exponent streams.
  for (const { version, coder, codec } of [
    { version: 1, coder: 'two-state rANS', codec: 1 },
    { version: 2, coder: 'eight-lane rANS', codec: 4 },
    { version: 3, coder: 'eight-lane rANS, checked by the SHA-256 of the file', codec: 4 },
    { version: 4, coder: 'chunks checked by SHA-256, a chunk digest of them', codec: 4 },
  ]) {
    test(`a version-${version} container (${coder}) still unpacks and extracts byte for byte`, async () => {
      const fixture = resolve(`test/fixtures/v${version}.safetensors.llz`);
      const container = await readContainer(fixture);
      assert.equal(container.index.version, version);
      assert.ok((await codecsOf(fixture, 'layer.f32')).includes(codec));
      const original = fixtureOriginal();
      const out = join(folder, `v${version}.unpacked`);
      const result = await unpackFile(fixture, { out, runner: poolRunner(pool) });
      assert.ok(Buffer.from(await fs.readFile(out)).equals(original), 'unpacked = original');
      // Containers before version 4 record the SHA-256 of the whole file; version 4 the
      // SHA-256 of its chunks' SHA-256s.
      assert.equal(
        result.digest,
        version < 4
          ? createHash('sha256').update(original).digest('hex')
          : expectedChunkDigest(await fs.readFile(fixture), original),
      );
      const tensorOut = join(folder, `v${version}.f32.bin`);
      await extractTensor(fixture, 'layer.f32', { out: tensorOut });
      const extracted = new Uint8Array(await fs.readFile(tensorOut));
      assert.equal(extracted.length, 3001 * 4);
      assert.ok(Buffer.from(original).indexOf(extracted) > 0, 'the tensor is the original bytes');
    });
  }

  test('new containers are version 5 with eight-lane rANS exponents and an XXH64 chunk digest, and round-trip', async () => {
    const file = join(folder, 'v3.safetensors');
    await fs.writeFile(file, fixtureOriginal());
    const { packed } = await roundTrip(file, { chunkBytes: 2048 });
    assert.equal((await readContainer(packed)).index.version, LLZ_VERSION);
    assert.equal(LLZ_VERSION, 5);
    const codecs = await codecsOf(packed, 'layer.f32');
    assert.ok(codecs.includes(4) && !codecs.includes(1), `codecs ${codecs.join(',')}`);
    assert.equal(new DataView((await fs.readFile(packed)).buffer).getUint32(8, true), 5);
    const { original } = (await readContainer(packed)).index;
    assert.match(original.digest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(original.sha256, undefined, 'version 5 records the chunk digest instead');
    // Each chunk is checked by the first 32 bits of its XXH64 (big-endian), not a CRC-32.
    const source = fixtureOriginal();
    for (const segment of (await readContainer(packed)).index.segments) {
      segment.chunks.forEach(([, , check], c) => {
        const start = segment.offset + c * 2048;
        const end = Math.min(segment.offset + segment.length, start + 2048);
        const digest = Buffer.from(xxh64Reference(source.subarray(start, end)));
        assert.equal(check, digest.readUInt32BE(0), `${segment.name ?? 'structure'} chunk ${c}`);
      });
    }
  });

  test('duplicate chunks are stored once; chunks that only share a CRC-32 are both kept', async () => {
    // CRC-32 is affine over equal-length messages: some XOR of single-bit flips leaves it
    // unchanged. Find one among 33 flips (Gaussian elimination over GF(2)).
    const original = randomBytesOf(1024, 9);
    const zero = crc32(new Uint8Array(1024));
    const images: { image: number; flips: number[] }[] = [];
    let flips: number[] | undefined;
    for (let bit = 0; bit < 33 && !flips; bit++) {
      const single = new Uint8Array(1024);
      single[bit >> 3] = 1 << (bit & 7);
      let candidate = { image: (crc32(single) ^ zero) >>> 0, flips: [bit] };
      for (const row of images) {
        const top = 31 - Math.clz32(row.image);
        if ((candidate.image >>> top) & 1) {
          candidate = {
            image: (candidate.image ^ row.image) >>> 0,
            flips: [...candidate.flips, ...row.flips],
          };
        }
      }
      if (candidate.image === 0) flips = candidate.flips;
      else {
        images.push(candidate);
        images.sort((a, b) => b.image - a.image);
      }
    }
    assert.ok(flips, 'a CRC-preserving change exists');
    const twin = original.slice();
    for (const bit of flips) twin[bit >> 3]! ^= 1 << (bit & 7);
    assert.notDeepEqual(twin, original);
    assert.equal(crc32(twin), crc32(original));
    const file = await writeSafetensors(join(folder, 'twins.safetensors'), [
      { name: 'a', dtype: 'U8', shape: [1024], data: original },
      { name: 'b', dtype: 'U8', shape: [1024], data: twin },
      { name: 'c', dtype: 'U8', shape: [1024], data: original },
    ]);
    const { packed } = await roundTrip(file, { chunkBytes: 1024 });
    const segments = (await readContainer(packed)).index.segments;
    const offsetOf = (name: string) => segments.find((s) => s.name === name)!.chunks[0]![0];
    assert.notEqual(offsetOf('b'), offsetOf('a'), 'same CRC, other bytes: stored apart');
    assert.equal(offsetOf('c'), offsetOf('a'), 'the same bytes: stored once');
  });

  test('a header and an index that disagree on the version are refused', async () => {
    const bytes = new Uint8Array(await fs.readFile(v1Fixture));
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(8, 2, true);
    const mixed = join(folder, 'mixed-version.safetensors.llz');
    await fs.writeFile(mixed, bytes);
    await assert.rejects(readContainer(mixed), /version 1 does not match the header's 2/);
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(8, LLZ_VERSION + 1, true);
    await fs.writeFile(mixed, bytes);
    await assert.rejects(
      readContainer(mixed),
      new RegExp(`version ${LLZ_VERSION + 1} is not supported`),
    );
  });
});

describe('single tensors, deltas and corrupt files', () => {
  let file: string;
  let packed: string;
  const values = weights(70_000, 21);

  before(async () => {
    file = await writeSafetensors(join(folder, 'model.safetensors'), [
      { name: 'a.weight', dtype: 'BF16', shape: [70_000], data: bf16Of(values) },
      { name: 'a.bias', dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
      { name: 'b.weight', dtype: 'F32', shape: [1000], data: weights(1000, 5) },
    ]);
    packed = (await packFile(file, { runner: poolRunner(pool), chunkBytes: 16 * 1024 })).out;
  });

  test('one tensor is extracted alone, equal to its bytes in the original', async () => {
    const out = join(folder, 'a.weight.bin');
    const result = await extractTensor(packed, 'a.weight', { out, runner: poolRunner(pool) });
    assert.deepEqual(new Uint8Array(await fs.readFile(out)), new Uint8Array(bf16Of(values).buffer));
    assert.equal(result.bytes, 140_000);
    await assert.rejects(
      extractTensor(packed, 'nope', { out: join(folder, 'nope.bin') }),
      /no tensor named "nope"/,
    );
  });

  test('a fine-tune packs as an XOR delta, needs its base and restores exactly', async () => {
    // The fine-tune changes 5% of the weights slightly and leaves the rest identical.
    const tuned = values.slice();
    for (let i = 0; i < tuned.length; i += 20) tuned[i] = tuned[i]! * 1.01 + 1e-4;
    const tunedFile = await writeSafetensors(join(folder, 'tuned.safetensors'), [
      { name: 'a.weight', dtype: 'BF16', shape: [70_000], data: bf16Of(tuned) },
      { name: 'a.bias', dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3.5]) },
      { name: 'b.weight', dtype: 'F32', shape: [1000], data: weights(1000, 5) },
      { name: 'c.new', dtype: 'F32', shape: [10], data: weights(10, 9) },
    ]);
    const plain = await packFile(tunedFile, { out: join(folder, 'tuned.plain.llz') });
    const { packed: delta, unpacked, packResult } = await roundTrip(tunedFile, { base: file });
    assert.equal(packResult.deltaTensors, 3);
    assert.ok(
      packResult.packedBytes < plain.packedBytes / 3,
      `${packResult.packedBytes} vs ${plain.packedBytes}`,
    );
    // Unpacking finds the base through the recorded relative path.
    await fs.rm(unpacked);
    await unpackFile(delta, { out: unpacked });
    assert.equal(await sha256(unpacked), await sha256(tunedFile));

    const wrongBase = join(folder, 'wrong.safetensors');
    await writeSafetensors(wrongBase, [
      { name: 'a.weight', dtype: 'F32', shape: [1], data: new Float32Array([1]) },
    ]);
    await assert.rejects(
      unpackFile(delta, { out: join(folder, 'x.safetensors'), base: wrongBase }),
      (error: unknown) =>
        error instanceof ModelFileError &&
        error.file === wrongBase &&
        /not the base model/.test(error.problem),
    );
    await assert.rejects(
      unpackFile(delta, {
        out: join(folder, 'y.safetensors'),
        base: join(folder, 'missing.safetensors'),
      }),
      /base model .* is missing/,
    );
    assert.deepEqual(await leftovers(), []);

    // Delta statistics: identical fraction and relative norm per tensor.
    const models = new ModelService({ workerCount: 1 });
    const service = new LosslessService(models, 1);
    try {
      const [aWeight, aBias, , cNew] = await service.deltaStats(delta, [0, 1, 2, 3]);
      assert.ok(aWeight && !('error' in aWeight));
      assert.ok(
        aWeight.identicalFraction > 0.9 && aWeight.identicalFraction < 0.99,
        String(aWeight.identicalFraction),
      );
      assert.ok(aWeight.relativeDelta! > 0 && aWeight.relativeDelta! < 0.05);
      assert.ok(aBias && !('error' in aBias));
      assert.equal(aBias.deltaNorm, 0.5);
      assert.ok(cNew && 'error' in cNew);
      // The packed ratio of a delta's tensor is what its XOR with the base takes.
      const [deltaWeight] = await service.compressibility(delta, [0]);
      const [plainWeight] = await service.compressibility(plain.out, [0]);
      assert.ok(deltaWeight && !isCompressibilityError(deltaWeight));
      assert.ok(plainWeight && !isCompressibilityError(plainWeight));
      assert.ok(
        deltaWeight.ratio < plainWeight.ratio / 3,
        `${deltaWeight.ratio} vs ${plainWeight.ratio}`,
      );
    } finally {
      service.dispose();
      models.dispose();
    }
  });

  test('an existing output is never overwritten; packed files and shard indexes are refused', async () => {
    await assert.rejects(packFile(file, { out: packed }), /already exists/);
    await assert.rejects(unpackFile(packed, { out: file }), /already exists/);
    const renamed = join(folder, 'renamed.safetensors');
    await fs.copyFile(packed, renamed);
    await assert.rejects(packFile(renamed), /already a packed file/);
    const index = await writeShardedSafetensors(join(folder, 'sharded'), [
      {
        file: 'a.safetensors',
        tensors: [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array(2) }],
      },
    ]);
    await assert.rejects(packFile(index), /pack each shard/);
  });

  /** A copy of the container with `change` applied; unpacking it must fail with `expected`. */
  async function assertRejected(
    name: string,
    change: (bytes: Uint8Array) => Uint8Array,
    expected: RegExp,
  ) {
    const broken = join(folder, `${name}.llz`);
    await fs.writeFile(broken, change(new Uint8Array(await fs.readFile(packed))));
    const out = join(folder, `${name}.out`);
    await assert.rejects(unpackFile(broken, { out }), (error: unknown) => {
      assert.ok(error instanceof ModelFileError, String(error));
      assert.equal(error.file, broken);
      assert.match(error.problem, expected);
      return true;
    });
    await assert.rejects(fs.stat(out), 'no output is left behind');
    assert.deepEqual(await leftovers(), []);
  }

  function withIndex(
    bytes: Uint8Array,
    edit: (index: Record<string, unknown>) => void,
  ): Uint8Array {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const indexOffset = Number(view.getBigUint64(bytes.length - LLZ_TRAILER_BYTES, true));
    const index = JSON.parse(
      zlib.inflateRawSync(bytes.subarray(indexOffset, bytes.length - LLZ_TRAILER_BYTES)).toString(),
    ) as Record<string, unknown>;
    edit(index);
    const indexBytes = zlib.deflateRawSync(JSON.stringify(index));
    return Buffer.concat([
      bytes.subarray(0, indexOffset),
      indexBytes,
      llzTrailer(indexOffset, indexBytes.length),
    ]);
  }

  test('corrupt containers are rejected with a clear error and leave nothing behind', async () => {
    const container = await readContainer(packed);
    const weightSegment = container.index.segments.find((s) => s.name === 'a.weight')!;
    const [chunkOffset, chunkLength] = weightSegment.chunks[1]!;
    await assertRejected(
      'flipped',
      (bytes) => {
        bytes[chunkOffset + Math.floor(chunkLength / 2)]! ^= 0x10;
        return bytes;
      },
      /chunk 1 of tensor "a\.weight" is corrupt/,
    );
    await assertRejected(
      'truncated',
      (bytes) => bytes.subarray(0, bytes.length - 100),
      /truncated|no index/,
    );
    await assertRejected(
      'cut-in-half',
      (bytes) => bytes.subarray(0, bytes.length >> 1),
      /truncated|no index/,
    );
    await assertRejected(
      'magic',
      (bytes) => {
        bytes[1] = 0x58;
        return bytes;
      },
      /bad magic/,
    );
    await assertRejected(
      'huge-index',
      (bytes) => {
        new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(
          bytes.length - 16,
          2n ** 60n,
          true,
        );
        return bytes;
      },
      /more than the limit/,
    );
    await assertRejected(
      'huge-chunk',
      (bytes) =>
        withIndex(bytes, (index) => {
          const segments = index.segments as { chunks: number[][] }[];
          segments.find((s) => s.chunks.length > 0)!.chunks[0]![1] = 2 ** 40;
        }),
      /lies outside the chunk data/,
    );
    await assertRejected(
      'huge-size',
      (bytes) =>
        withIndex(bytes, (index) => {
          (index.original as { size: number }).size = 2 ** 52;
        }),
      /cover/,
    );
    await assertRejected(
      'huge-chunk-size',
      (bytes) =>
        withIndex(bytes, (index) => {
          index.chunkBytes = 2 ** 40;
        }),
      /chunk size/,
    );
  });
  test('the chunk digest catches what the chunk checks cannot: any edit of a payload, of the digest or of the size', async () => {
    const segments = (await readContainer(packed)).index.segments;
    const weight = segments.findIndex((s) => s.name === 'a.weight');
    const [chunkOffset, chunkLength] = segments[weight]!.chunks[2]!;
    await assertRejected(
      'payload-byte',
      (bytes) => {
        bytes[chunkOffset + chunkLength - 1]! ^= 0x01;
        return bytes;
      },
      /chunk 2 of tensor "a\.weight" is corrupt/,
    );
    // Two whole chunks swapped with their CRCs: each decodes and checks, the file does not.
    await assertRejected(
      'swapped-chunks',
      (bytes) =>
        withIndex(bytes, (index) => {
          const chunks = (index.segments as { chunks: number[][] }[])[weight]!.chunks;
          [chunks[1], chunks[2]] = [chunks[2]!, chunks[1]!];
        }),
      /do not match the chunk digest recorded in the container/,
    );
    for (const [name, position] of [
      ['digest-first', 0],
      ['digest-last', 63],
    ] as const) {
      await assertRejected(
        name,
        (bytes) =>
          withIndex(bytes, (index) => {
            const original = index.original as { digest: string };
            const flipped = (parseInt(original.digest[position]!, 16) ^ 1).toString(16);
            original.digest =
              original.digest.slice(0, position) + flipped + original.digest.slice(position + 1);
          }),
        /do not match the chunk digest recorded in the container/,
      );
    }
    await assertRejected(
      'digest-missing',
      (bytes) =>
        withIndex(bytes, (index) => {
          const original = index.original as { digest?: string; sha256?: string };
          original.sha256 = original.digest;
          delete original.digest;
        }),
      /lacks a valid size and chunk digest/,
    );
    await assertRejected(
      'size-one-less',
      (bytes) =>
        withIndex(bytes, (index) => {
          (index.original as { size: number }).size -= 1;
        }),
      /does not continue|cover/,
    );
  });
});

describe('packed files opened as models', () => {
  test('a .llz shows the same tensors and statistics as its original', async () => {
    const models = new ModelService({ workerCount: 2 });
    const service = new LosslessService(models, 2);
    try {
      for (const original of [
        SILERO[1]!,
        await writeSafetensors(join(folder, 'open.safetensors'), [
          { name: 'x.weight', dtype: 'BF16', shape: [300, 7], data: bf16Of(weights(2100, 3)) },
          { name: 'x.bias', dtype: 'F16', shape: [7], data: randomBytesOf(14, 8) },
        ]),
      ]) {
        const file = join(folder, `open-${original.split('/').pop()!}`);
        await fs.copyFile(original, file);
        const { out } = await service.pack(file);
        const a = await models.openModel(file);
        const b = await models.openModel(out);
        assert.equal(b.format, a.format);
        assert.equal(b.tensorCount, a.tensorCount);
        assert.ok(b.metadata.some((entry) => entry.key === 'original SHA-256 of chunk XXH64s'));
        const pageA = await models.tensors(file, 0, 5000);
        const pageB = await models.tensors(out, 0, 5000);
        assert.deepEqual(
          pageB.tensors.map(({ file: _file, ...rest }) => rest),
          pageA.tensors.map(({ file: _file, ...rest }) => rest),
        );
        const indices = pageA.tensors.map((t) => t.index);
        assert.deepEqual(
          await models.tensorStats(out, indices),
          await models.tensorStats(file, indices),
        );
        const compressibility = await service.compressibility(out, indices);
        const floats = compressibility.filter(
          (r) => !isCompressibilityError(r) && r.exponentEntropyBits !== null,
        );
        assert.ok(floats.length > 0);
        for (const result of floats) {
          assert.ok(!isCompressibilityError(result));
          assert.ok(result.exponentEntropyBits! >= 0 && result.exponentEntropyBits! <= 8);
          assert.ok(result.ratio > 0);
        }
      }
    } finally {
      service.dispose();
      models.dispose();
    }
  });

  test("a .llz tensor's statistics are decoded in a worker, never on the main thread", async () => {
    const original = join(folder, 'worker-decoded.onnx');
    await fs.copyFile(SILERO[2]!, original);
    const packed = (await packFile(original, { runner: poolRunner(pool) })).out;
    const [plain, opened] = await Promise.all([openModelFile(original), openModelFile(packed)]);
    const stats = new WorkerPool(2);
    try {
      // The largest tensors, with load() barred: only the worker may decode them.
      const largest = [...opened.tensors]
        .sort((a, b) => b.data.length - a.data.length)
        .slice(0, 4)
        .map((entry) => {
          const { data } = entry;
          assert.equal(data.kind, 'memory');
          assert.ok(data.kind === 'memory' && data.packed, `${entry.info.name} is a packed range`);
          const load = (): Uint8Array =>
            assert.fail(`${entry.info.name} decoded on the main thread`);
          return { ...entry, data: { ...data, load } };
        });
      for (const entry of largest) {
        const reference = plain.tensors[entry.info.index]!;
        assert.deepEqual(
          await computeTensorStats(stats, entry),
          await computeTensorStats(stats, reference),
          entry.info.name,
        );
      }
      // Compressibility reads them in its workers too.
      const analysed = (await poolRunner(pool)({
        op: 'analyse',
        dtype: largest[0]!.info.dtype,
        source: workerSourceOf(largest[0]!.data)!,
      })) as AnalyseResult;
      assert.equal(analysed.rawBytes, largest[0]!.data.length);
    } finally {
      stats.dispose();
    }
  });

  test('a .llz declaring a huge structure is refused before anything is decoded', async () => {
    const file = await writeSafetensors(join(folder, 'structure.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ]);
    const { out } = await packFile(file);
    const bytes = new Uint8Array(await fs.readFile(out));
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const indexOffset = Number(view.getBigUint64(bytes.length - LLZ_TRAILER_BYTES, true));
    const chunkBytes = 64 * 1024 * 1024;
    const size = 48 * chunkBytes;
    const index = {
      version: LLZ_VERSION,
      original: {
        name: 'structure.safetensors',
        size,
        digest: '0'.repeat(64),
        format: 'safetensors',
      },
      base: null,
      chunkBytes,
      segments: [
        {
          kind: 'other',
          offset: 0,
          length: size,
          layout: 'bytes',
          xor: false,
          chunks: Array.from({ length: 48 }, () => [16, 10, 0]),
        },
      ],
    };
    const indexBytes = zlib.deflateRawSync(JSON.stringify(index));
    const huge = join(folder, 'huge-structure.safetensors.llz');
    await fs.writeFile(
      huge,
      Buffer.concat([
        bytes.subarray(0, indexOffset),
        indexBytes,
        llzTrailer(indexOffset, indexBytes.length),
      ]),
    );
    const models = new ModelService({ workerCount: 1 });
    try {
      await assert.rejects(models.openModel(huge), /structure .* more than the limit/);
    } finally {
      models.dispose();
    }
  });

  test('a corrupt .llz opens with an error naming the file', async () => {
    const broken = join(folder, 'broken.safetensors.llz');
    await fs.writeFile(
      broken,
      Buffer.concat([Buffer.from([0x89, 0x4c, 0x4c, 0x5a, 13, 10, 26, 10]), Buffer.alloc(40)]),
    );
    const models = new ModelService({ workerCount: 1 });
    try {
      await assert.rejects(models.openModel(broken), (error: unknown) => {
        assert.ok(error instanceof ModelFileError);
        assert.equal(error.file, broken);
        return true;
      });
    } finally {
      models.dispose();
    }
  });
});

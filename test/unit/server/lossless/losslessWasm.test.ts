/**
 * The lossless coder's WebAssembly kernels (dist/wasm/lossless.wasm) against the TypeScript
 * reference: the same chunk payloads, histograms and rANS bytes on random and edge inputs
 * (empty, 1 byte, single-symbol streams, all 256 symbols, sizes around the SIMD width and
 * the chunk size), the same verdicts on corrupt rANS streams, and memory reuse across sizes;
 * chunks and payloads read straight into the kernels' memory code and decode as copies do.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BYTE_LAYOUTS, type ByteLayout } from '../../../../src/server/lossless/byteGroups';
import { decodeChunk, encodeChunk } from '../../../../src/server/lossless/chunkCodec';
import {
  losslessKernels,
  type LosslessKernels,
} from '../../../../src/server/lossless/losslessWasm';
import {
  byteHistogram,
  rans8Decode,
  rans8Encode,
  ransDecode,
  ransEncode,
} from '../../../../src/server/lossless/rans';
import { LLZ_CHUNK_BYTES } from '../../../../src/shared/limits';

function kernels(): LosslessKernels {
  const loaded = losslessKernels();
  assert.ok(loaded, 'dist/wasm/lossless.wasm loads');
  return loaded;
}

/** Deterministic pseudo-random generator (xorshift32) in [0, 1). */
function random(seed: number): () => number {
  let state = seed || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

/** `length` bytes of the named kind. */
function input(kind: string, length: number, seed = 7): Uint8Array {
  const next = random(seed);
  const bytes = new Uint8Array(length);
  switch (kind) {
    case 'random':
      for (let i = 0; i < length; i++) bytes[i] = next() * 256;
      break;
    case 'weights': {
      // Float32 N(0, 0.02)-like values (sum of uniforms): skewed exponents.
      const values = new Float32Array(Math.ceil(length / 4));
      for (let i = 0; i < values.length; i++) values[i] = (next() + next() + next() - 1.5) * 0.04;
      bytes.set(new Uint8Array(values.buffer, 0, length));
      break;
    }
    case 'constant':
      bytes.fill(0x3c);
      break;
    case 'all symbols':
      for (let i = 0; i < length; i++) bytes[i] = (i * 167) & 0xff;
      break;
    case 'one rare symbol':
      bytes.fill(5);
      if (length > 0) bytes[length >> 1] = 200;
      break;
  }
  return bytes;
}

const KINDS = ['random', 'weights', 'constant', 'all symbols', 'one rare symbol'];
const LENGTHS = [0, 1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 65, 4097, 65541];

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function checkChunk(layout: ByteLayout, raw: Uint8Array, label: string): void {
  const wasm = kernels();
  const reference = encodeChunk(layout, raw, false, null);
  const fast = encodeChunk(layout, raw, false, wasm);
  assert.ok(same(fast.payload, reference.payload), `${label}: the same payload`);
  assert.deepEqual(fast.streamBytes, reference.streamBytes, `${label}: stream sizes`);
  assert.deepEqual(fast.firstStreamCounts, reference.firstStreamCounts, `${label}: counts`);
  const decoded = decodeChunk(layout, reference.payload, raw.length, undefined, wasm);
  assert.ok(same(decoded, raw), `${label}: the kernels decode the bytes back`);
  const slow = decodeChunk(layout, reference.payload, raw.length, undefined, null);
  assert.ok(same(slow, raw), `${label}: TypeScript decodes them back`);
  // Read straight into the kernels' memory (as the workers read files): hashed, coded and
  // decoded where it lies, to the same hash, payload and bytes as a copy.
  const room = wasm.chunkRoom(layout, raw.length);
  room.set(raw);
  const hashInPlace = wasm.xxh64(room);
  const inPlace = encodeChunk(layout, room, false, wasm);
  assert.ok(same(inPlace.payload, reference.payload), `${label}: the same payload from its place`);
  assert.ok(same(wasm.xxh64(raw), hashInPlace), `${label}: the same hash where it lies`);
  const payloadRoom = wasm.payloadRoom(reference.payload.length, raw.length);
  payloadRoom.set(reference.payload);
  const fromRoom = decodeChunk(layout, payloadRoom, raw.length, undefined, wasm);
  assert.ok(same(fromRoom, raw), `${label}: a payload decodes from its place`);
}

/** The two decoders of one coded stream, and how the kernel finds its output. */
interface StreamDecoders {
  readonly reference: (coded: Uint8Array) => Uint8Array;
  readonly kernel: (payload: Uint8Array, target: Uint8Array) => Uint8Array;
  readonly decodeTargets: (coded: Uint8Array) => { payload: Uint8Array; targets: Uint8Array[] };
}

/**
 * Truncates or flips one bit of `coded` 200 times and checks that the WebAssembly decoder
 * gives the reference decoder's verdict and bytes each time; returns how many were errors.
 */
function compareOnCorruptions(coded: Uint8Array, seed: number, decoders: StreamDecoders): number {
  const next = random(seed);
  const outcome = (decode: () => Uint8Array) => {
    try {
      return Buffer.from(decode()).toString('hex');
    } catch (error) {
      return `error: ${(error as Error).message}`;
    }
  };
  let errors = 0;
  for (let trial = 0; trial < 200; trial++) {
    const corrupt = coded.slice(0, trial % 5 === 0 ? coded.length - 1 - trial : undefined);
    if (trial % 5 !== 0) corrupt[Math.floor(next() * corrupt.length)]! ^= 1 << (trial % 8);
    const slow = outcome(() => decoders.reference(corrupt));
    const fast = outcome(() => {
      const { payload, targets } = decoders.decodeTargets(corrupt);
      return decoders.kernel(payload, targets[0]!);
    });
    assert.equal(fast, slow, `trial ${trial}`);
    if (slow.startsWith('error')) errors++;
  }
  return errors;
}

describe('lossless WebAssembly kernels', () => {
  test('chunks code to the same bytes as the TypeScript, every layout and edge size', () => {
    for (const layout of BYTE_LAYOUTS) {
      for (const kind of KINDS) {
        for (const length of LENGTHS)
          checkChunk(layout, input(kind, length), `${layout} ${kind} ${length}`);
      }
    }
  });

  test('whole chunks, and a chunk and a byte past the chunk size, unaligned', () => {
    for (const layout of ['bf16', 'f32', 'f16', 'planes4'] as const) {
      for (const length of [LLZ_CHUNK_BYTES, LLZ_CHUNK_BYTES + 1]) {
        const backing = input('weights', length + 1, 11);
        checkChunk(layout, backing.subarray(1), `${layout} ${length} at offset 1`);
      }
    }
  });

  test('histograms match the reference and version-1 rANS streams decode on the kernels', () => {
    const wasm = kernels();
    for (const kind of KINDS) {
      for (const length of LENGTHS.filter((n) => n > 0)) {
        const symbols = input(kind, length, length);
        const counts = byteHistogram(symbols);
        // A 'bytes' split copies the symbols into the kernels' memory.
        const view = wasm.split('bytes', symbols)[0]!;
        assert.deepEqual(wasm.histogram(view), counts, `${kind} ${length}: histogram`);
        // Version-1 streams (written by the TypeScript coder) decode on the kernels.
        const reference = ransEncode(symbols, counts);
        const { payload, targets } = wasm.decodeTargets('bytes', reference, length);
        const decoded = wasm.ransDecode(payload, length, targets[0]!);
        assert.ok(same(decoded, symbols), `${kind} ${length}: rANS decode`);
      }
    }
  });

  test('corrupt rANS streams get the same verdict and bytes from both decoders', () => {
    const wasm = kernels();
    const symbols = input('weights', 4099, 3);
    const errors = compareOnCorruptions(ransEncode(symbols, byteHistogram(symbols)), 99, {
      reference: (corrupt) => ransDecode(corrupt, symbols.length),
      kernel: (payload, target) => wasm.ransDecode(payload, symbols.length, target),
      decodeTargets: (corrupt) => wasm.decodeTargets('bytes', corrupt, symbols.length),
    });
    assert.ok(errors > 50, `most corruptions are caught (${errors} of 200)`);
  });

  test('eight-lane rANS streams match the reference byte for byte, near the entropy', () => {
    const wasm = kernels();
    let checked = 0;
    for (const kind of KINDS) {
      for (const length of [...LENGTHS, 131072, 131079].filter((n) => n > 1)) {
        const symbols = input(kind, length, length);
        const counts = byteHistogram(symbols);
        if (counts.filter((count) => count > 0).length < 2) {
          assert.throws(() => rans8Encode(symbols, counts), /constant stream/);
          continue;
        }
        const view = wasm.split('bytes', symbols)[0]!;
        const reference = rans8Encode(symbols, counts);
        assert.ok(same(wasm.rans8Encode(view, counts), reference), `${kind} ${length}: bytes`);
        assert.ok(same(rans8Decode(reference, length), symbols), `${kind} ${length}: TS decode`);
        const { payload, targets } = wasm.decodeTargets('bytes', reference, length);
        const decoded = wasm.rans8Decode(payload, length, targets[0]!);
        assert.ok(same(decoded, symbols), `${kind} ${length}: kernel decode`);
        if (kind === 'weights' && length >= 131072) {
          // As close to the stream's entropy as the two-state coder (table and states aside).
          const twoState = ransEncode(symbols, counts).length;
          assert.ok(reference.length <= twoState + 24 + 16, `${reference.length} vs ${twoState}`);
        }
        checked++;
      }
    }
    assert.ok(checked > 50, `${checked} streams`);
  });

  test('corrupt eight-lane streams get the same verdict and bytes from both decoders', () => {
    const wasm = kernels();
    const symbols = input('weights', 40_099, 3);
    const errors = compareOnCorruptions(rans8Encode(symbols, byteHistogram(symbols)), 77, {
      reference: (corrupt) => rans8Decode(corrupt, symbols.length),
      kernel: (payload, target) => wasm.rans8Decode(payload, symbols.length, target),
      decodeTargets: (corrupt) => wasm.decodeTargets('bytes', corrupt, symbols.length),
    });
    assert.ok(errors > 100, `most corruptions are caught (${errors} of 200)`);
  });

  test('memory grows for a large chunk and is reused for small ones after it', () => {
    // Odd lengths leave a tail stream (counted outside the kernels' memory).
    const big = input('weights', 66 * 1024 * 1024 + 7, 5);
    checkChunk('bf16', big, 'a 66 MB chunk');
    checkChunk('f32', input('weights', 66 * 1024 * 1024 + 3, 8), 'a 66 MB float32 chunk');
    checkChunk('f32', input('weights', 1000, 6), 'a small chunk after it');
  });
});

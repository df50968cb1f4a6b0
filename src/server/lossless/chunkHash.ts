/**
 * The hash each chunk of a container is checked by (version 4: SHA-256; version 5 on:
 * XXH64, which the kernels run at several GB/s per core, hashing decoded bytes where they
 * lie in WebAssembly memory). A chunk's index entry holds the hash's first 32 bits
 * (chunkCheck), and the container's chunk digest is the SHA-256 of all chunks' hashes.
 */
import { createHash } from 'node:crypto';
import { losslessKernels } from './losslessWasm';

export type ChunkHash = 'sha256' | 'xxh64';

/** Bytes of one chunk's hash. */
export const CHUNK_HASH_BYTES: Readonly<Record<ChunkHash, number>> = { sha256: 32, xxh64: 8 };

/** Each hash as people write it (the packed model's metadata names it). */
export const CHUNK_HASH_NAMES: Readonly<Record<ChunkHash, string>> = {
  sha256: 'SHA-256',
  xxh64: 'XXH64',
};

/** A chunk's check in a version-4+ index: the first 32 bits of its hash, big-endian. */
export function chunkCheck(digest: Uint8Array): number {
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0, false);
}

const MASK = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK;
const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & MASK, 31n) * P1) & MASK;
const merge = (acc: bigint, value: bigint) => ((acc ^ round(0n, value)) * P1 + P4) & MASK;

/**
 * XXH64 (seed 0) in TypeScript, 8 bytes most significant first: the same bytes as the
 * kernels' xxh64, used where WebAssembly is missing (slow: BigInt arithmetic).
 */
export function xxh64Reference(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const n = bytes.length;
  let p = 0;
  let h: bigint;
  if (n >= 32) {
    const v = [(P1 + P2) & MASK, P2, 0n, (MASK + 1n - P1) & MASK];
    for (; p + 32 <= n; p += 32) {
      for (let lane = 0; lane < 4; lane++) {
        v[lane] = round(v[lane]!, view.getBigUint64(p + 8 * lane, true));
      }
    }
    h = (rotl(v[0]!, 1n) + rotl(v[1]!, 7n) + rotl(v[2]!, 12n) + rotl(v[3]!, 18n)) & MASK;
    for (const lane of v) h = merge(h, lane);
  } else h = P5;
  h = (h + BigInt(n)) & MASK;
  for (; p + 8 <= n; p += 8) {
    h = (rotl(h ^ round(0n, view.getBigUint64(p, true)), 27n) * P1 + P4) & MASK;
  }
  if (p + 4 <= n) {
    h = (rotl(h ^ ((BigInt(view.getUint32(p, true)) * P1) & MASK), 23n) * P2 + P3) & MASK;
    p += 4;
  }
  for (; p < n; p++) h = (rotl(h ^ ((BigInt(bytes[p]!) * P5) & MASK), 11n) * P1) & MASK;
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  h ^= h >> 32n;
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, h, false);
  return out;
}

/** The hash `kind` of a chunk's bytes. */
export function hashChunk(kind: ChunkHash, bytes: Uint8Array): Uint8Array {
  if (kind === 'sha256') return createHash('sha256').update(bytes).digest();
  return losslessKernels()?.xxh64(bytes) ?? xxh64Reference(bytes);
}

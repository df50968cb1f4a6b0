/**
 * The original of the containers in test/fixtures, kept to prove that files written by
 * earlier coders still unpack byte for byte: v1.safetensors.llz (version 1: two-state
 * rANS, byte renormalisation), v2.safetensors.llz (version 2: eight-lane rANS, chunks
 * of 2048 bytes) and v3.safetensors.llz (version 3, chunks of 2048 bytes: the last to
 * record the SHA-256 of the whole file instead of a chunk digest), and v4.safetensors.llz
 * (version 4, chunks of 2048 bytes: the last to hash chunks with SHA-256). Deterministic:
 * the same bytes on every run.
 */
import { buildSafetensors } from './safetensorsBuilder';

/** Deterministic xorshift32 values in [0, 1). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

/** The safetensors file the fixtures were packed from (bf16, f32, f16, int32 and int8 tensors). */
export function fixtureOriginal(): Uint8Array {
  const next = random(0x1234567);
  const f32 = new Float32Array(3001);
  for (let i = 0; i < f32.length; i++) f32[i] = (next() + next() + next() - 1.5) * 0.04;
  const bf16 = Uint16Array.from(new Uint32Array(f32.buffer), (word) => word >>> 16);
  const f16 = Uint16Array.from({ length: 999 }, () => 0x2000 + Math.floor(next() * 0x1800));
  const int32 = Int32Array.from({ length: 301 }, () => Math.floor((next() - 0.5) * 2000));
  const int8 = Int8Array.from({ length: 97 }, () => Math.floor((next() - 0.5) * 200));
  return buildSafetensors([
    { name: 'layer.bf16', dtype: 'BF16', shape: [bf16.length], data: bf16 },
    { name: 'layer.f32', dtype: 'F32', shape: [f32.length], data: f32 },
    { name: 'layer.f16', dtype: 'F16', shape: [f16.length], data: f16 },
    { name: 'layer.int32', dtype: 'I32', shape: [int32.length], data: int32 },
    { name: 'layer.int8', dtype: 'I8', shape: [int8.length], data: int8 },
  ]);
}

/**
 * LLM-shaped files for the end-to-end benches: Llama-7B decoder layers (hidden 4096,
 * MLP 11008) as one bf16 safetensors file of random-normal N(0, 0.02) values, written in
 * pieces so that a 1.6 GB file never sits in memory. Values come from a seeded xorshift
 * generator through Box–Muller and are rounded to bf16 as frameworks round (nearest even).
 * For memory checks, the whole Llama-7B model as its two shards of holes (sparse files).
 */
import { open, stat, truncate, writeFile } from 'node:fs/promises';

const HIDDEN = 4096;
const MLP = 11008;
const VOCABULARY = 32000;
const LLAMA_7B_LAYERS = 32;
/** The layer after which the published Llama-2-7B checkpoint starts its second shard. */
const SECOND_SHARD_LAYER = 24;
/** Values generated per write. */
const PIECE_VALUES = 4 * 1024 * 1024;

export interface LlamaTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The tensors of `layers` Llama-7B decoder layers, in the order checkpoints store them. */
export function llamaLayerTensors(layers: number): LlamaTensor[] {
  const tensors: LlamaTensor[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const prefix = `model.layers.${layer}`;
    tensors.push({ name: `${prefix}.input_layernorm.weight`, shape: [HIDDEN] });
    for (const projection of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) {
      tensors.push({ name: `${prefix}.self_attn.${projection}.weight`, shape: [HIDDEN, HIDDEN] });
    }
    tensors.push({ name: `${prefix}.post_attention_layernorm.weight`, shape: [HIDDEN] });
    tensors.push({ name: `${prefix}.mlp.gate_proj.weight`, shape: [MLP, HIDDEN] });
    tensors.push({ name: `${prefix}.mlp.up_proj.weight`, shape: [MLP, HIDDEN] });
    tensors.push({ name: `${prefix}.mlp.down_proj.weight`, shape: [HIDDEN, MLP] });
  }
  return tensors;
}

const elementsOf = (tensor: LlamaTensor) => tensor.shape.reduce((a, b) => a * b, 1);

/** The safetensors header (length prefix and JSON, padded to 8 bytes) for bf16 `tensors`. */
function safetensorsHeader(tensors: readonly LlamaTensor[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const tensor of tensors) {
    const bytes = elementsOf(tensor) * 2;
    header[tensor.name] = {
      dtype: 'BF16',
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

/** Fill `out` with bf16 bit patterns of N(0, sigma²) values; returns the generator's next state. */
function fillBf16Normal(out: Uint16Array, sigma: number, seed: number): number {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 4294967296;
  };
  const f32 = new Float32Array(2);
  const u32 = new Uint32Array(f32.buffer);
  const bf16 = (word: number) => (word + 0x7fff + ((word >>> 16) & 1)) >>> 16;
  for (let i = 0; i < out.length; i += 2) {
    const radius = sigma * Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    f32[0] = radius * Math.cos(angle);
    f32[1] = radius * Math.sin(angle);
    out[i] = bf16(u32[0]!);
    if (i + 1 < out.length) out[i + 1] = bf16(u32[1]!);
  }
  return state;
}

/**
 * Write `layers` Llama-7B decoder layers of random bf16 values to `file`, unless a file of
 * the expected size is already there (the values are seeded, so it would be the same).
 * Returns the file's size.
 */
export async function writeLlamaLayers(file: string, layers: number): Promise<number> {
  const tensors = llamaLayerTensors(layers);
  const header = safetensorsHeader(tensors);
  const size = header.length + tensors.reduce((sum, t) => sum + elementsOf(t) * 2, 0);
  const existing = await stat(file).catch(() => null);
  if (existing?.size === size) return size;
  const handle = await open(file, 'w');
  try {
    await handle.write(header, 0, header.length, 0);
    let position = header.length;
    let seed = 0x2545f491;
    const piece = new Uint16Array(PIECE_VALUES);
    for (const tensor of tensors) {
      const norm = tensor.shape.length === 1;
      for (let left = elementsOf(tensor); left > 0;) {
        const values = piece.subarray(0, Math.min(left, PIECE_VALUES));
        // Norm weights sit near 1, as trained ones do; matrices are N(0, 0.02²).
        if (norm) values.fill(0x3f80);
        else seed = fillBf16Normal(values, 0.02, seed);
        const bytes = new Uint8Array(values.buffer, 0, values.length * 2);
        await handle.write(bytes, 0, bytes.length, position);
        position += bytes.length;
        left -= values.length;
      }
    }
  } finally {
    await handle.close();
  }
  return size;
}

/**
 * Llama-7B (32 layers, embeddings and head; 13.5 GB of bf16) as the two safetensors shards
 * it is published in, each a header and a hole: zeros that take no disk space. Returns the
 * shards' paths (`<prefix>-0000N-of-00002.safetensors`).
 */
export async function writeSparseLlama7B(prefix: string): Promise<string[]> {
  const layers = llamaLayerTensors(LLAMA_7B_LAYERS);
  const perLayer = layers.length / LLAMA_7B_LAYERS;
  const shards: LlamaTensor[][] = [
    [
      { name: 'model.embed_tokens.weight', shape: [VOCABULARY, HIDDEN] },
      ...layers.slice(0, SECOND_SHARD_LAYER * perLayer),
    ],
    [
      ...layers.slice(SECOND_SHARD_LAYER * perLayer),
      { name: 'model.norm.weight', shape: [HIDDEN] },
      { name: 'lm_head.weight', shape: [VOCABULARY, HIDDEN] },
    ],
  ];
  const paths: string[] = [];
  for (const [i, tensors] of shards.entries()) {
    const file = `${prefix}-0000${i + 1}-of-00002.safetensors`;
    const header = safetensorsHeader(tensors);
    const size = header.length + tensors.reduce((sum, t) => sum + elementsOf(t) * 2, 0);
    if ((await stat(file).catch(() => null))?.size !== size) {
      await writeFile(file, header);
      await truncate(file, size);
    }
    paths.push(file);
  }
  return paths;
}

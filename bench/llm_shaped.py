"""Writes safetensors files shaped like Llama-7B decoder layers, for the statistics bench.

    python3 bench/llm_shaped.py dense OUT.safetensors DTYPE LAYERS
        LAYERS decoder layers of random-normal values (std 0.02) in DTYPE
        (bfloat16, float16 or float32); 4 bfloat16 layers are 1.6 GB.
    python3 bench/llm_shaped.py sparse OUT_DIR
        The whole Llama-7B in bfloat16 (13.5 GB) as three shards plus
        model.safetensors.index.json, written as holes: every value is 0 and the
        files take no disk space.
    python3 bench/llm_shaped.py stats FILE.safetensors
        The reference for the statistics bench: reads each tensor, widens it to float32
        and computes min, max, mean, std (float64 sums), zeros, NaN and Infinity counts
        and a 256-bin histogram over [min, max]; prints the seconds, CPU seconds and
        per-tensor [min, max, mean, std] as JSON.

Prints the bytes written. NumPy is the only dependency.
"""
import json
import os
import struct
import sys
import time

import numpy as np

HIDDEN = 4096
INTERMEDIATE = 11008
VOCAB = 32000
LAYERS_7B = 32
SHARDS = 3
CODES = {'bfloat16': 'BF16', 'float16': 'F16', 'float32': 'F32'}
SIZES = {'bfloat16': 2, 'float16': 2, 'float32': 4}


def layer_tensors(layer):
    prefix = f'model.layers.{layer}.'
    return [
        (prefix + 'input_layernorm.weight', [HIDDEN]),
        (prefix + 'self_attn.q_proj.weight', [HIDDEN, HIDDEN]),
        (prefix + 'self_attn.k_proj.weight', [HIDDEN, HIDDEN]),
        (prefix + 'self_attn.v_proj.weight', [HIDDEN, HIDDEN]),
        (prefix + 'self_attn.o_proj.weight', [HIDDEN, HIDDEN]),
        (prefix + 'post_attention_layernorm.weight', [HIDDEN]),
        (prefix + 'mlp.gate_proj.weight', [INTERMEDIATE, HIDDEN]),
        (prefix + 'mlp.up_proj.weight', [INTERMEDIATE, HIDDEN]),
        (prefix + 'mlp.down_proj.weight', [HIDDEN, INTERMEDIATE]),
    ]


def header(tensors, dtype):
    entries = {}
    offset = 0
    for name, shape in tensors:
        size = int(np.prod(shape)) * SIZES[dtype]
        entries[name] = {'dtype': CODES[dtype], 'shape': shape, 'data_offsets': [offset, offset + size]}
        offset += size
    text = json.dumps(entries).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text, offset


def encode(values, dtype):
    if dtype == 'float32':
        return values.tobytes()
    if dtype == 'float16':
        return values.astype(np.float16).tobytes()
    bits = values.view(np.uint32)
    # Round to nearest even (the values are finite).
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()


def dense(path, dtype, layers):
    tensors = [t for layer in range(layers) for t in layer_tensors(layer)]
    head, data_bytes = header(tensors, dtype)
    rng = np.random.default_rng(17)
    piece = 1 << 24
    with open(path, 'wb') as out:
        out.write(head)
        for name, shape in tensors:
            count = int(np.prod(shape))
            if name.endswith('layernorm.weight'):
                out.write(encode(np.ones(count, dtype=np.float32) + rng.standard_normal(count, dtype=np.float32) * 0.05, dtype))
                continue
            for start in range(0, count, piece):
                values = rng.standard_normal(min(piece, count - start), dtype=np.float32) * np.float32(0.02)
                out.write(encode(values, dtype))
    return len(head) + data_bytes


def sparse(directory):
    tensors = [('model.embed_tokens.weight', [VOCAB, HIDDEN])]
    for layer in range(LAYERS_7B):
        tensors += layer_tensors(layer)
    tensors += [('model.norm.weight', [HIDDEN]), ('lm_head.weight', [VOCAB, HIDDEN])]
    per_shard = -(-len(tensors) // SHARDS)
    os.makedirs(directory, exist_ok=True)
    weight_map = {}
    total = 0
    for shard in range(SHARDS):
        part = tensors[shard * per_shard:(shard + 1) * per_shard]
        name = f'model-{shard + 1:05d}-of-{SHARDS:05d}.safetensors'
        head, data_bytes = header(part, 'bfloat16')
        with open(os.path.join(directory, name), 'wb') as out:
            out.write(head)
            out.truncate(len(head) + data_bytes)
        total += len(head) + data_bytes
        for tensor_name, _ in part:
            weight_map[tensor_name] = name
    index = {'metadata': {'total_size': total}, 'weight_map': weight_map}
    with open(os.path.join(directory, 'model.safetensors.index.json'), 'w') as out:
        json.dump(index, out, indent=2)
    return total


def reference_stats(path):
    start = time.perf_counter()
    cpu = time.process_time()
    with open(path, 'rb') as f:
        size = struct.unpack('<Q', f.read(8))[0]
        entries = json.loads(f.read(size))
    base = 8 + size
    stored = {'BF16': np.uint16, 'F16': np.float16, 'F32': np.float32}
    results = {}
    for name, entry in entries.items():
        if name == '__metadata__':
            continue
        begin, end = entry['data_offsets']
        kind = stored[entry['dtype']]
        raw = np.fromfile(path, dtype=kind, count=(end - begin) // np.dtype(kind).itemsize, offset=base + begin)
        if entry['dtype'] == 'BF16':
            values = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            values = raw.astype(np.float32, copy=False)
        nans = int(np.count_nonzero(np.isnan(values)))
        infs = int(np.count_nonzero(np.isinf(values)))
        finite = values if nans + infs == 0 else values[np.isfinite(values)]
        low, high = float(finite.min()), float(finite.max())
        mean = float(finite.mean(dtype=np.float64))
        std = float(finite.std(dtype=np.float64))
        zeros = int(finite.size - np.count_nonzero(finite))
        counts, _ = np.histogram(finite, bins=256, range=(low, high))
        results[name] = [low, high, mean, std, zeros, nans, infs, int(counts.sum())]
    return time.perf_counter() - start, time.process_time() - cpu, results


if __name__ == '__main__':
    if sys.argv[1] == 'stats':
        seconds, cpu, results = reference_stats(sys.argv[2])
        print(json.dumps({'seconds': seconds, 'cpuSeconds': cpu, 'numpy': np.__version__, 'tensors': results}))
    elif sys.argv[1] == 'dense':
        print(dense(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        print(sparse(sys.argv[2]))

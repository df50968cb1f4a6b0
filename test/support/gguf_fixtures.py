"""GGUF fixtures for the tests, written from the GGUF/ggml specification independently of
LayerLens's reader (python3 + numpy only).

usage: python3 gguf_fixtures.py OUT_FOLDER          the test fixtures below
       python3 gguf_fixtures.py --bench FILE ROWS  one file of every type, ROWS rows of 256
                                                   weights each (the lossless bench)
       python3 gguf_fixtures.py --llm FILE LAYERS WIDTH FF VOCAB ALIGNMENT
                                                   an unquantized llama-like model (F16
                                                   matrices, F32 norms, BF16 output), for
                                                   re-typing and planning
       python3 gguf_fixtures.py --imatrix-gguf DAT FILE
                                                   llama-imatrix's legacy .dat DAT in its
                                                   GGUF form (<name>.in_sum2, <name>.counts)

Writes into OUT_FOLDER:
  types-v3.gguf, types-v2.gguf  one tensor per ggml type (the decoded ones, plain F32/F16/
                                BF16, and IQ2_XXS, which LayerLens lists but does not decode),
                                metadata of every value type, a tokenizer-sized string array
                                and a nested array
  aligned64.gguf                general.alignment = 64
  split-0000N-of-00003.gguf     a model split over three files
  bad-*.gguf                    malformed headers (see MALFORMED below)
  expected.json                 per file and tensor: the values the blocks stand for,
                                computed from the block fields with the specification's
                                formulas (not by decoding the packed bytes)
"""

import json
import os
import struct
import sys

import numpy as np

rng = np.random.default_rng(20261205)

# gguf value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FORMATS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
                  F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

IQ4_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                      dtype=np.float64)
# FP4 E2M1 values of the 16 codes; ggml decodes code 8 (negative zero) as +0, as here.
MXFP4_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6],
                        dtype=np.float64)

TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
            "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ2_XXS": 16,
            "IQ4_NL": 20, "IQ4_XS": 23, "BF16": 30, "MXFP4": 39}


def gguf_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def gguf_value(vtype, value):
    if vtype == STRING:
        return gguf_string(value)
    if vtype == ARRAY:
        etype, items = value
        out = struct.pack("<IQ", etype, len(items))
        for item in items:
            out += gguf_value(etype, item)
        return out
    return struct.pack(SCALAR_FORMATS[vtype], value)


def write_gguf(path, kvs, tensors, version=3, alignment=32, patch=None):
    """kvs: [(key, vtype, value)]; tensors: [(name, ne, type name, bytes)].
    patch(header_fields) may change the raw counts / offsets before writing (malformed files)."""
    fields = {"magic": b"GGUF", "version": version, "tensor_count": len(tensors),
              "kv_count": len(kvs), "offsets": [], "types": [TYPE_IDS[t[2]] for t in tensors],
              "ndims": [len(t[1]) for t in tensors], "string_lengths": {}}
    offset = 0
    for _, _, _, data in tensors:
        fields["offsets"].append(offset)
        offset += len(data)
        offset = (offset + alignment - 1) // alignment * alignment
    if patch:
        patch(fields)
    head = fields["magic"] + struct.pack("<IQQ", fields["version"], fields["tensor_count"],
                                         fields["kv_count"])
    for key, vtype, value in kvs:
        head += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    for i, (name, ne, _, _) in enumerate(tensors):
        head += gguf_string(name) + struct.pack("<I", fields["ndims"][i])
        head += b"".join(struct.pack("<Q", n) for n in ne)
        head += struct.pack("<IQ", fields["types"][i], fields["offsets"][i])
    head += b"\0" * ((-len(head)) % alignment)
    body = bytearray()
    for _, _, _, data in tensors:
        body += data
        body += b"\0" * ((-len(body)) % alignment)
    with open(path, "wb") as f:
        f.write(head + bytes(body))


def f16(values):
    return np.asarray(values, dtype=np.float16)


def half_scale(count, low=0.002, high=0.05):
    """Random f16 scales with random signs, and their exact values."""
    scale = f16(rng.uniform(low, high, count) * rng.choice([-1, 1], count))
    return scale, scale.astype(np.float64)


# The scale d of every block (the super-block scale of K-quants), in the order built;
# typed_tensors takes them per tensor into scales.json.
BLOCK_SCALES = []


def block_scale(count, *bounds):
    scale, exact = half_scale(count, *bounds)
    BLOCK_SCALES.extend(exact)
    return scale, exact


# Each block builder returns (bytes, expected float64 values) for `blocks` blocks.

def q8_0(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        d, dv = block_scale(1)
        q = rng.integers(-128, 128, 32).astype(np.int8)
        out += d.tobytes() + q.tobytes()
        expected += list(q * dv[0])
    return out, expected


def nibbles(low_first32):
    """32 codes 0..15 → 16 bytes: byte j holds code j (low) and code j + 16 (high)."""
    q = np.asarray(low_first32, dtype=np.uint8)
    return (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()


def q4_0(blocks, levels=None):
    out, expected = b"", []
    for _ in range(blocks):
        d, dv = block_scale(1)
        q = rng.integers(0, 16, 32)
        out += d.tobytes() + nibbles(q)
        expected += list((levels[q] if levels is not None else q - 8) * dv[0])
    return out, expected


def q4_1(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        d, dv = block_scale(1)
        m, mv = half_scale(1, 0.1, 1.0)
        q = rng.integers(0, 16, 32)
        out += d.tobytes() + m.tobytes() + nibbles(q)
        expected += list(q * dv[0] + mv[0])
    return out, expected


def q5(blocks, with_min):
    out, expected = b"", []
    for _ in range(blocks):
        d, dv = block_scale(1)
        m, mv = half_scale(1, 0.1, 1.0)
        q = rng.integers(0, 32, 32)
        qh = sum(int((q[j] >> 4) & 1) << j for j in range(32))
        out += d.tobytes() + (m.tobytes() if with_min else b"") + struct.pack("<I", qh)
        out += nibbles(q & 15)
        expected += list(q * dv[0] + mv[0] if with_min else (q - 16) * dv[0])
    return out, expected


def q2_k(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        sc = rng.integers(0, 16, 16)
        mn = rng.integers(0, 16, 16)
        q = rng.integers(0, 4, 256)
        d, dv = block_scale(1)
        dmin, dminv = half_scale(1)
        qs = np.zeros(64, dtype=np.uint8)
        for i in range(256):
            h, r = divmod(i, 128)
            shift_group, l32 = divmod(r, 32)
            qs[32 * h + l32] |= q[i] << (2 * shift_group)
        out += (sc | (mn << 4)).astype(np.uint8).tobytes() + qs.tobytes() + d.tobytes() + dmin.tobytes()
        sub = np.arange(256) // 16
        expected += list(dv[0] * sc[sub] * q - dminv[0] * mn[sub])
    return out, expected


def q3_k(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        scales = rng.integers(0, 64, 16)  # stored 6-bit scales, value scale - 32
        v = rng.integers(-4, 4, 256)      # 3-bit values
        d, dv = block_scale(1)
        hmask = np.zeros(32, dtype=np.uint8)
        qs = np.zeros(64, dtype=np.uint8)
        for i in range(256):
            h, r = divmod(i, 128)
            j, l32 = divmod(r, 32)
            code = v[i] + 4
            qs[32 * h + l32] |= (code & 3) << (2 * j)
            hmask[l32] |= (code >> 2) << (4 * h + j)
        packed = np.zeros(12, dtype=np.uint8)
        for i in range(16):
            low, high = scales[i] & 15, scales[i] >> 4
            if i < 8:
                packed[i] |= low
            else:
                packed[i - 8] |= low << 4
            packed[8 + i % 4] |= high << (2 * (i // 4))
        out += hmask.tobytes() + qs.tobytes() + packed.tobytes() + d.tobytes()
        expected += list(dv[0] * (scales[np.arange(256) // 16] - 32) * v)
    return out, expected


def pack_k4_scales(sc, mn):
    packed = np.zeros(12, dtype=np.uint8)
    for j in range(8):
        if j < 4:
            packed[j] |= sc[j] & 63
            packed[j + 4] |= mn[j] & 63
        else:
            packed[j + 4] |= (sc[j] & 15) | ((mn[j] & 15) << 4)
            packed[j - 4] |= (sc[j] >> 4) << 6
            packed[j] |= (mn[j] >> 4) << 6
    return packed.tobytes()


def qk(blocks, five):
    out, expected = b"", []
    for _ in range(blocks):
        sc = rng.integers(0, 64, 8)
        mn = rng.integers(0, 64, 8)
        q = rng.integers(0, 32 if five else 16, 256)
        d, dv = block_scale(1, 0.0005, 0.01)
        dmin, dminv = half_scale(1, 0.0005, 0.01)
        qs = np.zeros(128, dtype=np.uint8)
        qh = np.zeros(32, dtype=np.uint8)
        for i in range(256):
            c, r = divmod(i, 64)
            upper, l = divmod(r, 32)
            qs[32 * c + l] |= (q[i] & 15) << (4 * upper)
            qh[l] |= (q[i] >> 4) << (2 * c + upper)
        out += d.tobytes() + dmin.tobytes() + pack_k4_scales(sc, mn)
        out += (qh.tobytes() if five else b"") + qs.tobytes()
        sub = np.arange(256) // 32
        expected += list(dv[0] * sc[sub] * q - dminv[0] * mn[sub])
    return out, expected


def q6_k(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        q = rng.integers(0, 64, 256)
        scales = rng.integers(-128, 128, 16).astype(np.int8)
        d, dv = block_scale(1, 0.0005, 0.005)
        ql = np.zeros(128, dtype=np.uint8)
        qh = np.zeros(64, dtype=np.uint8)
        scale_of = np.zeros(256, dtype=np.int64)
        for i in range(256):
            h, r = divmod(i, 128)
            k, l = divmod(r, 32)
            ql[64 * h + l + (32 if k in (1, 3) else 0)] |= (q[i] & 15) << (4 if k >= 2 else 0)
            qh[32 * h + l] |= (q[i] >> 4) << (2 * k)
            scale_of[i] = scales[8 * h + l // 16 + 2 * k]
        out += ql.tobytes() + qh.tobytes() + scales.tobytes() + d.tobytes()
        expected += list(dv[0] * scale_of * (q - 32))
    return out, expected


def iq4_xs(blocks):
    out, expected = b"", []
    for _ in range(blocks):
        ls = rng.integers(0, 64, 8)
        idx = rng.integers(0, 16, 256)
        d, dv = block_scale(1, 0.0005, 0.005)
        scales_h = sum(int(ls[s] >> 4) << (2 * s) for s in range(8))
        scales_l = bytes(int((ls[2 * k] & 15) | ((ls[2 * k + 1] & 15) << 4)) for k in range(4))
        qs = b"".join(nibbles(idx[32 * s:32 * s + 32]) for s in range(8))
        out += d.tobytes() + struct.pack("<H", scales_h) + scales_l + qs
        expected += list(dv[0] * (ls[np.arange(256) // 32] - 32) * IQ4_LEVELS[idx])
    return out, expected


def mxfp4(blocks):
    out, expected = b"", []
    exponents = [0, 1, 127, 120, 133] + list(rng.integers(100, 150, max(0, blocks - 5)))
    for b in range(blocks):
        e = int(exponents[b])
        BLOCK_SCALES.append(2.0 ** (e - 127))
        idx = rng.integers(0, 16, 32)
        out += bytes([e]) + nibbles(idx)
        expected += list(MXFP4_VALUES[idx] * 2.0 ** (e - 127))
    return out, expected


def plain(type_name, count):
    values = rng.normal(0, 0.5, count).astype(np.float32)
    if type_name == "F32":
        return values.tobytes(), list(values.astype(np.float64))
    if type_name == "F16":
        halves = values.astype(np.float16)
        return halves.tobytes(), list(halves.astype(np.float64))
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)  # BF16: the upper halves
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    return bits.tobytes(), list(widened.astype(np.float64))


BUILDERS = {
    "Q8_0": (32, q8_0), "Q4_0": (32, q4_0), "Q4_1": (32, q4_1),
    "Q5_0": (32, lambda n: q5(n, False)), "Q5_1": (32, lambda n: q5(n, True)),
    "Q2_K": (256, q2_k), "Q3_K": (256, q3_k), "Q4_K": (256, lambda n: qk(n, False)),
    "Q5_K": (256, lambda n: qk(n, True)), "Q6_K": (256, q6_k),
    "IQ4_NL": (32, lambda n: q4_0(n, IQ4_LEVELS)), "IQ4_XS": (256, iq4_xs), "MXFP4": (32, mxfp4),
}


def typed_tensors(rows=2, width=256, scales=None):
    """One tensor per type, `rows` rows of `width` weights: [(name, ne, type, bytes)], expected.
    `scales`, when given, gets each block tensor's block scales (row by row)."""
    tensors, expected = [], {}
    for i, (type_name, (block, build)) in enumerate(BUILDERS.items()):
        BLOCK_SCALES.clear()
        data, values = build(rows * width // block)
        name = f"blk.{i}.ffn_{type_name.lower()}.weight"
        tensors.append((name, [width, rows], type_name, data))
        expected[name] = values
        if scales is not None:
            scales[name] = list(BLOCK_SCALES)
    for type_name in ("F32", "F16", "BF16"):
        data, values = plain(type_name, rows * width)
        name = f"{type_name.lower()}_norm.weight"
        tensors.append((name, [width, rows], type_name, data))
        expected[name] = values
    # A type LayerLens lists but does not decode: 66-byte blocks of 256 weights.
    tensors.append(("blk.99.ffn_iq2_xxs.weight", [256, 2], "IQ2_XXS", rng.bytes(2 * 66)))
    return tensors, expected


def typed_metadata(version_name):
    tokens = [f"tok{i}" for i in range(1000)]
    return [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, f"LayerLens fixture ({version_name})"),
        ("general.alignment", U32, 32),
        ("llama.context_length", U32, 4096),
        ("llama.block_count", U32, 14),
        ("general.quantization_version", U32, 2),
        ("test.u8", U8, 200), ("test.i8", I8, -100), ("test.u16", U16, 60000),
        ("test.i16", I16, -30000), ("test.i32", I32, -123456), ("test.f32", F32, 0.5),
        ("test.bool", BOOL, True), ("test.u64", U64, 2 ** 40), ("test.i64", I64, -(2 ** 40)),
        ("test.f64", F64, 0.125),
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        ("tokenizer.ggml.scores", ARRAY, (F32, [float(-i) for i in range(1000)])),
        ("test.nested", ARRAY, (ARRAY, [(I32, [1, 2]), (I32, [3])])),
        ("tokenizer.chat_template", STRING, "{% for message in messages %}" * 20),
    ]


def main(folder):
    os.makedirs(folder, exist_ok=True)
    expected, scales = {}, {}
    tensors, values = typed_tensors(scales=scales)
    for version in (2, 3):
        name = f"types-v{version}.gguf"
        write_gguf(os.path.join(folder, name), typed_metadata(f"v{version}"), tensors, version)
        expected[name] = values

    aligned_kvs = [("general.architecture", STRING, "llama"), ("general.alignment", U32, 64)]
    write_gguf(os.path.join(folder, "aligned64.gguf"), aligned_kvs, tensors[:3], alignment=64)
    expected["aligned64.gguf"] = {t[0]: values[t[0]] for t in tensors[:3]}

    # A model split over three files: metadata in the first, tensors in every file.
    split_tensors = [tensors[0], tensors[4], tensors[5]]
    for i, tensor in enumerate(split_tensors):
        kvs = [("split.no", U16, i), ("split.count", U16, 3), ("split.tensors.count", I32, 3)]
        if i == 0:
            kvs = [("general.architecture", STRING, "llama")] + kvs
        write_gguf(os.path.join(folder, f"split-{i + 1:05d}-of-00003.gguf"), kvs, [tensor])
    expected["split-00001-of-00003.gguf"] = {t[0]: values[t[0]] for t in split_tensors}

    one = [tensors[0]]
    kvs = [("general.architecture", STRING, "llama")]

    def patched(name, patch, tensor_list=one, kv_list=kvs, **options):
        write_gguf(os.path.join(folder, name), kv_list, tensor_list, patch=patch, **options)

    def set_field(key, value):
        return lambda fields: fields.__setitem__(key, value)

    patched("bad-tensor-count.gguf", set_field("tensor_count", 2 ** 40))
    patched("bad-kv-count.gguf", set_field("kv_count", 2 ** 62))
    patched("bad-version.gguf", set_field("version", 1))
    patched("bad-magic.gguf", set_field("magic", b"GGUG"))
    patched("bad-type.gguf", set_field("types", [77]))
    patched("bad-dims.gguf", set_field("ndims", [5]), [(one[0][0], [256, 2, 1, 1, 1], one[0][2], one[0][3])])
    patched("bad-offset.gguf", set_field("offsets", [1 << 30]))
    patched("bad-alignment.gguf", None, one, [("general.alignment", U32, 48)])
    patched("bad-row.gguf", None, [(one[0][0], [100, 2], one[0][2], one[0][3])])
    # A string whose length runs past the end of the file.
    patched("bad-string.gguf", None, [], [("general.name", STRING, "x")])
    with open(os.path.join(folder, "bad-string.gguf"), "r+b") as f:
        data = f.read()
        at = data.index(b"general.name") + len("general.name") + 4
        f.seek(at)
        f.write(struct.pack("<Q", 10 ** 9))
    # Arrays nested deeper than the reader follows.
    deep = (I32, [7])
    for _ in range(12):
        deep = (ARRAY, [deep])
    patched("bad-depth.gguf", None, [], [("test.deep", ARRAY, deep)])
    patched("bad-value-type.gguf", None, [], [("test.odd", U8, 1)])
    with open(os.path.join(folder, "bad-value-type.gguf"), "r+b") as f:
        data = f.read()
        at = data.index(b"test.odd") + len("test.odd")
        f.seek(at)
        f.write(struct.pack("<I", 99))
    # The second file of a split model is missing.
    write_gguf(os.path.join(folder, "lonely-00001-of-00002.gguf"),
               [("split.no", U16, 0), ("split.count", U16, 2)], one)

    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f)
    with open(os.path.join(folder, "scales.json"), "w") as f:
        json.dump(scales, f)


def llm(path, layers, width, ff, vocab, alignment):
    """A llama-shaped model with Gaussian weights (a few outlier columns, spreads varying by
    layer) in the plain types llama.cpp converts to before quantizing."""
    local = np.random.default_rng(layers * 7919 + width)

    def matrix(rows, cols, std, type_name="F16"):
        values = local.normal(0, std, (rows, cols)).astype(np.float32)
        values[:, local.integers(0, cols, max(1, cols // 64))] *= 8
        if type_name == "F16":
            data = values.astype(np.float16).tobytes()
        elif type_name == "BF16":
            data = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        else:
            data = values.tobytes()
        return data, [cols, rows], type_name

    tensors = []

    def add(name, made):
        data, ne, type_name = made
        tensors.append((name, ne, type_name, data))

    add("token_embd.weight", matrix(vocab, width, 0.02))
    for i in range(layers):
        std = 0.02 * (1 + i / max(1, layers))
        add(f"blk.{i}.attn_norm.weight", matrix(1, width, 1.0, "F32"))
        for part in ("q", "k", "v", "output"):
            add(f"blk.{i}.attn_{part}.weight", matrix(width, width, std))
        add(f"blk.{i}.ffn_norm.weight", matrix(1, width, 1.0, "F32"))
        add(f"blk.{i}.ffn_gate.weight", matrix(ff, width, std))
        add(f"blk.{i}.ffn_up.weight", matrix(ff, width, std))
        add(f"blk.{i}.ffn_down.weight", matrix(width, ff, std * 0.7))
    add("output_norm.weight", matrix(1, width, 1.0, "F32"))
    add("output.weight", matrix(vocab, width, 0.02, "BF16"))
    # Norm weights are vectors: ne = [width].
    tensors = [(n, [ne[0]] if ne[1] == 1 else ne, t, d) for n, ne, t, d in tensors]
    kvs = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, "LayerLens generated llama"),
        ("general.alignment", U32, alignment),
        ("general.file_type", U32, 1),
        ("llama.block_count", U32, layers),
        ("llama.embedding_length", U32, width),
        ("llama.feed_forward_length", U32, ff),
        ("llama.attention.head_count", U32, max(1, width // 64)),
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"t{i}" for i in range(vocab)])),
        ("tokenizer.ggml.scores", ARRAY, (F32, [0.0] * vocab)),
    ]
    write_gguf(path, kvs, tensors, alignment=alignment)


def imatrix_gguf(dat_path, path):
    """The legacy importance matrix at dat_path (int32 count; per entry int32 name length,
    name, int32 ncall, int32 nval, nval float32 sums) as llama-imatrix's GGUF form."""
    data = open(dat_path, "rb").read()
    (count,) = struct.unpack_from("<i", data, 0)
    at = 4
    tensors = []
    for _ in range(count):
        (length,) = struct.unpack_from("<i", data, at)
        name = data[at + 4:at + 4 + length].decode()
        at += 4 + length
        ncall, nval = struct.unpack_from("<ii", data, at)
        at += 8
        sums = np.frombuffer(data, dtype="<f4", count=nval, offset=at)
        at += 4 * nval
        tensors.append((name + ".in_sum2", [nval, 1], "F32", sums.tobytes()))
        tensors.append((name + ".counts", [1, 1], "F32", np.float32([ncall]).tobytes()))
    write_gguf(path, [("general.type", STRING, "imatrix")], tensors)


if __name__ == "__main__":
    if sys.argv[1] == "--imatrix-gguf":
        imatrix_gguf(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "--llm":
        llm(sys.argv[2], *(int(a) for a in sys.argv[3:8]))
    elif sys.argv[1] == "--bench":
        bench_tensors, _ = typed_tensors(rows=int(sys.argv[3]))
        write_gguf(sys.argv[2], typed_metadata("bench"), bench_tensors)
    else:
        main(sys.argv[1])

"""Writes PyTorch checkpoints the way torch.save does, without torch.

An encoder independent of LayerLens's reader: Python's own pickle and zipfile, with stub
globals named exactly as torch's (torch._utils._rebuild_tensor_v2, torch.FloatStorage…) so
that pickle emits the GLOBAL opcodes torch.save emits, and persistent ids for storages as
torch's persistent_id returns them. Values come from numpy, which also writes the
reference: for every tensor its dtype, shape and the dense row-major bytes of its view.

usage: python3 torchSave.py OUT_DIR   (writes the fixtures and OUT_DIR/reference.json)
"""

import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import types
import zipfile

import numpy as np

# --- stub torch globals -------------------------------------------------------------

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _stub(module, name):
    def function(*args):
        raise RuntimeError("stub")

    function.__module__ = module.__name__
    function.__name__ = function.__qualname__ = name
    setattr(module, name, function)
    return function


rebuild_tensor_v2 = _stub(torch_utils, "_rebuild_tensor_v2")
rebuild_parameter = _stub(torch_utils, "_rebuild_parameter")

STORAGES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,  # bit patterns: numpy has no bfloat16
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "DoubleStorage": np.float64,
    "BoolStorage": np.bool_,
}
for _name in STORAGES:
    setattr(torch, _name, type(_name, (), {"__module__": "torch"}))


class Size(tuple):
    __module__ = "torch"
    __qualname__ = "Size"


torch.Size = Size


class Storage:
    """A storage: numpy data and the key torch gives it in the archive."""

    def __init__(self, key, type_name, data):
        self.key = key
        self.type = getattr(torch, type_name)
        self.data = np.ascontiguousarray(data, dtype=STORAGES[type_name])


class Tensor:
    """A strided view of a storage, pickled as torch.Tensor.__reduce_ex__ does."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce_ex__(self, protocol):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return (rebuild_tensor_v2, args)

    def values(self):
        itemsize = self.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
        )
        return np.ascontiguousarray(view)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, protocol):
        return (rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


def contiguous(storage, shape, offset=0):
    stride, step = [], 1
    for side in reversed(shape):
        stride.insert(0, step)
        step *= side
    return Tensor(storage, offset, shape, stride)


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.type, obj.key, "cpu", obj.data.size)
        return None


class LegacyPickler(pickle.Pickler):
    def __init__(self, file, storages, **kwargs):
        super().__init__(file, **kwargs)
        self.storages = storages

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.storages[obj.key] = obj
            return ("storage", obj.type, obj.key, "cpu", obj.data.size, None)
        return None


# --- writers ------------------------------------------------------------------------


def storages_in(obj, found):
    if isinstance(obj, Storage):
        found[obj.key] = obj
    elif isinstance(obj, Tensor):
        storages_in(obj.storage, found)
    elif isinstance(obj, Parameter):
        storages_in(obj.tensor, found)
    elif isinstance(obj, dict):
        for value in obj.values():
            storages_in(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            storages_in(value, found)
    return found


def aligned(zf, name, payload, alignment=64):
    """A stored record whose data starts at a multiple of `alignment`, as torch's writer pads."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    offset = zf.fp.tell() + 30 + len(name.encode())
    pad = (-(offset + 4)) % alignment
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, payload)


def save_zip(obj, path, prefix="archive", protocol=2, deflate_data=False):
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=protocol).dump(obj)
    with zipfile.ZipFile(path, "w") as zf:
        aligned(zf, f"{prefix}/data.pkl", buffer.getvalue())
        aligned(zf, f"{prefix}/byteorder", b"little")
        for key, storage in sorted(storages_in(obj, {}).items()):
            if deflate_data:
                zf.writestr(f"{prefix}/data/{key}", storage.data.tobytes(), zipfile.ZIP_DEFLATED)
            else:
                aligned(zf, f"{prefix}/data/{key}", storage.data.tobytes())
        aligned(zf, f"{prefix}/version", b"3\n")
        aligned(zf, f"{prefix}/.data/serialization_id", b"0123456789")
    return buffer.getvalue()


def save_legacy(obj, path):
    """torch < 1.6's _legacy_save: magic, protocol, sys_info, object, keys, storages."""
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    pickle.dump(sys_info, out, protocol=2)
    storages = {}
    LegacyPickler(out, storages, protocol=2).dump(obj)
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        data = storages[key].data
        out.write(struct.pack("<q", data.size))
        out.write(data.tobytes())
    with open(path, "wb") as f:
        f.write(out.getvalue())


def opcodes(pickled):
    return sorted({op.name for op, _, _ in pickletools.genops(pickled)})


# --- fixtures -----------------------------------------------------------------------


def reference_of(obj, prefix, out):
    if isinstance(obj, Parameter):
        obj = obj.tensor
    if isinstance(obj, Tensor):
        values = obj.values()
        out[prefix] = {
            "storage": obj.storage.type.__name__,
            "shape": list(obj.size),
            "hex": values.tobytes().hex(),
            "values": values.astype(np.float64).ravel().tolist()
            if obj.storage.type.__name__ != "BFloat16Storage"
            else (values.astype(np.uint32) << 16).view(np.float32).astype(np.float64).ravel().tolist(),
        }
    elif isinstance(obj, dict):
        for key, value in obj.items():
            reference_of(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            reference_of(value, f"{prefix}.{i}" if prefix else str(i), out)
    return out


def main(out_dir):
    rng = np.random.default_rng(0)
    os.makedirs(out_dir, exist_ok=True)
    reference = {}

    weight = Storage("0", "FloatStorage", rng.standard_normal(6 * 5).astype(np.float32))
    embed = Storage("1", "FloatStorage", rng.standard_normal(4 * 3).astype(np.float32))
    half = Storage("2", "HalfStorage", rng.standard_normal(2 * 3 * 2 * 2).astype(np.float16))
    bf16_values = rng.standard_normal(8).astype(np.float32)
    bf16 = Storage("3", "BFloat16Storage", (bf16_values.view(np.uint32) >> 16).astype(np.uint16))
    int8 = Storage("4", "CharStorage", rng.integers(-128, 128, 70000).astype(np.int8))
    steps = Storage("5", "LongStorage", np.array([3, -1, 2**40], dtype=np.int64))
    mask = Storage("6", "BoolStorage", np.array([True, False, True], dtype=np.bool_))
    bias = Storage("7", "DoubleStorage", rng.standard_normal(6))
    exp_avg = Storage("8", "FloatStorage", rng.standard_normal(30).astype(np.float32))
    wide = Storage("9", "IntStorage", np.arange(300, dtype=np.int32))

    state = collections.OrderedDict()
    state["encoder.fc1.weight"] = Parameter(contiguous(weight, (6, 5)))
    state["encoder.fc1.bias"] = contiguous(bias, (6,))
    # a transposed view of the same storage (non-contiguous strides)
    state["encoder.fc1.weight_t"] = Tensor(weight, 0, (5, 6), (1, 5))
    # a row of it (a storage offset) and every other column (stride 2)
    state["encoder.fc1.row2"] = Tensor(weight, 10, (5,), (1,))
    state["encoder.fc1.cols"] = Tensor(weight, 1, (6, 2), (5, 2))
    # tied weights: two names, one storage
    state["embed.weight"] = Parameter(contiguous(embed, (4, 3)))
    state["decoder.weight"] = Parameter(contiguous(embed, (4, 3)))
    state["conv.weight"] = contiguous(half, (2, 3, 2, 2))  # four dimensions: MARK … TUPLE
    state["norm.weight"] = contiguous(bf16, (8,))
    state["quant.codes"] = contiguous(int8, (1, 70000))  # BININT (70000), BININT1 (1)
    state["scalar"] = Tensor(steps, 0, (), ())  # a 0-d tensor: EMPTY_TUPLE
    state["mask"] = contiguous(mask, (3,))
    state["wide"] = contiguous(wide, (300,))  # BININT2
    state._metadata = collections.OrderedDict([("", {"version": 1}), ("encoder.fc1", {"version": 1})])

    groups = [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0, 1]}]
    many = {f"k{i}": i for i in range(300)}  # > 256 memo entries: LONG_BINPUT
    late = ["after the memo passed 256 entries"]
    checkpoint = {
        "model": state,
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": contiguous(exp_avg, (6, 5))}},
            "param_groups": groups,
        },
        "epoch": 7,
        "name": "run-1",
        "big": 2**40,
        "negative": -5,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "blob": b"\x00\x01",
        "many": many,
        "groups_again": groups,  # BINGET
        "late": late,
        "late_again": late,  # memoized after 256 entries: LONG_BINGET
        "size": Size((2, 3)),  # a tuple subclass: NEWOBJ
        "single": [1],
    }
    pickled = save_zip(checkpoint, os.path.join(out_dir, "checkpoint.pt"))
    reference["checkpoint.pt"] = {"tensors": reference_of(checkpoint, "", {}), "opcodes": opcodes(pickled)}

    # protocol 4 (torch.save(..., pickle_protocol=4)): FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL
    p4 = {"fc.weight": contiguous(weight, (6, 5)), "fc.half": contiguous(half, (2, 3, 2, 2))}
    pickled = save_zip(p4, os.path.join(out_dir, "protocol4.pth"), prefix="protocol4", protocol=4)
    reference["protocol4.pth"] = {"tensors": reference_of(p4, "", {}), "opcodes": opcodes(pickled)}

    # a Hugging Face style .bin, and one re-zipped with deflated storages
    hf = collections.OrderedDict([("bert.embeddings.weight", contiguous(embed, (4, 3))), ("cls.bias", contiguous(bias, (6,)))])
    save_zip(hf, os.path.join(out_dir, "pytorch_model.bin"))
    reference["pytorch_model.bin"] = {"tensors": reference_of(hf, "", {})}
    save_zip(hf, os.path.join(out_dir, "deflated.ckpt"), deflate_data=True)
    reference["deflated.ckpt"] = {"tensors": reference_of(hf, "", {})}

    # sharded: two shards and their index
    shard_dir = os.path.join(out_dir, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    first = collections.OrderedDict([("layer.0.weight", contiguous(weight, (6, 5)))])
    second = collections.OrderedDict([("layer.1.weight", contiguous(embed, (4, 3))), ("extra", contiguous(bias, (6,)))])
    save_zip(first, os.path.join(shard_dir, "pytorch_model-00001-of-00002.bin"))
    save_zip(second, os.path.join(shard_dir, "pytorch_model-00002-of-00002.bin"))
    with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump(
            {
                "metadata": {"total_size": 6 * 5 * 4 + 4 * 3 * 4},
                "weight_map": {
                    "layer.0.weight": "pytorch_model-00001-of-00002.bin",
                    "layer.1.weight": "pytorch_model-00002-of-00002.bin",
                },
            },
            f,
        )
    reference["sharded"] = {"tensors": {**reference_of(first, "", {}), "layer.1.weight": reference_of(second, "", {})["layer.1.weight"]}}

    # the legacy format (torch < 1.6)
    legacy = collections.OrderedDict([("fc.weight", Parameter(contiguous(weight, (6, 5)))), ("fc.bias", contiguous(bias, (6,))), ("fc.weight_t", Tensor(weight, 0, (5, 6), (1, 5))), ("norm", contiguous(bf16, (8,)))])
    save_legacy(legacy, os.path.join(out_dir, "legacy.pt"))
    reference["legacy.pt"] = {"tensors": reference_of(legacy, "", {})}

    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f)


def binunicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def hostile(out_dir, marker):
    """Pickles that run a command when Python loads them: each global torch.load refuses."""
    os.makedirs(out_dir, exist_ok=True)
    command = f"touch {marker}"
    calls = {
        "os_system": b"\x80\x02cos\nsystem\n" + binunicode(command) + b"\x85R.",
        "builtins_eval": b"\x80\x02cbuiltins\neval\n"
        + binunicode(f"__import__('os').system({command!r})")
        + b"\x85R.",
        "subprocess_popen": b"\x80\x02csubprocess\nPopen\n"
        + binunicode("touch")
        + binunicode(marker)
        + b"\x86\x85R.",
        # protocol 4 names the global with STACK_GLOBAL
        "stack_global": b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
        + binunicode(command)
        + b"\x85R.",
    }
    for name, payload in calls.items():
        # inside a tensor dict, after an allowed global, so the reader is well into the file
        with zipfile.ZipFile(os.path.join(out_dir, f"{name}.pt"), "w") as zf:
            aligned(zf, "archive/data.pkl", payload)
            aligned(zf, "archive/byteorder", b"little")
        with open(os.path.join(out_dir, f"{name}.pkl"), "wb") as f:
            f.write(payload)
    # the legacy format with the same payload as its object
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True}, out, protocol=2)
    out.write(calls["os_system"])
    pickle.dump([], out, protocol=2)
    with open(os.path.join(out_dir, "legacy_os_system.pt"), "wb") as f:
        f.write(out.getvalue())


def raw_zip(path, payload, extra=()):
    with zipfile.ZipFile(path, "w") as zf:
        aligned(zf, "archive/data.pkl", payload)
        for name, data in extra:
            aligned(zf, name, data)


def malformed(out_dir):
    """Checkpoints that are broken in one way each (the reader must name the file and the problem)."""
    os.makedirs(out_dir, exist_ok=True)
    small = Storage("0", "FloatStorage", np.arange(4, dtype=np.float32))
    save_zip({"w": Tensor(small, 2, (4,), (1,))}, os.path.join(out_dir, "overreach.pt"))
    save_zip({"w": Tensor(small, 0, (2, 2), (2,))}, os.path.join(out_dir, "rank_mismatch.pt"))
    big_endian = os.path.join(out_dir, "big_endian.pt")
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump({"w": contiguous(small, (4,))})
    raw_zip(big_endian, buffer.getvalue(), [("archive/byteorder", b"big"), ("archive/data/0", small.data.byteswap().tobytes())])
    raw_zip(os.path.join(out_dir, "missing_storage.pt"), buffer.getvalue())
    with zipfile.ZipFile(os.path.join(out_dir, "no_pickle.pt"), "w") as zf:
        zf.writestr("archive/version", b"3\n")
    raw_zip(os.path.join(out_dir, "torchscript.pt"), buffer.getvalue(), [("archive/code/__torch__.py", b"class Net: pass\n")])
    payloads = {
        "deep_marks": b"\x80\x02" + b"(" * 1100 + b"t" * 1100 + b".",
        "huge_string": b"\x80\x02X" + struct.pack("<I", 0xFFFFFFF0) + b"abc.",
        "huge_long": b"\x80\x02\x8b" + struct.pack("<I", 1_000_000) + b"\x00" * 16 + b".",
        "memo_missing": b"\x80\x02h\x05.",
        "bad_pid": b"\x80\x02K\x05Q.",
        "unknown_opcode": b"\x80\x02\xff.",
        "truncated_pickle": b"\x80\x02}q\x00(X\x05\x00\x00\x00ab",
        "instance": b"\x80\x02(cos\nsystem\nX\x02\x00\x00\x00lso.",
    }
    # lists nested 2000 deep without MARKs: memo entries k-1 and k, APPEND, POP
    deep = bytearray(b"\x80\x02]r" + struct.pack("<I", 0))
    for k in range(1, 2000):
        deep += b"]r" + struct.pack("<I", k) + b"j" + struct.pack("<I", k - 1) + b"j" + struct.pack("<I", k) + b"a0"
    deep += b"0" * 1999 + b"."
    payloads["deep_lists"] = bytes(deep)
    payloads["cycle"] = b"\x80\x02]q\x00h\x00a."
    for name, payload in payloads.items():
        raw_zip(os.path.join(out_dir, f"{name}.pt"), payload)


def gaussian(path, megabytes, dtype):
    """A state dict of N(0, 0.02) 1024x1024 weights in float32 or bfloat16, `megabytes` in all."""
    rng = np.random.default_rng(0)
    state = collections.OrderedDict()
    itemsize = 4 if dtype == "float32" else 2
    for i in range(max(1, int(megabytes * 2**20 // (1024 * 1024 * itemsize)))):
        values = (rng.standard_normal(1024 * 1024) * 0.02).astype(np.float32)
        if dtype == "float32":
            storage = Storage(str(i), "FloatStorage", values)
        else:
            words = values.view(np.uint32)
            rounded = ((words + 0x7FFF + ((words >> 16) & 1)) >> 16).astype(np.uint16)
            storage = Storage(str(i), "BFloat16Storage", rounded)
        state[f"layers.{i}.weight"] = Parameter(contiguous(storage, (1024, 1024)))
    save_zip(state, path)


if __name__ == "__main__":
    if sys.argv[1] == "gaussian":
        gaussian(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "hostile":
        hostile(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "malformed":
        malformed(sys.argv[2])
    else:
        main(sys.argv[1])

"""Quantized ONNX models built with the onnx package and NumPy, independently of LayerLens.

Usage: python3 quantizedOnnx.py <folder>

Writes one model per quantization layout into <folder> and reference.json: for each model,
its input (name, shape) and, per quantized weight, the values NumPy computes as
(q - zero_point) * scale in float32 (row-major, the shape LayerLens shows), the scheme
facts a reader should report, and the integer codes. The layouts follow the operators'
specifications and the graphs onnxruntime's quantizer writes (QDQ; DynamicQuantizeLinear
+ MatMulInteger/ConvInteger + Cast + Mul(input scale * weight scale); QLinearConv and
QLinearMatMul; com.microsoft MatMulNBits).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(1234)
folder = sys.argv[1]
reference = {}


def f32(shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def save(name, nodes, inputs, outputs, initializers, opset, weights, extra_opsets=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="quantizedOnnx.py")
    # onnx 1.12 knows opsets up to 17: the IR version onnxruntime needs for opset 21 is set by hand.
    model.ir_version = 10 if opset >= 21 else 8
    if opset <= 17 and not extra_opsets:
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, name + ".onnx"))
    first = inputs[0]
    dims = [d.dim_value for d in first.type.tensor_type.shape.dim]
    reference[name] = {"input": {"name": first.name, "shape": dims}, "weights": weights}


def weight_ref(values, codes, stored, **facts):
    """What a reader should report of a weight; `stored`: the arrays the file holds for it."""
    values = np.asarray(values, dtype=np.float32)
    codes = np.asarray(codes).astype(np.int64)
    matrix = values.reshape(values.shape[0], -1).astype(np.float64)
    used, counts = np.unique(codes, return_counts=True)
    return {
        "values": [float(v) for v in values.ravel()],
        "codes": [int(c) for c in codes.ravel()],
        "bitsPerWeight": sum(np.asarray(a).nbytes for a in stored) * 8 / values.size,
        "sigma": [float(v) for v in np.linalg.svd(matrix, compute_uv=False)],
        "levelsUsed": int(used.size),
        "codeCounts": {str(int(c)): int(n) for c, n in zip(used, counts)},
        **facts,
    }


def float_input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# 1. QDQ per tensor, uint8 with a zero point: MatMul(X, DequantizeLinear(Wq, s, zp)).
K, N = 16, 8
wq = rng.integers(0, 256, size=(K, N), dtype=np.uint8)
s = np.float32(0.0125)
zp = np.uint8(121)
save(
    "qdq_per_tensor",
    [
        helper.make_node("DequantizeLinear", ["W_q", "W_scale", "W_zp"], ["W"]),
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
    ],
    [float_input("X", [K, K])],
    [float_input("Y", [K, N])],
    [
        numpy_helper.from_array(wq, "W_q"),
        numpy_helper.from_array(np.array(s, dtype=np.float32), "W_scale"),
        numpy_helper.from_array(np.array(zp, dtype=np.uint8), "W_zp"),
    ],
    13,
    {"W_q": weight_ref((wq.astype(np.float32) - np.float32(zp)) * s, wq, [wq, s, zp], scheme="uint8 per-tensor",
                       granularity="tensor", symmetric=False, identity=True)},
)

# 2. QDQ per axis: an int8 Conv weight (axis 0, symmetric) and a uint8 MatMul weight (axis 1).
cw = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
cs = (rng.random(4).astype(np.float32) * 0.02 + 0.001).astype(np.float32)
mw = rng.integers(0, 256, size=(36, 6), dtype=np.uint8)
ms = (rng.random(6).astype(np.float32) * 0.05 + 0.001).astype(np.float32)
mz = rng.integers(100, 156, size=6, dtype=np.uint8)
save(
    "qdq_per_axis",
    [
        helper.make_node("DequantizeLinear", ["C_q", "C_scale", "C_zp"], ["C"], axis=0),
        helper.make_node("Conv", ["X", "C"], ["H"]),
        helper.make_node("Reshape", ["H", "flat"], ["F"]),
        helper.make_node("DequantizeLinear", ["M_q", "M_scale", "M_zp"], ["M"], axis=1),
        helper.make_node("MatMul", ["F", "M"], ["Y"]),
    ],
    [float_input("X", [1, 3, 5, 5])],
    [float_input("Y", [1, 6])],
    [
        numpy_helper.from_array(cw, "C_q"),
        numpy_helper.from_array(cs, "C_scale"),
        numpy_helper.from_array(np.zeros(4, dtype=np.int8), "C_zp"),
        numpy_helper.from_array(np.array([1, 36], dtype=np.int64), "flat"),
        numpy_helper.from_array(mw, "M_q"),
        numpy_helper.from_array(ms, "M_scale"),
        numpy_helper.from_array(mz, "M_zp"),
    ],
    13,
    {
        "C_q": weight_ref(cw.astype(np.float32) * cs.reshape(4, 1, 1, 1), cw, [cw, cs, np.zeros(4, np.int8)], scheme="int8 per-channel",
                          granularity="channel", symmetric=True),
        "M_q": weight_ref((mw.astype(np.float32) - mz.astype(np.float32)) * ms, mw, [mw, ms, mz],
                          scheme="uint8 per-channel", granularity="channel", symmetric=False),
    },
)

# 3. QDQ blocked (opset 21): int8 codes [64, 8], blocks of 32 along axis 0, with zero points.
K, N, B = 64, 8, 32
bq = rng.integers(-128, 128, size=(K, N), dtype=np.int8)
bs = (rng.random((K // B, N)).astype(np.float32) * 0.03 + 0.001).astype(np.float32)
bz = rng.integers(-5, 6, size=(K // B, N), dtype=np.int8)
expanded_s = np.repeat(bs, B, axis=0)
expanded_z = np.repeat(bz, B, axis=0).astype(np.float32)
save(
    "qdq_blocked",
    [
        helper.make_node("DequantizeLinear", ["B_q", "B_scale", "B_zp"], ["W"], axis=0, block_size=B),
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
    ],
    [float_input("X", [K, K])],
    [float_input("Y", [K, N])],
    [
        numpy_helper.from_array(bq, "B_q"),
        numpy_helper.from_array(bs, "B_scale"),
        numpy_helper.from_array(bz, "B_zp"),
    ],
    21,
    {"B_q": weight_ref((bq.astype(np.float32) - expanded_z) * expanded_s, bq, [bq, bs, bz], scheme="int8 blocked",
                       granularity="block", blockSize=B, symmetric=False, identity=True)},
)

# 4. Dynamic quantization (onnxruntime's layout): DynamicQuantizeLinear, MatMulInteger with a
#    per-column int8 weight, Cast, Mul(result, Mul(input scale, weight scale)).
K, N = 16, 8
iq = rng.integers(-127, 128, size=(K, N), dtype=np.int8)
isc = (rng.random(N).astype(np.float32) * 0.02 + 0.001).astype(np.float32)
save(
    "dynamic_matmul_integer",
    [
        helper.make_node("DynamicQuantizeLinear", ["X"], ["X_q", "X_scale", "X_zp"]),
        helper.make_node("MatMulInteger", ["X_q", "W_q", "X_zp", "W_zp"], ["P"]),
        helper.make_node("Cast", ["P"], ["P_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["X_scale", "W_scale"], ["S"]),
        helper.make_node("Mul", ["P_f", "S"], ["Y"]),
    ],
    [float_input("X", [K, K])],
    [float_input("Y", [K, N])],
    [
        numpy_helper.from_array(iq, "W_q"),
        numpy_helper.from_array(np.zeros(N, dtype=np.int8), "W_zp"),
        numpy_helper.from_array(isc, "W_scale"),
    ],
    13,
    {"W_q": weight_ref(iq.astype(np.float32) * isc, iq, [iq, isc, np.zeros(N, np.int8)], scheme="int8 per-channel",
                       granularity="channel", symmetric=True)},
)

# 5. Dynamic quantization of a convolution: ConvInteger with a uint8 weight and a scalar zero
#    point; the weight scale is per output channel, [4, 1, 1] to broadcast over the result.
vq = rng.integers(0, 256, size=(4, 3, 3, 3), dtype=np.uint8)
vs = (rng.random((4, 1, 1)).astype(np.float32) * 0.02 + 0.001).astype(np.float32)
vz = np.uint8(130)
save(
    "dynamic_conv_integer",
    [
        helper.make_node("DynamicQuantizeLinear", ["X"], ["X_q", "X_scale", "X_zp"]),
        helper.make_node("ConvInteger", ["X_q", "V_q", "X_zp", "V_zp"], ["P"]),
        helper.make_node("Cast", ["P"], ["P_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["X_scale", "V_scale"], ["S"]),
        helper.make_node("Mul", ["P_f", "S"], ["Y"]),
    ],
    [float_input("X", [1, 3, 6, 6])],
    [float_input("Y", [1, 4, 4, 4])],
    [
        numpy_helper.from_array(vq, "V_q"),
        numpy_helper.from_array(np.array(vz, dtype=np.uint8), "V_zp"),
        numpy_helper.from_array(vs, "V_scale"),
    ],
    13,
    {"V_q": weight_ref((vq.astype(np.float32) - np.float32(vz)) * vs.reshape(4, 1, 1, 1), vq, [vq, vs, vz],
                       scheme="uint8 per-channel", granularity="channel", symmetric=False)},
)

# 6. QLinearConv with per-channel int8 weights, and QLinearMatMul with a uint8 weight.
qc = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
qcs = (rng.random(4).astype(np.float32) * 0.02 + 0.001).astype(np.float32)
qm = rng.integers(0, 256, size=(64, 5), dtype=np.uint8)
qms = np.float32(0.004)
qmz = np.uint8(97)
scalar = lambda v, t, n: numpy_helper.from_array(np.array(v, dtype=t), n)  # noqa: E731
save(
    "qlinear",
    [
        helper.make_node("QuantizeLinear", ["X", "x_s", "x_z"], ["X_q"]),
        helper.make_node("QLinearConv", ["X_q", "x_s", "x_z", "Q_w", "Q_s", "Q_z", "h_s", "h_z"], ["H_q"]),
        helper.make_node("Reshape", ["H_q", "flat"], ["F_q"]),
        helper.make_node("QLinearMatMul", ["F_q", "h_s", "h_z", "M_w", "M_s", "M_z", "y_s", "y_z"], ["Y_q"]),
        helper.make_node("DequantizeLinear", ["Y_q", "y_s", "y_z"], ["Y"]),
    ],
    [float_input("X", [1, 3, 6, 6])],
    [float_input("Y", [1, 5])],
    [
        scalar(0.02, np.float32, "x_s"), scalar(128, np.uint8, "x_z"),
        numpy_helper.from_array(qc, "Q_w"), numpy_helper.from_array(qcs, "Q_s"),
        numpy_helper.from_array(np.zeros(4, dtype=np.int8), "Q_z"),
        scalar(0.05, np.float32, "h_s"), scalar(128, np.uint8, "h_z"),
        numpy_helper.from_array(np.array([1, 64], dtype=np.int64), "flat"),
        numpy_helper.from_array(qm, "M_w"), scalar(qms, np.float32, "M_s"), scalar(qmz, np.uint8, "M_z"),
        scalar(0.1, np.float32, "y_s"), scalar(128, np.uint8, "y_z"),
    ],
    13,
    {
        "Q_w": weight_ref(qc.astype(np.float32) * qcs.reshape(4, 1, 1, 1), qc, [qc, qcs, np.zeros(4, np.int8)], scheme="int8 per-channel",
                          granularity="channel", symmetric=True),
        "M_w": weight_ref((qm.astype(np.float32) - np.float32(qmz)) * qms, qm, [qm, qms, qmz], scheme="uint8 per-tensor",
                          granularity="tensor", symmetric=False),
    },
)


# 7. com.microsoft MatMulNBits: 4-bit codes along K in blocks of 32, B as [N, blocks, 16] bytes.
def nbits_model(name, K, N, zero_points):
    B = 32
    blocks = (K + B - 1) // B
    codes = rng.integers(0, 16, size=(N, blocks * B), dtype=np.uint8)
    codes[:, K:] = 0
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).reshape(N, blocks, B // 2)
    scales = (rng.random((N, blocks)).astype(np.float32) * 0.05 + 0.001).astype(np.float32)
    inputs = ["X", "B", "scales"]
    initializers = [numpy_helper.from_array(packed, "B"),
                    numpy_helper.from_array(scales.ravel(), "scales")]
    zeros = np.full((N, blocks), 8, dtype=np.float32)
    stored = [packed, scales]
    if zero_points == "packed":
        z = rng.integers(0, 16, size=(N, blocks), dtype=np.uint8)
        row = (blocks + 1) // 2
        zpad = np.zeros((N, row * 2), dtype=np.uint8)
        zpad[:, :blocks] = z
        zpacked = (zpad[:, 0::2] | (zpad[:, 1::2] << 4)).astype(np.uint8)
        initializers.append(numpy_helper.from_array(zpacked.ravel(), "zero_points"))
        inputs.append("zero_points")
        zeros = z.astype(np.float32)
        stored.append(zpacked)
    elif zero_points == "float":
        z = (rng.random((N, blocks)) * 15).astype(np.float32)
        initializers.append(numpy_helper.from_array(z.ravel(), "zero_points"))
        inputs.append("zero_points")
        zeros = z
        stored.append(z)
    w = (codes[:, :K].astype(np.float32) - np.repeat(zeros, B, axis=1)[:, :K]) * np.repeat(scales, B, axis=1)[:, :K]
    save(
        name,
        [helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=K, N=N, bits=4, block_size=B)],
        [float_input("X", [K, K])],
        [float_input("Y", [K, N])],
        initializers,
        13,
        {"B": weight_ref(w.T, codes[:, :K].T, stored, scheme="MatMulNBits 4-bit", granularity="block", blockSize=B,
                         symmetric=zero_points is None, identity=True, shape=[K, N])},
        extra_opsets=[("com.microsoft", 1)],
    )


nbits_model("matmulnbits_zero_points", 64, 8, "packed")
nbits_model("matmulnbits_symmetric", 40, 6, None)
nbits_model("matmulnbits_float_zero_points", 64, 4, "float")

with open(os.path.join(folder, "reference.json"), "w") as out:
    json.dump(reference, out)

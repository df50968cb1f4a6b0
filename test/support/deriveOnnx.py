"""Derive corpus models that no npm package ships from real trained ones (see corpus.ts).

    python3 deriveOnnx.py opset9 SOURCE TARGET   # the same network in its opset-9 form
    python3 deriveOnnx.py fp16 SOURCE TARGET     # its float32 weights stored as float16

opset9: Clip's min/max and Slice's starts/ends/axes go back from inputs (opset 10/11) to
attributes, MaxPool loses ceil_mode/dilations when they hold their defaults (anything
else is refused), the Constant nodes left unread are dropped, and the opset import says 9.
fp16: every float32 weight of two or more dimensions (initializer or Constant value) is
stored as float16 and read through a Cast back to float32, the form of fp16 storage that
keeps the computation in float32. Both results must pass onnx.checker.
"""
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper

def constant_values(g):
    values = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value':
                    values[n.output[0]] = numpy_helper.to_array(a.t)
    return values

def to_opset9(m):
    g = m.graph
    values = constant_values(g)
    for n in g.node:
        if n.op_type == 'Clip' and len(n.input) > 1:
            attrs = []
            if len(n.input) > 1 and n.input[1]:
                attrs.append(helper.make_attribute('min', float(values[n.input[1]])))
            if len(n.input) > 2 and n.input[2]:
                attrs.append(helper.make_attribute('max', float(values[n.input[2]])))
            del n.input[1:]
            n.attribute.extend(attrs)
        if n.op_type == 'Slice' and len(n.input) > 1:
            # starts, ends, axes moved from attributes to inputs at opset 10 (steps came then).
            names = ['starts', 'ends', 'axes', 'steps']
            given = {names[i - 1]: values[x] for i, x in enumerate(n.input) if i > 0 and x}
            if 'steps' in given and not all(int(v) == 1 for v in given.pop('steps')):
                raise ValueError(f'{n.name}: steps other than 1')
            attrs = [helper.make_attribute(k, [int(v) for v in given[k]]) for k in ('starts', 'ends', 'axes') if k in given]
            del n.input[1:]
            n.attribute.extend(attrs)
        if n.op_type == 'MaxPool':
            # ceil_mode and dilations came with opset 10: only their defaults can go.
            kept = []
            for a in n.attribute:
                if a.name == 'ceil_mode' and a.i == 0:
                    continue
                if a.name == 'dilations' and all(d == 1 for d in a.ints):
                    continue
                if a.name in ('ceil_mode', 'dilations'):
                    raise ValueError(f'{n.name}: {a.name} is not its default')
                kept.append(a)
            del n.attribute[:]
            n.attribute.extend(kept)
    # The Constant nodes that fed the moved inputs are read by nothing now.
    used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    kept = [n for n in g.node if n.op_type != 'Constant' or n.output[0] in used]
    del g.node[:]
    g.node.extend(kept)
    for o in m.opset_import:
        if o.domain in ('', 'ai.onnx'):
            o.version = 9
    return m

def to_fp16_storage(m):
    # Weights (float32 tensors of two or more dimensions, initializers or Constant values)
    # stored as float16, each read through a Cast back to float32.
    g = m.graph
    nodes = []
    casts = []
    def cast(name):
        return helper.make_node('Cast', [name + '_fp16'], [name], name=name + '_to_float', to=onnx.TensorProto.FLOAT)
    for t in g.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2:
            name = t.name
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), name + '_fp16'))
            casts.append(cast(name))
    for n in g.node:
        nodes.append(n)
        if n.op_type != 'Constant':
            continue
        for a in n.attribute:
            if a.name == 'value' and a.t.data_type == onnx.TensorProto.FLOAT and len(a.t.dims) >= 2:
                name = n.output[0]
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
                n.output[0] = name + '_fp16'
                nodes.append(cast(name))
    del g.node[:]
    g.node.extend(casts + nodes)
    return m

kind, source, target = sys.argv[1:4]
m = onnx.load(source)
m = to_opset9(m) if kind == 'opset9' else to_fp16_storage(m)
onnx.checker.check_model(m)
onnx.save(m, target)

/**
 * Models derived from real ones by python3-onnx (independent of LayerLens).
 *
 * float16 and bfloat16 models derived from a real float32 model by python3-onnx and NumPy
 * (independent of LayerLens): every float32 initializer of two or more dimensions is
 * stored in the 16-bit type (float16: NumPy's astype; bfloat16: the top 16 bits of the
 * float32, rounded to nearest even) and a Cast back to float32 computes the original name,
 * as weight-only 16-bit exports do. The Casts are appended after the other nodes, so the
 * graph is valid but not topologically sorted, like some fp16 converters' output. A
 * bfloat16 Cast needs opset 13: the model is converted first by onnx.version_converter.
 */
import { spawnSync } from 'node:child_process';
import { pythonWithNumpy } from './python';

const SCRIPT = `
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

source, target, kind = sys.argv[1], sys.argv[2], sys.argv[3]
model = onnx.load(source)
if kind == 'bfloat16':
    opset = [o for o in model.opset_import if o.domain in ('', 'ai.onnx')][0]
    if opset.version < 13:
        model = version_converter.convert_version(model, 13)
graph = model.graph
casts = []
kept = []
converted = 0
for t in graph.initializer:
    if t.data_type != TensorProto.FLOAT or len(t.dims) < 2:
        kept.append(t)
        continue
    values = numpy_helper.to_array(t).astype(np.float32)
    half_name = t.name + '_' + kind
    if kind == 'float16':
        half = numpy_helper.from_array(values.astype(np.float16), half_name)
        code = TensorProto.FLOAT16
    else:
        bits = values.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        half = helper.make_tensor(half_name, TensorProto.BFLOAT16, list(t.dims), rounded.tobytes(), raw=True)
        code = TensorProto.BFLOAT16
    kept.append(half)
    casts.append(helper.make_node('Cast', [half_name], [t.name], name=t.name + '_Cast', to=TensorProto.FLOAT))
    converted += 1
del graph.initializer[:]
graph.initializer.extend(kept)
names = {c.output[0] for c in casts}
inputs = [i for i in graph.input if i.name not in names]
del graph.input[:]
graph.input.extend(inputs)
graph.node.extend(casts)
onnx.save(model, target)
print(converted)
`;

/** Write the 16-bit derivation of `source` to `target`; returns how many weights were converted. */
export function deriveHalfModel(
  source: string,
  target: string,
  kind: 'float16' | 'bfloat16',
): number {
  const result = spawnSync(pythonWithNumpy(), ['-c', SCRIPT, source, target, kind], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`deriving a ${kind} model failed: ${result.stderr}`);
  return Number(result.stdout.trim());
}

const OLD_OPSET_SCRIPT = `
import sys
import onnx
from onnx import helper

source, target, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = onnx.load(source)
for entry in model.opset_import:
    if entry.domain in ('', 'ai.onnx'):
        entry.version = opset
graph = model.graph
at, conv = next((i, n) for i, n in enumerate(graph.node) if n.op_type == 'Conv')
original = conv.output[0]
conv.output[0] = original + '_unclipped'
clip = helper.make_node('Clip', [conv.output[0]], [original], name='clip_no_op', min=-3.0e38, max=3.0e38)
graph.node.insert(at + 1, clip)
onnx.checker.check_model(model)
onnx.save(model, target)
`;

/**
 * The model at `source` stamped with an older default opset (its operators must have the
 * same form there: python3-onnx's checker verifies it against that opset's schemas), with
 * a Clip in the attribute form of opsets before 11 after its first Conv whose bounds
 * (±3·10³⁸) change nothing: like Paddle's relu6 Clips, it keeps LayerLens from raising
 * the opset, so compression writes the forms of the old opset.
 */
export function deriveOldOpsetModel(source: string, target: string, opset: number): void {
  const result = spawnSync(
    pythonWithNumpy(),
    ['-c', OLD_OPSET_SCRIPT, source, target, String(opset)],
    {
      encoding: 'utf8',
    },
  );
  if (result.status !== 0)
    throw new Error(`deriving an opset-${opset} model failed: ${result.stderr}`);
}

/**
 * Opset and IR versions: what a model imports, and raising the default-domain opset (and
 * IR version) when a method needs newer operators: per-axis DequantizeLinear needs opset
 * 13, block-wise INT4 DequantizeLinear opset 21 and IR 10.
 *
 * Most operator revisions between opsets only widen type lists. The few that changed how
 * an existing node is written are rewritten here: `axes` (and Split's `split`) moved from
 * an attribute to an input (Squeeze, Unsqueeze, Split, ReduceSum at 13; the other Reduce*
 * ops at 18), Slice's `starts`, `ends` and `axes` moved to inputs at 10, and Split
 * without sizes needs `num_outputs` from 18. Models using an
 * operator whose older form cannot be rewritten this way are refused with its name.
 */
import type { onnx } from 'onnx-proto';
import { int64ToSafeInteger, type ProtoInt64 } from './int64';
import { ONNX_DATA_TYPE } from '../formats/onnxDataTypes';
import { attr, type NameAllocator } from './nodes';
import { allScopes, isDefaultDomain } from './scopes';

/** IR version from which graph inputs no longer list every initializer. */
export const IR_VERSION_INITIALIZERS_NOT_INPUTS = 4;

/** The default-domain opset the model imports (0 when it imports none). */
export function defaultOpset(model: onnx.IModelProto): number {
  for (const entry of model.opsetImport ?? []) {
    if (isDefaultDomain(entry.domain)) {
      return int64ToSafeInteger(entry.version as ProtoInt64) ?? 0;
    }
  }
  return 0;
}

export function irVersionOf(model: onnx.IModelProto): number {
  return int64ToSafeInteger(model.irVersion as ProtoInt64) ?? 0;
}

/** Operators whose attribute moved to an input, and the opset where it did. */
const ATTRIBUTE_TO_INPUT: ReadonlyMap<string, { since: number; attribute: string }> = new Map([
  ['Squeeze', { since: 13, attribute: 'axes' }],
  ['Unsqueeze', { since: 13, attribute: 'axes' }],
  ['Split', { since: 13, attribute: 'split' }],
  ['ReduceSum', { since: 13, attribute: 'axes' }],
  ...[
    'ReduceMean',
    'ReduceMax',
    'ReduceMin',
    'ReduceProd',
    'ReduceL1',
    'ReduceL2',
    'ReduceLogSum',
    'ReduceLogSumExp',
    'ReduceSumSquare',
  ].map((op) => [op, { since: 18, attribute: 'axes' }] as const),
]);

/** Operators whose older revisions differ in ways not rewritten here (op → first opset after the change). */
const NOT_REWRITTEN: ReadonlyMap<string, number> = new Map([
  ['Pad', 11],
  ['Resize', 11],
  ['Upsample', 10],
  ['Scatter', 11],
  ['Clip', 11],
  ['TopK', 10],
  ['Dropout', 12],
  ['DFT', 20],
]);

/** IR version each opset needs at least. */
function irForOpset(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 17) return 8;
  if (opset >= 15) return 8;
  if (opset >= 13) return 7;
  return 3;
}

/** A Constant node holding a 1-D int64 tensor named `name`. */
function int64Constant(name: string, values: number[], names: NameAllocator): onnx.INodeProto {
  return {
    opType: 'Constant',
    input: [],
    output: [name],
    name: names.fresh(`${name}_Constant`),
    domain: '',
    attribute: [
      attr.tensor('value', {
        dataType: ONNX_DATA_TYPE.INT64,
        dims: [values.length],
        int64Data: values,
      }),
    ],
  };
}

/** Why the model cannot be raised to `target`, or undefined when it can. */
export function opsetRaiseBlocker(
  model: onnx.IModelProto,
  modelPath: string,
  target: number,
): string | undefined {
  const current = defaultOpset(model);
  if (current >= target) return undefined;
  for (const scope of allScopes(model, modelPath)) {
    for (const node of scope.graph.node ?? []) {
      if (!isDefaultDomain(node.domain)) continue;
      const changed = NOT_REWRITTEN.get(node.opType ?? '');
      if (changed !== undefined && current < changed && changed <= target) {
        return `raising opset ${current} to ${target} would change ${node.opType} (revised at opset ${changed})`;
      }
    }
  }
  return undefined;
}

/**
 * Raise the default opset to `target` (no change when already there), rewriting nodes
 * as the module comment says; returns a line for the report, or undefined.
 */
export function raiseOpset(
  model: onnx.IModelProto,
  modelPath: string,
  target: number,
  names: NameAllocator,
): string | undefined {
  const current = defaultOpset(model);
  if (current >= target) return undefined;
  const blocker = opsetRaiseBlocker(model, modelPath, target);
  if (blocker) throw new Error(blocker);
  let rewritten = 0;
  for (const scope of allScopes(model, modelPath)) {
    const graph = scope.graph;
    const constants: onnx.INodeProto[] = [];
    for (const node of graph.node ?? []) {
      if (!isDefaultDomain(node.domain)) continue;
      const move = ATTRIBUTE_TO_INPUT.get(node.opType ?? '');
      if (move && current < move.since && move.since <= target) {
        const attributes = node.attribute ?? [];
        const found = attributes.find((a) => a.name === move.attribute);
        if (found) {
          const values = (found.ints ?? []).map((v) => int64ToSafeInteger(v as ProtoInt64) ?? 0);
          const name = names.fresh(`${node.name || node.opType}_${move.attribute}`);
          constants.push(int64Constant(name, values, names));
          node.attribute = attributes.filter((a) => a !== found);
          const inputs = node.input ?? [];
          node.input = [inputs[0] ?? '', name, ...inputs.slice(1)];
          rewritten++;
        }
      }
      if (node.opType === 'Slice' && current < 10 && target >= 10) {
        const attributes = node.attribute ?? [];
        const inputs: string[] = [(node.input ?? [])[0] ?? ''];
        for (const key of ['starts', 'ends', 'axes']) {
          const found = attributes.find((a) => a.name === key);
          if (!found) continue;
          const values = (found.ints ?? []).map((v) => int64ToSafeInteger(v as ProtoInt64) ?? 0);
          const name = names.fresh(`${node.name || node.opType}_${key}`);
          constants.push(int64Constant(name, values, names));
          inputs.push(name);
        }
        node.input = inputs;
        node.attribute = attributes.filter(
          (a) => !['starts', 'ends', 'axes'].includes(a.name ?? ''),
        );
        rewritten++;
      }
      if (node.opType === 'Split' && target >= 18 && current < 18) {
        const hasSizes = (node.input ?? [])[1];
        const hasCount = (node.attribute ?? []).some((a) => a.name === 'num_outputs');
        if (!hasSizes && !hasCount) {
          node.attribute = [
            ...(node.attribute ?? []),
            attr.int('num_outputs', node.output?.length ?? 1),
          ];
          rewritten++;
        }
      }
    }
    // Constants first: they have no inputs, so the order stays topological.
    if (constants.length > 0) graph.node = [...constants, ...(graph.node ?? [])];
  }
  const imports = model.opsetImport ?? [];
  const entry = imports.find((e) => isDefaultDomain(e.domain));
  if (entry) entry.version = target;
  else model.opsetImport = [...imports, { domain: '', version: target }];
  const ir = irVersionOf(model);
  const neededIr = irForOpset(target);
  let irNote = '';
  if (ir < neededIr) {
    model.irVersion = neededIr;
    irNote = `, IR version ${ir} → ${neededIr}`;
  }
  const nodes = rewritten > 0 ? ` (${rewritten} nodes rewritten for the newer operator forms)` : '';
  return `opset ${current} → ${target}${irNote}${nodes}`;
}

/** Raise the IR version alone (INT4 tensors need IR 10). */
export function raiseIrVersion(model: onnx.IModelProto, minimum: number): string | undefined {
  const ir = irVersionOf(model);
  if (ir >= minimum) return undefined;
  model.irVersion = minimum;
  return `IR version ${ir} → ${minimum}`;
}

/** Import `domain` at `version` when the model does not import it yet. */
export function ensureDomain(
  model: onnx.IModelProto,
  domain: string,
  version: number,
): string | undefined {
  const imports = model.opsetImport ?? [];
  if (imports.some((e) => e.domain === domain)) return undefined;
  model.opsetImport = [...imports, { domain, version }];
  return `imports ${domain} opset ${version}`;
}

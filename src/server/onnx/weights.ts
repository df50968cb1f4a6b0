/**
 * How a stored tensor is used as a weight: which compute nodes read it (directly or
 * through ops that only move or re-type it), and, where the op fixes it, which of its
 * axes is the input dimension. Methods that need an axis (N:M, int8, int4, low-rank) use
 * the layout; pruning and float16 casts only need the tensor to be a weight.
 */
import type { onnx } from 'onnx-proto';
import type { MatrixLayout } from '../compress/kernels';
import { intAttribute } from './nodes';
import { MAX_PASS_THROUGH_STEPS, PASS_THROUGH_OPS, passesThrough } from './passThrough';
import { isDefaultDomain, isGraphOutput, type Scope } from './scopes';
import type { Use, UseLookup } from './uses';

/** Compute ops and the input positions that carry weights. */
const WEIGHT_INPUTS: ReadonlyMap<string, readonly number[]> = new Map([
  ['MatMul', [1]],
  ['Gemm', [1]],
  ['Conv', [1]],
  ['ConvTranspose', [1]],
  ['LSTM', [1, 2]],
  ['GRU', [1, 2]],
  ['RNN', [1, 2]],
  ['Gather', [0]],
]);

export interface WeightUse extends Use {
  /** Pass-through ops between the tensor and this node, in order. */
  readonly chain: readonly string[];
}

/**
 * The compute nodes a tensor reaches, directly or through the ops the pass-through table
 * lets compression look through (every output followed), or the first use that is not a
 * weight input.
 */
export function weightUses(
  usesOf: UseLookup,
  name: string,
  scope: Scope,
): { uses: WeightUse[]; problem?: string } {
  const uses: WeightUse[] = [];
  const visit = (value: string, at: Scope, chain: readonly string[]): string | undefined => {
    for (const use of usesOf(value, at)) {
      const op = use.node.opType ?? '';
      if (isDefaultDomain(use.node.domain) && WEIGHT_INPUTS.get(op)?.includes(use.inputIndex)) {
        uses.push({ ...use, chain });
        continue;
      }
      if (
        passesThrough(use.node, use.inputIndex, 'compress') &&
        chain.length < MAX_PASS_THROUGH_STEPS
      ) {
        for (const output of use.node.output ?? []) {
          if (!output) continue;
          if (isGraphOutput(output, use.scope)) {
            return `reaches graph output '${output}' through ${[...chain, op].join(' → ')}`;
          }
          const problem = visit(output, use.scope, [...chain, op]);
          if (problem) return problem;
        }
        continue;
      }
      const via = chain.length > 0 ? ` (through ${chain.join(' → ')})` : '';
      return `used by ${op || 'a node'} as input ${use.inputIndex}${via}, not as a layer weight`;
    }
    return undefined;
  };
  const problem = visit(name, scope, []);
  if (problem) return { uses, problem };
  if (uses.length === 0) return { uses, problem: 'not used by any layer' };
  return { uses };
}

/**
 * The layer a tensor belongs to, as the reader names it: the first node (in walk order)
 * that reads it; while that node is an op the pass-through table lets the reader look
 * through, its first output is followed the same way, at most MAX_PASS_THROUGH_STEPS
 * times. A chain that ends without another op gives its last node.
 */
export function layerOf(usesOf: UseLookup, name: string, scope: Scope): Use | undefined {
  if (!name) return undefined;
  let current = name;
  let at = scope;
  let found: Use | undefined;
  for (let step = 0; step <= MAX_PASS_THROUGH_STEPS; step++) {
    const first = usesOf(current, at)[0];
    if (!first) break;
    found = first;
    const next = first.node.output?.[0];
    if (!next || !passesThrough(first.node, first.inputIndex, 'reader')) break;
    current = next;
    at = first.scope;
  }
  return found;
}

export type LayoutKind = 'matmul' | 'gemm' | 'conv' | 'recurrent' | 'embedding';

export interface WeightLayout extends MatrixLayout {
  readonly kind: LayoutKind;
}

function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

/** Steps that keep every element where it is: a float16 weight Cast to float32 keeps its layout. */
const KEEPS_LAYOUT: ReadonlySet<string> = new Set(['Identity', 'Cast', 'CastLike']);

/** The layout one use implies for the stored tensor, or why there is none. */
function layoutOfUse(use: WeightUse, shape: readonly number[]): WeightLayout | string {
  const op = use.node.opType ?? '';
  const direct = use.chain.every((step) => KEEPS_LAYOUT.has(step));
  switch (op) {
    case 'MatMul':
      if (!direct || shape.length !== 2) {
        return 'a MatMul weight that is not a plain 2-D initializer';
      }
      return { kind: 'matmul', rows: shape[0]!, cols: shape[1]!, inputAxis: 0 };
    case 'Gemm':
      if (!direct || shape.length !== 2) return 'a Gemm weight that is not a plain 2-D initializer';
      return {
        kind: 'gemm',
        rows: shape[0]!,
        cols: shape[1]!,
        inputAxis: intAttribute(use.node, 'transB', 0) ? 1 : 0,
      };
    case 'Conv':
      if (!direct) return `a Conv weight reached through ${use.chain.join(' → ')}`;
      return { kind: 'conv', rows: shape[0]!, cols: product(shape.slice(1)), inputAxis: 1 };
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      // ONNX W/R are [directions, gates·hidden, input]; exporters split and join them along
      // the gate axis, so the last axis stays the input one unless a node rearranges axes.
      if (use.chain.some((step) => PASS_THROUGH_OPS.get(step)?.rearranges)) {
        return `a ${op} weight reached through ${use.chain.join(' → ')}`;
      }
      return {
        kind: 'recurrent',
        rows: product(shape.slice(0, -1)),
        cols: shape[shape.length - 1]!,
        inputAxis: 1,
      };
    case 'Gather':
      // An embedding table [entries, width] gathered along axis 0: each row is one channel.
      if (!direct || shape.length !== 2 || intAttribute(use.node, 'axis', 0) !== 0) {
        return 'a Gather table that is not a plain 2-D initializer gathered along axis 0';
      }
      return { kind: 'embedding', rows: shape[0]!, cols: shape[1]!, inputAxis: 1 };
    default:
      return `a ${op} weight (no input axis defined)`;
  }
}

/** The layout every use agrees on, or why there is none. */
export function weightLayout(
  uses: readonly WeightUse[],
  shape: readonly number[],
): WeightLayout | string {
  let layout: WeightLayout | undefined;
  for (const use of uses) {
    const found = layoutOfUse(use, shape);
    if (typeof found === 'string') return found;
    if (
      layout &&
      (layout.kind !== found.kind ||
        layout.inputAxis !== found.inputAxis ||
        layout.rows !== found.rows)
    ) {
      return 'used by layers that read it with different layouts';
    }
    layout = found;
  }
  return layout ?? 'not used by any layer';
}

/**
 * Why low rank cannot rewrite the consumers of a weight, as far as how they read it goes:
 * it needs every use to read it directly, or every use through one Cast (a 16-bit weight
 * cast to float32: the factors are then stored 16-bit and Cast the same way).
 */
export function lowRankReadProblem(uses: readonly WeightUse[]): string | undefined {
  const chains = new Set(uses.map((use) => use.chain.join(' → ')));
  if (chains.size === 1 && (chains.has('') || chains.has('Cast'))) return undefined;
  const through = [...chains].filter(Boolean).join(', ');
  return `low-rank needs the weight read directly or through one Cast, not through ${through}`;
}

/** Whether every use is a direct MatMul input B (for MatMulNBits). */
export function onlyDirectMatMul(uses: readonly WeightUse[]): boolean {
  return uses.every((use) => use.node.opType === 'MatMul' && use.chain.length === 0);
}

/** Position of `node` in its graph's node list (-1 when it is no longer there). */
export function nodeIndexIn(scope: Scope, node: onnx.INodeProto): number {
  return (scope.graph.node ?? []).indexOf(node);
}

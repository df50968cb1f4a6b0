/**
 * How far a model's outputs moved: relative L2 ‖y − ŷ‖/‖y‖, cosine distance 1 − cos(y, ŷ),
 * or the KL divergence KL(softmax(y) ‖ softmax(ŷ)) along the last axis (averaged over the
 * other axes). A model with several outputs counts its worst one. Non-numeric outputs
 * (strings) are left out; a shape mismatch or a non-finite result counts as ∞.
 */
import type * as Ort from 'onnxruntime-node';
import type { DeviationMetric } from '../../shared/sensitivity';
import { compareOutputs } from '../runtime/validate';

/** Outputs by name (as `session.run` returns them), or in a fixed order. */
export type ModelOutputs = readonly Ort.Tensor[] | Readonly<Record<string, Ort.Tensor>>;

function numbers(tensor: Ort.Tensor): ArrayLike<number> | undefined {
  const data = tensor.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Array.from(data, Number);
  }
  if (Array.isArray(data)) {
    return data.every((v) => typeof v === 'number' || typeof v === 'boolean')
      ? data.map(Number)
      : undefined;
  }
  return data as ArrayLike<number>;
}

/** Mean over the rows of the last axis of KL(softmax(p) ‖ softmax(q)), in nats. */
export function softmaxKl(p: ArrayLike<number>, q: ArrayLike<number>, width: number): number {
  if (width < 1 || p.length === 0) return 0;
  const rows = Math.floor(p.length / width);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const start = r * width;
    let maxP = -Infinity;
    let maxQ = -Infinity;
    for (let i = start; i < start + width; i++) {
      if (p[i]! > maxP) maxP = p[i]!;
      if (q[i]! > maxQ) maxQ = q[i]!;
    }
    let sumP = 0;
    let sumQ = 0;
    for (let i = start; i < start + width; i++) {
      sumP += Math.exp(p[i]! - maxP);
      sumQ += Math.exp(q[i]! - maxQ);
    }
    // log softmax = x − max − log Σ exp(x − max)
    const logZP = maxP + Math.log(sumP);
    const logZQ = maxQ + Math.log(sumQ);
    let kl = 0;
    for (let i = start; i < start + width; i++) {
      const logP = p[i]! - logZP;
      const logQ = q[i]! - logZQ;
      kl += Math.exp(logP) * (logP - logQ);
    }
    total += Math.max(0, kl);
  }
  return total / rows;
}

/** The deviation of one output in `metric` (∞ when the shapes differ or a value is not finite). */
export function tensorDeviation(
  metric: DeviationMetric,
  reference: Ort.Tensor,
  candidate: Ort.Tensor,
): number | undefined {
  const x = numbers(reference);
  const y = numbers(candidate);
  if (!x || !y) return undefined;
  if (x.length !== y.length || reference.dims.join() !== candidate.dims.join()) return Infinity;
  let value: number;
  switch (metric) {
    case 'relativeL2':
      value = compareOutputs('', reference, candidate).relativeL2;
      break;
    case 'cosine':
      value = 1 - compareOutputs('', reference, candidate).cosine;
      break;
    case 'kl': {
      const width =
        reference.dims.length > 0 ? Number(reference.dims[reference.dims.length - 1]) : 1;
      value = softmaxKl(x, y, width);
      break;
    }
  }
  // Rounding can make 1 − cos slightly negative for identical outputs.
  if (Number.isNaN(value)) return Infinity;
  return Math.max(0, value);
}

function asEntries(outputs: ModelOutputs): [string, Ort.Tensor][] {
  return Array.isArray(outputs)
    ? (outputs as readonly Ort.Tensor[]).map((t, i) => [String(i), t])
    : Object.entries(outputs as Readonly<Record<string, Ort.Tensor>>);
}

/**
 * The worst deviation over the outputs of `reference` in `metric`; an output missing from
 * `candidate` counts as ∞. 0 when there is nothing numeric to compare.
 */
export function outputDeviation(
  metric: DeviationMetric,
  reference: ModelOutputs,
  candidate: ModelOutputs,
): number {
  const candidates = new Map(asEntries(candidate));
  let worst = 0;
  for (const [name, tensor] of asEntries(reference)) {
    const other = candidates.get(name);
    if (!other) return Infinity;
    const value = tensorDeviation(metric, tensor, other);
    if (value !== undefined && value > worst) worst = value;
  }
  return worst;
}

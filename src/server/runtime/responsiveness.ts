/**
 * Whether a check on sample inputs could see a difference: the model's outputs must vary
 * across the samples and not sit pinned at a bound (a saturated sigmoid or softmax, ReLU
 * outputs that are all zero). An output that does neither would hide any damage done to
 * the weights, so a comparison of it proves nothing.
 */
import type * as Ort from 'onnxruntime-node';

/** An output whose spread across samples is below this share of its largest value is flat. */
export const RESPONSE_TOLERANCE = 1e-3;
/** Values this close to 0 or 1 count as pinned at the bound, for outputs within [0, 1]. */
export const BOUND_MARGIN = 0.01;
/**
 * An output within [0, 1] is pinned when no more than this share of its values (over all
 * samples) lie between the margins: a text detector's map on noise has a few stray pixels.
 */
export const PINNED_SHARE = 1e-3;

type Outputs = Ort.InferenceSession.OnnxValueMapType;

function numbers(tensor: Ort.Tensor): ArrayLike<number> | null {
  const data = tensor.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array)
    return Array.from(data, Number);
  if (Array.isArray(data)) return null; // strings
  return data as ArrayLike<number>;
}

/**
 * Why the outputs named `names` cannot show a difference on `samples` (the model's
 * outputs for each sample input): one line per output that is flat or pinned, and one
 * when there is a single sample. Empty when every output responds.
 */
export function responseProblems(samples: readonly Outputs[], names: readonly string[]): string[] {
  if (samples.length < 2) {
    return [
      `only ${samples.length} sample input: whether the outputs respond to their inputs was not seen`,
    ];
  }
  const problems: string[] = [];
  for (const name of names) {
    const tensors = samples.map((s) => s[name] as Ort.Tensor | undefined);
    if (tensors.some((t) => !t)) continue;
    const values = tensors.map((t) => numbers(t!));
    if (values.some((v) => v === null)) continue;
    const problem = flatness(values as ArrayLike<number>[]);
    if (problem) problems.push(`output '${name}' ${problem}`);
  }
  return problems;
}

/** Why these samples of one output cannot show a difference, or null. */
function flatness(samples: readonly ArrayLike<number>[]): string | null {
  const length = samples[0]!.length;
  // Samples of different sizes (images of their own sizes) differ by construction.
  if (samples.some((s) => s.length !== length)) return null;
  let scale = 0;
  let spread = 0;
  let inUnitRange = true;
  let between = 0;
  for (let i = 0; i < length; i++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of samples) {
      const v = s[i]!;
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      const magnitude = Math.abs(v);
      if (magnitude > scale) scale = magnitude;
      if (v < 0 || v > 1) inUnitRange = false;
      if (v > BOUND_MARGIN && v < 1 - BOUND_MARGIN) between++;
    }
    if (hi - lo > spread) spread = hi - lo;
  }
  if (length === 0) return null;
  const nearBound = between <= PINNED_SHARE * length * samples.length;
  if (scale === 0) return 'is 0 for every sample input (dead ReLU outputs or a masked result)';
  // A probability that stays at 0 or 1 hides any change, however it spreads in between.
  if (inUnitRange && nearBound) {
    const share =
      between === 0 ? 'every value' : `all but ${between} of ${length * samples.length} values`;
    return `is pinned near ${scale > 0.5 ? 1 : 0} for every sample input (a saturated sigmoid or softmax: ${share} within ${BOUND_MARGIN} of 0 or 1; spread across samples ${spread.toPrecision(2)})`;
  }
  if (spread > RESPONSE_TOLERANCE * scale) return null;
  if (spread === 0) return 'is the same for every sample input';
  return `barely varies across the sample inputs (spread ${spread.toPrecision(2)} of values up to ${scale.toPrecision(3)})`;
}

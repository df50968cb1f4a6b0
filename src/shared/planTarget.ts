/**
 * A plan target as a user types it: "4x" or "4×" (ratio), "10 MB" / "10mb" (size in 10^6
 * bytes), "500 KB", "deviation 0.05" or "dev 0.05" (largest output deviation), "4.5 bpw"
 * (bits per weight, for llama.cpp types).
 */
import type { PlanTarget, PlanView } from './plan';

/** The target `text` names, or why it names none. */
export function parsePlanTarget(text: string): PlanTarget | string {
  const trimmed = text.trim().toLowerCase();
  const number = '(\\d+(?:\\.\\d*)?|\\.\\d+)(?:e[-+]?\\d+)?';
  const ratio = new RegExp(`^${number}\\s*[x×]$`).exec(trimmed);
  const size = new RegExp(`^${number}\\s*(mb|kb|gb)$`).exec(trimmed);
  const deviation = new RegExp(`^(?:deviation|dev|max-deviation)\\s*[:=]?\\s*(${number})$`).exec(
    trimmed,
  );
  const bpw = new RegExp(`^${number}\\s*bpw$`).exec(trimmed);
  let target: PlanTarget | undefined;
  if (ratio) target = { kind: 'ratio', value: Number(trimmed.replace(/\s*[x×]$/, '')) };
  else if (size) {
    const scale = size[2] === 'kb' ? 1e-3 : size[2] === 'gb' ? 1e3 : 1;
    target = { kind: 'sizeMB', value: Number(trimmed.replace(/\s*(mb|kb|gb)$/, '')) * scale };
  } else if (deviation) target = { kind: 'deviation', value: Number(deviation[1]) };
  else if (bpw) target = { kind: 'bpw', value: Number(trimmed.replace(/\s*bpw$/, '')) };
  if (!target)
    return 'Type a ratio ("4x"), a size ("10 MB", "500 KB"), a deviation ("deviation 0.05") or bits per weight ("4.5 bpw")';
  if (!(Number.isFinite(target.value) && target.value > 0)) return 'The target must be positive';
  if (target.kind === 'ratio' && target.value <= 1) return 'A ratio must be more than 1';
  return target;
}

/** The target in words, e.g. "4× smaller", "≤ 10 MB", "deviation ≤ 0.05". */
export function describePlanTarget(target: PlanTarget): string {
  switch (target.kind) {
    case 'sizeMB':
      return `≤ ${target.value} MB`;
    case 'ratio':
      return `${target.value}× smaller`;
    case 'deviation':
      return `deviation ≤ ${target.value}`;
    case 'bpw':
      return `${target.value} bits per weight`;
  }
}

/** Largest output file a size or ratio target allows (undefined for a deviation target). */
export function maxFileBytes(target: PlanTarget, fileBytesBefore: number): number | undefined {
  switch (target.kind) {
    case 'sizeMB':
      // 0.015991 MB × 10^6 is 15990.999… in floating point: 15991 bytes are allowed.
      return Math.floor(target.value * 1e6 + 1e-6);
    case 'ratio':
      return Math.floor(fileBytesBefore / target.value);
    case 'deviation':
      return undefined;
    case 'bpw':
      throw new RangeError(
        'a bits-per-weight target plans llama.cpp types; this format does not store them',
      );
  }
}

/** Where a plan stands (see planStatus). */
export type PlanState = 'predicted' | 'out of reach' | 'applying' | 'met' | 'missed';

/**
 * Where a plan stands, in words: once applied, the measured result ("met", or "missed:
 * why"); before, what the prediction says. The one status every surface shows.
 */
export function planStatus(view: Pick<PlanView, 'plan' | 'result' | 'applying'>): {
  state: PlanState;
  text: string;
} {
  const { plan, result } = view;
  if (result) {
    if (result.targetMet) return { state: 'met', text: 'met' };
    // A result restored from an older recipe may lack the reasons.
    const why = (result.missedBecause as readonly string[] | undefined)?.[0];
    return { state: 'missed', text: `missed: ${why ?? 'the kept file is outside the target'}` };
  }
  if (view.applying) return { state: 'applying', text: 'applying…' };
  if (plan.feasible) {
    return { state: 'predicted', text: 'not applied yet; predicted to meet the target' };
  }
  const limit = (plan.limits as readonly string[] | undefined)?.[0];
  return {
    state: 'out of reach',
    text: `predicted to miss: ${limit ?? 'the methods cannot reach the target'}`,
  };
}

/**
 * A plan target as a user types it: "4x" or "4×" (ratio), "10 MB" / "10mb" (size in 10^6
 * bytes), "500 KB", "deviation 0.05" or "dev 0.05" (largest output deviation), "4.5 bpw"
 * (bits per weight, for llama.cpp types).
 */
import type { PlanTarget } from './plan';

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

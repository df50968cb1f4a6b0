/** What Extract LoRA… asks for: a rank for every matrix, or an energy share per matrix. */
export type LoraChoice = { readonly rank: number } | { readonly energy: number };

/**
 * The rank or energy typed into the box: a whole number is a rank, a fraction in (0, 1) or
 * a percentage ("90%") an energy share; anything else is the message to show.
 */
export function parseLoraChoice(text: string): LoraChoice | string {
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(trimmed);
  if (percent) {
    const energy = Number(percent[1]) / 100;
    return energy > 0 && energy <= 1 ? { energy } : 'an energy share is above 0% and at most 100%';
  }
  const value = Number(trimmed);
  if (trimmed === '' || !Number.isFinite(value)) {
    return 'type a rank (16) or an energy share (0.9 or 90%)';
  }
  if (Number.isInteger(value) && value >= 1) return { rank: value };
  if (value > 0 && value < 1) return { energy: value };
  return 'a rank is a whole number from 1, an energy share a fraction between 0 and 1';
}

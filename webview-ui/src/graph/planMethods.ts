/**
 * The method the model's last plan chose for each tensor (its step's label: `int8`,
 * `int4:32`, `keep`), by tensor name (a page shows one model): the overlays' "Plan: method",
 * a categorical overlay whose values index `planCategories()`. Empty without a plan.
 */
import type { Plan } from '../../../src/shared/plan';

const methods = new Map<string, number>();
let categories: string[] = [];

/** A plan arrived (null: it was dismissed). */
export function setPlanMethods(plan: Plan | null): void {
  methods.clear();
  const labels = [...new Set((plan?.steps ?? []).map((step) => step.label))];
  // `keep` first, then the methods in name order: the same colour for a label every time.
  categories = labels.sort(
    (a, b) => Number(b === 'keep') - Number(a === 'keep') || a.localeCompare(b),
  );
  for (const step of plan?.steps ?? []) methods.set(step.tensor, categories.indexOf(step.label));
}

/** The index in `planCategories()` of the method the plan chose for a tensor. */
export function planMethodOf(tensorName: string): number | undefined {
  return methods.get(tensorName);
}

/** The plan's methods, in the order the overlay numbers them. */
export function planCategories(): readonly string[] {
  return categories;
}

/**
 * The table grouped by module: tensors under a header row per module (their dotted or
 * slashed name scope, src/shared/names.ts), groups in the order of their first tensor in
 * the current sort, each with its tensor count and totals. A collapsed group keeps its
 * header and hides its rows.
 */
import { moduleOf, shortenNames, shortNameText } from '../../../src/shared/names';
import type { TensorRow } from './tensorRows';

export interface GroupHeader {
  /** The module's full name (empty: tensors without a scope). */
  readonly key: string;
  /** The module as the header shows it: without the prefix all modules share. */
  readonly label: string;
  readonly count: number;
  readonly params: number;
  readonly bytes: number;
  readonly collapsed: boolean;
}

/** A row of the table's body: a tensor (its index) or a group's header. */
export type DisplayItem = number | GroupHeader;

/** Header label of the tensors that have no module scope. */
const NO_MODULE = '(top level)';

/**
 * `order` (tensor indices, display order) grouped by module. Returns the body's items and
 * the tensors still shown (those of expanded groups), in display order.
 */
export function groupByModule(
  order: readonly number[],
  rows: readonly (TensorRow | undefined)[],
  collapsed: ReadonlySet<string>,
): { items: DisplayItem[]; shown: number[] } {
  const members = new Map<string, number[]>();
  for (const index of order) {
    const key = moduleOf(rows[index]!.info.name);
    const list = members.get(key);
    if (list) list.push(index);
    else members.set(key, [index]);
  }
  const keys = [...members.keys()];
  const labels = shortenNames(keys.filter((key) => key !== ''));
  const labelOf = new Map<string, string>();
  keys
    .filter((key) => key !== '')
    .forEach((key, i) => {
      labelOf.set(key, shortNameText(labels.names[i]!));
    });
  const items: DisplayItem[] = [];
  const shown: number[] = [];
  for (const [key, indices] of members) {
    let params = 0;
    let bytes = 0;
    for (const index of indices) {
      params += rows[index]!.info.parameterCount;
      bytes += rows[index]!.info.byteLength;
    }
    const isCollapsed = collapsed.has(key);
    items.push({
      key,
      label: key === '' ? NO_MODULE : (labelOf.get(key) ?? key),
      count: indices.length,
      params,
      bytes,
      collapsed: isCollapsed,
    });
    if (!isCollapsed) {
      items.push(...indices);
      shown.push(...indices);
    }
  }
  return { items, shown };
}

/**
 * Tensor names as tables show them. Names of one model share long beginnings
 * (`If_0_else_branch__Inline_0__encoder.0.…`, `model.layers.11.…`): the prefix all of them
 * share is shown once, and each row shows the rest. Where names fall into twins that differ
 * only in one early segment (an If node's then/else branches), the run that every name of a
 * twin shares after that segment is elided too, so the segment that tells them apart and
 * the end of the name both stay visible. Cuts fall only on segment boundaries.
 *
 * One rule for the layer table, the plan table and the sensitivity ranking (the webview
 * imports it from here); full names go in tooltips.
 */

/** What separates name segments: scope dots and slashes, colons, and runs of underscores. */
const SEPARATOR = /[./:]|_+/g;
/** Shared runs shorter than this are kept: eliding them would hide more than it saves. */
const MIN_ELIDED_CHARS = 10;
/** Marks where a shared run was left out. */
export const ELISION = '…';

/** A name as a row shows it: `lead` (empty, or a segment followed by ELISION) then `rest`. */
export interface ShortName {
  readonly lead: string;
  readonly rest: string;
}

export interface ShortNames {
  /** What every name starts with (empty when they share no whole segment). */
  readonly prefix: string;
  /** Each name without the prefix, in the order given. */
  readonly names: readonly ShortName[];
}

/** Positions just after each separator run of `name` (where a cut may fall), ascending. */
function boundaries(name: string): number[] {
  const cuts: number[] = [];
  for (const match of name.matchAll(SEPARATOR)) cuts.push(match.index + match[0].length);
  return cuts;
}

/** Length of the longest prefix that every string shares. */
function sharedLength(strings: readonly string[]): number {
  let first = strings[0] ?? '';
  for (const other of strings) {
    let i = 0;
    while (i < first.length && i < other.length && first[i] === other[i]) i++;
    first = first.slice(0, i);
    if (first === '') break;
  }
  return first.length;
}

/**
 * The longest prefix every name shares that ends on a segment boundary and leaves every
 * name a non-empty rest. Fewer than two names share nothing.
 */
export function commonNamePrefix(names: readonly string[]): string {
  if (names.length < 2) return '';
  const shared = sharedLength(names);
  const shortest = names.reduce((least, name) => Math.min(least, name.length), Infinity);
  const first = names[0]!;
  // A boundary of the first name within the shared part is a boundary of every name.
  let cut = 0;
  for (const boundary of boundaries(first)) {
    if (boundary <= shared && boundary < shortest) cut = boundary;
  }
  return first.slice(0, cut);
}

/** The first segment of `rest` with the separator run after it (all of `rest` if it has none). */
function leadingSegment(rest: string): string {
  const [first] = boundaries(rest);
  return first === undefined ? rest : rest.slice(0, first);
}

/** Shorten `names` by the rule above. */
export function shortenNames(names: readonly string[]): ShortNames {
  const prefix = commonNamePrefix(names);
  const rests = names.map((name) => name.slice(prefix.length));
  // Names grouped by their first segment after the prefix (`else_`, `then_`).
  const groups = new Map<string, number[]>();
  rests.forEach((rest, position) => {
    const head = leadingSegment(rest);
    if (head === rest) return;
    const members = groups.get(head);
    if (members) members.push(position);
    else groups.set(head, [position]);
  });
  const short: ShortName[] = rests.map((rest) => ({ lead: '', rest }));
  // Eliding pays only where names fall into several such groups (twins); one group would
  // have been taken by the prefix already.
  if (groups.size < 2) return { prefix, names: short };
  for (const [head, members] of groups) {
    if (members.length < 2) continue;
    const tails = members.map((position) => rests[position]!.slice(head.length));
    const shared = commonNamePrefix(tails);
    if (shared.length < MIN_ELIDED_CHARS) continue;
    for (const position of members) {
      short[position] = {
        lead: `${head}${ELISION}`,
        rest: rests[position]!.slice(head.length + shared.length),
      };
    }
  }
  return { prefix, names: short };
}

/** A short name as one string. */
export function shortNameText(name: ShortName): string {
  return name.lead + name.rest;
}

/**
 * A short name in at most `maxChars` characters, for text that cannot be cut by CSS (SVG
 * labels): the lead stays whole, the rest loses its start.
 */
export function fitShortName(name: ShortName, maxChars: number): string {
  const text = shortNameText(name);
  if (text.length <= maxChars) return text;
  const room = Math.max(1, maxChars - name.lead.length - 1);
  return `${name.lead}${ELISION}${name.rest.slice(name.rest.length - room)}`;
}

/**
 * The module (scope) a tensor belongs to: its name without the last dotted or slashed
 * component (`encoder.0.reparam_conv` for `encoder.0.reparam_conv.weight`); empty for a
 * name without scopes.
 */
export function moduleOf(name: string): string {
  const cut = Math.max(name.lastIndexOf('.'), name.lastIndexOf('/'));
  return cut <= 0 ? '' : name.slice(0, cut);
}

import type { ShortName } from '../../../src/shared/names';

/**
 * Tiny DOM builders. Elements are built node by node, never from HTML strings: the page's
 * CSP forbids inline styles, and text from a model file must never become markup.
 */

export interface ElementOptions {
  readonly className?: string;
  readonly text?: string;
  /** Attributes; `undefined` values are skipped. */
  readonly attrs?: Readonly<Record<string, string | number | undefined>>;
}

export type Child = Node | string | null | undefined | false;

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: ElementOptions = {},
  children: readonly Child[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs ?? {})) {
    if (value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

/** A titled section of the overview or side panel. */
export function section(title: string, className: string, children: readonly Child[]): HTMLElement {
  return element('section', { className: `ll-section ${className}` }, [
    element('h2', { className: 'll-section-title', text: title }),
    ...children,
  ]);
}

/** A definition list from label/value pairs. */
export function definitionList(
  entries: readonly (readonly [string, string | Node])[],
  className = 'll-facts',
): HTMLDListElement {
  const list = element('dl', { className });
  for (const [label, value] of entries) {
    list.append(element('dt', { text: label }), element('dd', {}, [value]));
  }
  return list;
}

/**
 * A short tensor name (src/shared/names.ts) for a cell whose width CSS fixes: the lead is
 * never cut, the rest is cut at its start; the tooltip has the full name.
 */
export function shortNameElement(name: ShortName, full: string): HTMLElement {
  return element('span', { className: 'll-short-name', attrs: { title: full } }, [
    element('span', { className: 'll-lead', text: name.lead }),
    element('span', { className: 'll-clip' }, [element('span', { text: name.rest })]),
  ]);
}

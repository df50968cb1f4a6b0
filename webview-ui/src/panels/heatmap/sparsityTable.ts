/** The structured sparsity numbers below the heatmap: all-zero rows, columns, channels and N:M groups. */
import { formatCount, formatPercent } from '../../../../src/shared/format';
import type { StructuredSparsity } from '../../../../src/shared/heatmap';
import { definitionList, element } from '../../platform/dom';

/** Replaces `container`'s children with the title and the table of `structured`'s numbers. */
export function renderStructuredSparsity(
  container: HTMLElement,
  structured: StructuredSparsity,
): void {
  const share = (count: number, total: number) =>
    `${formatCount(count)} of ${formatCount(total)} (${formatPercent(total > 0 ? count / total : 0)})`;
  const entries: [string, string | Node][] = [
    ['All-zero rows', share(structured.zeroRows, structured.rows)],
    ['All-zero columns', share(structured.zeroCols, structured.cols)],
  ];
  if (structured.channels) {
    const { outChannels, zeroOutChannels, inChannels, zeroInChannels } = structured.channels;
    entries.push(
      ['All-zero output channels', share(zeroOutChannels, outChannels)],
      ['All-zero input channels', share(zeroInChannels, inChannels)],
    );
  }
  const compliance = structured.groups > 0 ? structured.compliantGroups / structured.groups : 0;
  entries.push([
    `${structured.n}:${structured.m}-compliant groups`,
    element('span', {
      text: share(structured.compliantGroups, structured.groups),
      attrs: { 'data-testid': 'nm-compliance', 'data-value': compliance },
    }),
  ]);
  container.replaceChildren(
    element('h3', { className: 'll-subsection-title', text: 'Structured sparsity' }),
    definitionList(entries, 'll-facts ll-stats-list'),
  );
}

/**
 * The model overview: headline numbers, where the bytes go by dtype, which operators the
 * graph uses, its inputs and outputs, metadata and warnings.
 */
import { select } from 'd3';
import {
  hasGraph,
  MODEL_FORMAT_INFO,
  type ModelSummary,
  type StoredType,
  type ValueInfo,
} from '../../../src/shared/model';
import { horizontalBarChart } from './barChart';
import { definitionList, element, section } from '../platform/dom';
import {
  formatBytes,
  formatCompactCount,
  formatCount,
  formatPercent,
  formatShape,
} from '../../../src/shared/format';

/** Operators shown in the chart; the rest are summed up in one line below it. */
const TOP_OPERATORS = 12;

export interface OverviewDetails {
  /** Whether the details start expanded. */
  readonly open: boolean;
  readonly toggled: (open: boolean) => void;
}

/**
 * The headline numbers, always shown, and the details below them in a disclosure that
 * starts closed so the layer table stays in view.
 */
export function renderOverview(summary: ModelSummary, details: OverviewDetails): HTMLElement {
  const sections: [string, HTMLElement | null][] = [
    ['Dtypes', dtypeSection(summary)],
    ['operators', operatorSection(summary)],
    ['inputs and outputs', inputsOutputsSection(summary)],
    ['metadata', metadataSection(summary)],
  ];
  const shown = sections.filter(([, content]) => content !== null);
  const disclosure = element('details', { className: 'll-overview-details' }, [
    element('summary', {
      className: 'll-overview-details-summary',
      // Names what is inside: a safetensors file has no operators nor graph inputs.
      text: shown.map(([label]) => label).join(', '),
    }),
    element(
      'div',
      { className: 'll-overview-grid' },
      shown.map(([, content]) => content),
    ),
  ]);
  disclosure.open = details.open;
  disclosure.addEventListener('toggle', () => details.toggled(disclosure.open));
  return element(
    'section',
    {
      className: 'll-overview',
      attrs: { 'data-testid': 'overview', 'aria-label': 'Model overview' },
    },
    [titleBlock(summary), warningsBlock(summary.warnings), headlineNumbers(summary), disclosure],
  );
}

function titleBlock(summary: ModelSummary): HTMLElement {
  return element('header', { className: 'll-title' }, [
    element('h1', { className: 'll-file-name', text: summary.fileName }),
    element('span', { className: 'll-badge', text: MODEL_FORMAT_INFO[summary.format].label }),
  ]);
}

function warningsBlock(warnings: readonly string[]): HTMLElement | null {
  if (warnings.length === 0) return null;
  return element(
    'div',
    { className: 'll-warnings', attrs: { role: 'note', 'data-testid': 'warnings' } },
    [
      element('h2', {
        className: 'll-warnings-title',
        text: warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`,
      }),
      element(
        'ul',
        {},
        warnings.map((warning) => element('li', { text: warning })),
      ),
    ],
  );
}

function headlineNumbers(summary: ModelSummary): HTMLElement {
  const cards: HTMLElement[] = [
    card(
      'Parameters',
      element('span', {
        className: 'll-card-value',
        text: formatCount(summary.parameterCount),
        attrs: { 'data-testid': 'parameter-count', 'data-value': summary.parameterCount },
      }),
      formatCompactCount(summary.parameterCount),
    ),
    card(
      'Tensors',
      element('span', {
        className: 'll-card-value',
        text: formatCount(summary.tensorCount),
        attrs: { 'data-testid': 'tensor-count', 'data-value': summary.tensorCount },
      }),
    ),
    card(
      'File size',
      valueText(formatBytes(summary.fileBytes)),
      summary.shards
        ? `${formatCount(summary.fileBytes)} bytes in ${summary.shards} shard${summary.shards === 1 ? '' : 's'}`
        : `${formatCount(summary.fileBytes)} bytes`,
    ),
  ];
  // A sharded model's file size is already its shards'; the index adds a few KB.
  if (
    !summary.shards &&
    (summary.totalBytes !== summary.fileBytes || summary.dataFiles.length > 0)
  ) {
    const files = summary.dataFiles.length;
    cards.push(
      card(
        'Total size',
        valueText(formatBytes(summary.totalBytes)),
        `with ${files} data file${files === 1 ? '' : 's'}`,
      ),
    );
  }
  if (hasGraph(summary)) cards.push(card('Nodes', valueText(formatCount(summary.nodeCount))));
  return element('div', { className: 'll-cards' }, cards);
}

function card(label: string, value: HTMLElement, note?: string): HTMLElement {
  return element('div', { className: 'll-card' }, [
    element('span', { className: 'll-card-label', text: label }),
    value,
    note ? element('span', { className: 'll-card-note', text: note }) : null,
  ]);
}

function valueText(text: string): HTMLElement {
  return element('span', { className: 'll-card-value', text });
}

interface DTypeShare {
  readonly dtype: StoredType;
  readonly parameters: number;
  readonly bytes: number;
}

function dtypeSection(summary: ModelSummary): HTMLElement {
  // A quantized weight counts under the type its codes are stored as (Q4_K, int8).
  const dtypes = new Set<StoredType>([
    ...Object.keys(summary.parametersByDType),
    ...Object.keys(summary.bytesByDType),
  ]);
  const shares: DTypeShare[] = [...dtypes]
    .map((dtype) => ({
      dtype,
      parameters: summary.parametersByDType[dtype] ?? 0,
      bytes: summary.bytesByDType[dtype] ?? 0,
    }))
    .sort((a, b) => b.bytes - a.bytes);
  if (shares.length === 0) {
    return section('Weights by dtype', 'll-dtypes', [
      element('p', { className: 'll-muted', text: 'No weight tensors.' }),
    ]);
  }
  const totalBytes = shares.reduce((sum, share) => sum + share.bytes, 0);
  const table = element('table', { className: 'll-compact-table' }, [
    element('thead', {}, [
      element('tr', {}, [
        element('th', { text: 'DType', attrs: { scope: 'col' } }),
        element('th', { className: 'll-numeric', text: 'Params', attrs: { scope: 'col' } }),
        element('th', { className: 'll-numeric', text: 'Bytes', attrs: { scope: 'col' } }),
        element('th', {
          className: 'll-share-column',
          text: 'Share of bytes',
          attrs: { scope: 'col' },
        }),
      ]),
    ]),
    element('tbody'),
  ]);
  const rows = select(table)
    .select('tbody')
    .selectAll<HTMLTableRowElement, DTypeShare>('tr')
    .data(shares)
    .join('tr');
  rows
    .append('td')
    .attr('class', 'll-mono')
    .text((share) => share.dtype);
  rows
    .append('td')
    .attr('class', 'll-numeric')
    .attr('title', (share) => formatCount(share.parameters))
    .text((share) => formatCompactCount(share.parameters));
  rows
    .append('td')
    .attr('class', 'll-numeric')
    .attr('title', (share) => `${formatCount(share.bytes)} bytes`)
    .text((share) => formatBytes(share.bytes));
  const shareCell = rows
    .append('td')
    .attr('class', 'll-share-column')
    .append('div')
    .attr('class', 'll-share');
  const fraction = (share: DTypeShare): number => (totalBytes > 0 ? share.bytes / totalBytes : 0);
  shareCell
    .append('div')
    .attr('class', 'll-share-track')
    .append('div')
    .attr('class', 'll-share-fill')
    .style('width', (share) => `${(fraction(share) * 100).toFixed(2)}%`);
  shareCell
    .append('span')
    .attr('class', 'll-share-text')
    .text((share) => formatPercent(fraction(share)));
  return section('Weights by dtype', 'll-dtypes', [table]);
}

function operatorSection(summary: ModelSummary): HTMLElement | null {
  const operators = Object.entries(summary.opCounts).sort(
    (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]),
  );
  if (!hasGraph(summary) && operators.length === 0) return null;
  if (operators.length === 0) {
    return section('Operators', 'll-operators', [
      element('p', { className: 'll-muted', text: 'The graph has no nodes.' }),
    ]);
  }
  const shown = operators.slice(0, TOP_OPERATORS);
  const hidden = operators.slice(TOP_OPERATORS);
  const hiddenNodes = hidden.reduce((sum, [, count]) => sum + count, 0);
  const chart = horizontalBarChart(
    shown.map(([op, count]) => ({ label: op, value: count, valueText: formatCount(count) })),
    `Node count of the ${shown.length} most used operators`,
  );
  const title = `Operators (${formatCount(operators.length)} types, ${formatCount(summary.nodeCount)} nodes)`;
  return section(title, 'll-operators', [
    chart,
    hidden.length > 0
      ? element('p', {
          className: 'll-muted',
          text: `${hidden.length} more: ${hidden.map(([op, count]) => `${op} (${count})`).join(', ')} — ${formatCount(hiddenNodes)} nodes`,
        })
      : null,
  ]);
}

function inputsOutputsSection(summary: ModelSummary): HTMLElement | null {
  if (summary.inputs.length === 0 && summary.outputs.length === 0) return null;
  const table = element('table', { className: 'll-compact-table ll-io-table' }, [
    element('thead', {}, [
      element('tr', {}, [
        element('th', { text: '', attrs: { scope: 'col', 'aria-label': 'Direction' } }),
        element('th', { text: 'Name', attrs: { scope: 'col' } }),
        element('th', { text: 'DType', attrs: { scope: 'col' } }),
        element('th', { text: 'Shape', attrs: { scope: 'col' } }),
      ]),
    ]),
    element('tbody', {}, [
      ...summary.inputs.map((value) => valueRow('in', value)),
      ...summary.outputs.map((value) => valueRow('out', value)),
    ]),
  ]);
  return section('Inputs and outputs', 'll-io', [table]);
}

function valueRow(direction: 'in' | 'out', value: ValueInfo): HTMLTableRowElement {
  return element('tr', {}, [
    element('td', {
      className: `ll-direction ll-direction-${direction}`,
      text: direction === 'in' ? 'in' : 'out',
    }),
    element('td', { className: 'll-mono', text: value.name, attrs: { title: value.name } }),
    element('td', { className: 'll-mono', text: value.dtype ?? '?' }),
    element('td', {
      className: 'll-mono',
      text: value.shape === null ? 'unknown' : formatShape(value.shape),
    }),
  ]);
}

function metadataSection(summary: ModelSummary): HTMLElement | null {
  if (summary.metadata.length === 0) return null;
  return section('Metadata', 'll-metadata', [
    definitionList(
      summary.metadata.map((entry) => [entry.key, entry.value] as const),
      'll-facts ll-metadata-list',
    ),
  ]);
}

/**
 * The diff editor's page: the two models' totals, the tensor pairs as a sortable table
 * (filterable to changed pairs), what could not be paired, the structure changes, and
 * for the selected pair both value histograms overlaid (panels/histogram.ts).
 */
import type { ModelDiff, TensorPairDiff } from '../../../src/shared/diff';
import {
  dtypeChangeText,
  pairingText,
  shapeChangeText,
  structureChangeText,
} from '../../../src/shared/diffText';
import type { DType } from '../../../src/shared/dtypes';
import { formatBytes, formatCount, formatPercent, formatStat } from '../../../src/shared/format';
import type { Histogram } from '../../../src/shared/model';
import { drawHistogram } from '../panels/histogram';
import { definitionList, element, section } from '../platform/dom';

interface Column {
  readonly label: string;
  readonly text: (pair: TensorPairDiff) => string;
  /** The value sorted by (numbers ascending, text alphabetically). */
  readonly key: (pair: TensorPairDiff) => number | string;
}

const COLUMNS: readonly Column[] = [
  { label: 'Tensor', text: (p) => p.name, key: (p) => p.name },
  { label: 'In B', text: pairingText, key: pairingText },
  { label: 'Shape', text: shapeChangeText, key: shapeChangeText },
  { label: 'Dtype', text: dtypeChangeText, key: dtypeChangeText },
  {
    label: 'Bytes',
    text: (p) =>
      p.bytesA === p.bytesB
        ? formatBytes(p.bytesA)
        : `${formatBytes(p.bytesA)} → ${formatBytes(p.bytesB)}`,
    key: (p) => p.bytesB - p.bytesA,
  },
  {
    label: '‖ΔW‖/‖W‖',
    text: (p) => (p.values ? formatStat(p.values.relativeError, 3) : '—'),
    key: (p) => p.values?.relativeError ?? -1,
  },
  {
    label: 'Cosine',
    text: (p) => (p.values ? formatStat(p.values.cosine, 6) : '—'),
    key: (p) => p.values?.cosine ?? 2,
  },
  {
    label: 'Max |Δ|',
    text: (p) => (p.values ? formatStat(p.values.maxAbsDiff, 3) : '—'),
    key: (p) => p.values?.maxAbsDiff ?? -1,
  },
  {
    label: 'Identical',
    text: (p) => (p.values ? formatPercent(p.values.identical) : '—'),
    key: (p) => p.values?.identical ?? 2,
  },
];

const CHART_WIDTH = 520;

export class DiffView {
  private sortColumn = 0;
  private descending = false;
  private changedOnly = false;
  private selected: number | null = null;
  private readonly body = element('tbody');
  private readonly headRow = element('tr');
  private readonly detail = element('section', {
    className: 'll-section ll-diff-detail',
    attrs: { 'data-testid': 'diff-detail' },
  });

  constructor(
    private readonly root: HTMLElement,
    private readonly diff: ModelDiff,
    private readonly requestHistograms: (pair: TensorPairDiff) => void,
  ) {}

  render(): void {
    const { a, b } = this.diff;
    const dtypes = [...new Set([...Object.keys(a.bytesByDType), ...Object.keys(b.bytesByDType)])];
    const summary = section('Summary', 'll-diff-summary', [
      definitionList([
        ['A', a.path],
        ['B', b.path],
        ['Size', `${formatBytes(a.totalBytes)} → ${formatBytes(b.totalBytes)}`],
        ['Parameters', `${formatCount(a.parameterCount)} → ${formatCount(b.parameterCount)}`],
        ...dtypes.map(
          (d) =>
            [
              `Bytes ${d}`,
              `${formatBytes(a.bytesByDType[d as DType] ?? 0)} → ${formatBytes(b.bytesByDType[d as DType] ?? 0)}`,
            ] as const,
        ),
        [
          'Paired',
          `${this.diff.pairs.length}: by name ${this.diff.pairedBy.name}, by node ${this.diff.pairedBy.node}, as factors ${this.diff.pairedBy.factors}`,
        ],
      ]),
      ...this.diff.notes.map((note) => element('p', { className: 'll-diff-note', text: note })),
    ]);
    const filter = element('input', {
      attrs: { type: 'checkbox', 'data-testid': 'diff-changed-only' },
    });
    filter.addEventListener('change', () => {
      this.changedOnly = filter.checked;
      this.renderRows();
    });
    COLUMNS.forEach((column, i) => {
      const th = element('th', { text: column.label, attrs: { role: 'button', tabindex: 0 } });
      th.addEventListener('click', () => {
        this.descending = this.sortColumn === i ? !this.descending : false;
        this.sortColumn = i;
        this.renderRows();
      });
      this.headRow.append(th);
    });
    const table = element(
      'table',
      { className: 'll-diff-table', attrs: { 'data-testid': 'diff-table' } },
      [element('thead', {}, [this.headRow]), this.body],
    );
    const unpaired = (label: string, list: ModelDiff['onlyA']) =>
      list.length === 0
        ? null
        : section(`Only in ${label} (${list.length})`, 'll-diff-unpaired', [
            element(
              'ul',
              {},
              list.map((t) =>
                element('li', { text: `${t.name} [${t.shape.join(', ')}] ${t.dtype} (${t.node})` }),
              ),
            ),
          ]);
    const structure = this.diff.structure
      ? section('Structure', 'll-diff-structure', [
          element('p', {
            text: `${formatCount(this.diff.structure.nodesA)} → ${formatCount(this.diff.structure.nodesB)} nodes; ${
              Object.entries(this.diff.structure.opCountChanges)
                .map(([op, d]) => `${op} ${d > 0 ? '+' : ''}${d}`)
                .join(', ') || 'the same ops'
            }`,
          }),
          element(
            'ul',
            { attrs: { 'data-testid': 'diff-structure' } },
            this.diff.structure.changes.map((c) => element('li', { text: structureChangeText(c) })),
          ),
        ])
      : null;
    this.root.replaceChildren(
      ...[
        summary,
        section('Tensors', 'll-diff-tensors', [
          element('label', { className: 'll-diff-filter' }, [filter, ' Changed only']),
          table,
        ]),
        this.detail,
        unpaired('A', this.diff.onlyA),
        unpaired('B', this.diff.onlyB),
        structure,
      ].filter((part): part is HTMLElement => part !== null),
    );
    this.renderRows();
  }

  private renderRows(): void {
    const column = COLUMNS[this.sortColumn]!;
    const rows = this.diff.pairs
      .filter((p) => !this.changedOnly || p.changed)
      .sort((x, y) => {
        const [kx, ky] = [column.key(x), column.key(y)];
        const order =
          typeof kx === 'number' && typeof ky === 'number'
            ? kx - ky
            : String(kx).localeCompare(String(ky));
        return this.descending ? -order : order;
      });
    [...this.headRow.children].forEach((th, i) =>
      th.setAttribute(
        'aria-sort',
        i === this.sortColumn ? (this.descending ? 'descending' : 'ascending') : 'none',
      ),
    );
    this.body.replaceChildren(
      ...rows.map((pair) => {
        const tr = element(
          'tr',
          {
            className: `${pair.changed ? 'll-diff-changed' : ''}${pair.indexA === this.selected ? ' ll-selected' : ''}`,
            attrs: { 'data-testid': 'diff-row', 'data-tensor': pair.name },
          },
          COLUMNS.map((c) => element('td', { text: c.text(pair) })),
        );
        tr.addEventListener('click', () => this.select(pair));
        return tr;
      }),
    );
  }

  private select(pair: TensorPairDiff): void {
    this.selected = pair.indexA;
    this.renderRows();
    this.detail.replaceChildren(
      element('h2', { className: 'll-section-title', text: pair.name }),
      element('p', {
        text: pair.valuesSkipped
          ? `Values not compared: ${pair.valuesSkipped}`
          : 'Loading the histograms…',
      }),
    );
    this.requestHistograms(pair);
  }

  /** The histograms of the selected pair arrived (or why they did not). */
  showHistograms(indexA: number, a: Histogram | null, b: Histogram | null, error?: string): void {
    if (indexA !== this.selected) return;
    const pair = this.diff.pairs.find((p) => p.indexA === indexA)!;
    const chart = element('div', {
      className: 'll-histogram-chart',
      attrs: { 'data-testid': 'diff-histogram' },
    });
    this.detail.replaceChildren(
      element('h2', { className: 'll-section-title', text: pair.name }),
      element('p', {
        className: 'll-diff-legend',
        text:
          error ??
          (b
            ? `A: ${pair.name} (bars) · B: ${pair.namesB[0] ?? ''} (overlay)`
            : `A: ${pair.name}; B stores it as the factors ${pair.namesB.join(' · ')} (their product's error is in the table)`),
      }),
      chart,
    );
    if (a) drawHistogram(chart, a, 'linear', CHART_WIDTH, 'value', b ?? undefined);
  }
}

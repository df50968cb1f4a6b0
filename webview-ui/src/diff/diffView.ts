/**
 * The diff editor's page: the two models' totals, the tensor pairs as a sortable table
 * (filterable to changed pairs), what could not be paired, the structure changes, and
 * for the selected pair both value histograms overlaid (panels/histogram.ts), both spectra
 * overlaid (panels/spectrumPanel.ts's chart), the heatmap of |ΔW| (panels/heatmap/paint.ts)
 * and, for a changed matrix, the fine-tune analysis of ΔW.
 */
import type {
  DeltaSpectrum,
  LoraExtraction,
  ModelDiff,
  PairDetail,
  TensorPairDiff,
} from '../../../src/shared/diff';
import {
  dtypeChangeText,
  pairingText,
  shapeChangeText,
  structureChangeText,
} from '../../../src/shared/diffText';
import type { DType } from '../../../src/shared/dtypes';
import { formatBytes, formatCount, formatPercent, formatStat } from '../../../src/shared/format';
import { decodeTileValues } from '../../../src/shared/heatmap';
import type { Histogram } from '../../../src/shared/model';
import { cumulativeEnergy, rankForEnergy, type Spectrum } from '../../../src/shared/spectrum';
import { colourTable } from '../panels/heatmap/colours';
import { LAYER_COLOURS, legendGradient, legendRange, paintTile } from '../panels/heatmap/paint';
import { drawHistogram } from '../panels/histogram';
import { drawSpectrum } from '../panels/spectrumPanel';
import { definitionList, element, section, shortNameElement } from '../platform/dom';

interface Column {
  readonly label: string;
  readonly text: (pair: TensorPairDiff) => string;
  /**
   * `name`: long text (tensor names), cut at its start to the column's width, the end kept
   * and the whole in the tooltip; `number`: one line, right-aligned; absent: text that
   * wraps between words (`float32 → int8 (int8 per-channel)`).
   */
  readonly kind?: 'name' | 'number';
  /** The value sorted by (numbers ascending, text alphabetically). */
  readonly key: (pair: TensorPairDiff) => number | string;
}

const COLUMNS: readonly Column[] = [
  { label: 'Tensor', text: (p) => p.name, key: (p) => p.name, kind: 'name' },
  { label: 'In B', text: pairingText, key: pairingText, kind: 'name' },
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
    kind: 'number',
  },
  {
    label: 'Cosine',
    text: (p) => (p.values ? formatStat(p.values.cosine, 6) : '—'),
    key: (p) => p.values?.cosine ?? 2,
    kind: 'number',
  },
  {
    label: 'Max |Δ|',
    text: (p) => (p.values ? formatStat(p.values.maxAbsDiff, 3) : '—'),
    key: (p) => p.values?.maxAbsDiff ?? -1,
    kind: 'number',
  },
  {
    label: 'Identical',
    text: (p) => (p.values ? formatPercent(p.values.identical) : '—'),
    key: (p) => p.values?.identical ?? 2,
    kind: 'number',
  },
];

const CHART_WIDTH = 520;
/** The ΔW heatmap is scaled to fit this box. */
const HEATMAP_BOX = { width: 520, height: 380 };
const LEGEND_WIDTH = 160;
/** The spectra charts mark the rank keeping this share of the energy. */
const MARKED_ENERGY = 0.9;

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
  /** The histograms of the selected pair, within `detail`. */
  private readonly histograms = element('div', { className: 'll-diff-histograms' });
  /** The spectra, ΔW heatmap and fine-tune analysis of the selected pair, within `detail`. */
  private readonly pairDetail = element('div', {
    className: 'll-diff-pair-detail',
    attrs: { 'data-testid': 'diff-pair-detail' },
  });

  constructor(
    private readonly root: HTMLElement,
    private readonly diff: ModelDiff,
    private readonly requestHistograms: (pair: TensorPairDiff) => void,
    /** Ask for the pair's spectra, ΔW heatmap and fine-tune analysis (answered by `showDetail`). */
    private readonly requestDetail?: (pair: TensorPairDiff) => void,
    /** Extract LoRA… (offered when the diff has changed matrices a LoRA can hold). */
    private readonly extractLora?: () => void,
    /** Show in graph: B's editor on its Graph tab, coloured by this structure diff. */
    private readonly showInGraph?: () => void,
  ) {}

  /** The adapter written by Extract LoRA…: per matrix its rank and errors. */
  private readonly lora = element('section', {
    className: 'll-section ll-diff-lora',
    attrs: { 'data-testid': 'diff-lora' },
  });

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
      const th = element('th', {
        className: column.kind === 'number' ? 'll-diff-number' : '',
        text: column.label,
        attrs: { role: 'button', tabindex: 0 },
      });
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
          ...(this.showInGraph ? [this.graphButton(this.showInGraph)] : []),
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
    this.lora.hidden = true;
    this.root.replaceChildren(
      ...[
        summary,
        section('Tensors', 'll-diff-tensors', [
          element('div', { className: 'll-panel-toolbar' }, [
            element('label', { className: 'll-diff-filter' }, [filter, ' Changed only']),
            ...(this.extractLora && hasLoraMatrices(this.diff) ? [this.loraButton()] : []),
          ]),
          // Scrolls sideways on its own when even the cut names leave it too wide.
          element('div', { className: 'll-diff-table-scroll' }, [table]),
        ]),
        this.lora,
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
          COLUMNS.map((c) => {
            const text = c.text(pair);
            return c.kind === 'name'
              ? element('td', {}, [shortNameElement({ lead: '', rest: text }, text)])
              : element('td', { className: c.kind === 'number' ? 'll-diff-number' : '', text });
          }),
        );
        tr.addEventListener('click', () => this.select(pair));
        return tr;
      }),
    );
  }

  private select(pair: TensorPairDiff): void {
    this.selected = pair.indexA;
    this.renderRows();
    this.histograms.replaceChildren(
      element('p', {
        text: pair.valuesSkipped
          ? `Values not compared: ${pair.valuesSkipped}`
          : 'Loading the histograms…',
      }),
    );
    this.pairDetail.replaceChildren(
      ...(this.requestDetail ? [element('p', { text: 'Computing the spectra and ΔW…' })] : []),
    );
    this.detail.replaceChildren(
      element('h2', { className: 'll-section-title', text: pair.name }),
      this.histograms,
      this.pairDetail,
    );
    this.requestHistograms(pair);
    this.requestDetail?.(pair);
  }
  /** The histograms of the selected pair arrived (or why they did not). */
  showHistograms(indexA: number, a: Histogram | null, b: Histogram | null, error?: string): void {
    if (indexA !== this.selected) return;
    const pair = this.diff.pairs.find((p) => p.indexA === indexA)!;
    const chart = element('div', {
      className: 'll-histogram-chart',
      attrs: { 'data-testid': 'diff-histogram' },
    });
    this.histograms.replaceChildren(
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

  private graphButton(show: () => void): HTMLButtonElement {
    const button = element('button', {
      className: 'll-button ll-button-secondary',
      text: 'Show in graph',
      attrs: {
        type: 'button',
        'data-testid': 'diff-show-in-graph',
        title: 'Open the second model’s graph, its nodes coloured by what changed',
      },
    });
    button.addEventListener('click', show);
    return button;
  }

  private loraButton(): HTMLButtonElement {
    const button = element('button', {
      className: 'll-button',
      text: 'Extract LoRA…',
      attrs: {
        type: 'button',
        'data-testid': 'diff-extract-lora',
        title: 'Write the changed matrices’ updates as a PEFT LoRA adapter (rank or energy)',
      },
    });
    button.addEventListener('click', () => this.extractLora?.());
    return button;
  }

  /** An adapter was written: where, and per matrix base + B·A against the fine-tune. */
  showLora(extraction: LoraExtraction): void {
    const percent = (x: number) => formatPercent(x);
    this.lora.hidden = false;
    this.lora.replaceChildren(
      element('h2', { className: 'll-section-title', text: 'LoRA adapter' }),
      definitionList([
        ['Adapter', extraction.adapterPath],
        ['Config', extraction.configPath],
        [
          'Rank',
          extraction.energy === undefined
            ? `r = ${extraction.rank}`
            : `per matrix for ${percent(extraction.energy)} of ‖ΔW‖²${extraction.maxRank ? `, at most ${extraction.maxRank}` : ''} (r = ${extraction.rank}, others in rank_pattern)`,
        ],
      ]),
      element(
        'table',
        { className: 'll-diff-table', attrs: { 'data-testid': 'diff-lora-table' } },
        [
          element('thead', {}, [
            element(
              'tr',
              {},
              [
                'Tensor',
                'Shape',
                'Rank',
                'Energy',
                '‖ΔW − BA‖/‖ΔW‖',
                '‖base + BA − tuned‖/‖tuned‖',
              ].map((label) => element('th', { text: label })),
            ),
          ]),
          element(
            'tbody',
            {},
            extraction.modules.map((m) =>
              element('tr', { attrs: { 'data-tensor': m.name } }, [
                element('td', { text: m.name }),
                element('td', { text: `${formatCount(m.rows)} × ${formatCount(m.cols)}` }),
                element('td', { text: String(m.rank) }),
                element('td', { text: percent(m.energy) }),
                element('td', { text: formatStat(m.updateError, 3) }),
                element('td', { text: formatStat(m.tunedError, 3) }),
              ]),
            ),
          ),
        ],
      ),
      ...extraction.skipped.map((s) =>
        element('p', {
          className: 'll-diff-note',
          text: `Not in the adapter: ${s.name}: ${s.reason}`,
        }),
      ),
    );
  }

  /** The spectra, ΔW heatmap and fine-tune analysis of the selected pair arrived (or why not). */
  showDetail(indexA: number, detail: PairDetail | null, error?: string): void {
    if (indexA !== this.selected) return;
    if (!detail) {
      this.pairDetail.replaceChildren(
        element('p', { className: 'll-error', text: `No spectra or ΔW: ${error ?? 'no answer'}` }),
      );
      return;
    }
    const spectra = spectraPart(detail);
    const heatmap = detail.heatmap ? heatmapPart(detail.heatmap) : null;
    const delta = detail.delta ? deltaPart(detail.delta) : null;
    this.pairDetail.replaceChildren(
      element('div', { className: 'll-diff-charts' }, heatmap ? [spectra, heatmap] : [spectra]),
      delta ??
        element('p', { className: 'll-diff-note', text: `No ΔW: ${detail.deltaSkipped ?? ''}` }),
    );
  }
}

function subsection(
  title: string,
  testId: string,
  children: (HTMLElement | string)[],
): HTMLElement {
  return element('div', { className: 'll-diff-part', attrs: { 'data-testid': testId } }, [
    element('h3', { className: 'll-subsection-title', text: title }),
    ...children,
  ]);
}

/** Both spectra on one chart: A's solid, B's dashed over it, with their ranks and norms. */
function spectraPart(detail: PairDetail): HTMLElement {
  const { spectrumA: a, spectrumB: b } = detail;
  if (!a || !b) {
    return element('p', {
      className: 'll-diff-note',
      text: `No spectra: ${detail.spectraSkipped ?? ''}`,
    });
  }
  const chart = element('div', {
    className: 'll-spectrum-chart',
    attrs: { 'data-testid': 'diff-spectra' },
  });
  const energyOf = (s: Spectrum) => cumulativeEnergy(s.singularValues, s.frobeniusSquared);
  drawSpectrum(
    chart,
    a.singularValues,
    energyOf(a),
    rankForEnergy(a.singularValues, a.frobeniusSquared, MARKED_ENERGY),
    CHART_WIDTH,
    { singularValues: b.singularValues, energy: energyOf(b) },
  );
  const change = (f: (s: Spectrum) => number, digits = 4) =>
    `${formatStat(f(a), digits)} → ${formatStat(f(b), digits)}`;
  return subsection('Spectra', 'diff-spectra-part', [
    element('p', {
      className: 'll-diff-legend',
      text: 'σ of A (solid) and of B (dashed), log axis; cumulative energy on the right; A’s 90% rank marked',
    }),
    chart,
    definitionList(
      [
        ['σ₁', change((s) => s.metrics.spectralNorm)],
        ['Stable rank', change((s) => s.metrics.stableRank)],
        ['Effective rank', change((s) => s.metrics.effectiveRank)],
        [
          'Rank for 90% / 99%',
          `${a.metrics.rank90} / ${a.metrics.rank99} → ${b.metrics.rank90} / ${b.metrics.rank99}`,
        ],
      ],
      'll-facts ll-stats-list',
    ),
  ]);
}

/** |ΔW| as one tile scaled to fit the box, in the heatmap's magnitude colours. */
function heatmapPart(heatmap: NonNullable<PairDetail['heatmap']>): HTMLElement {
  const { info, tile } = heatmap;
  const table = colourTable(LAYER_COLOURS.magnitude);
  const image = paintTile(tile, decodeTileValues(tile.values), info, table);
  const scale = Math.min(HEATMAP_BOX.width / image.width, HEATMAP_BOX.height / image.height);
  const canvas = element('canvas', {
    className: 'll-diff-delta-heatmap',
    attrs: {
      'data-testid': 'diff-delta-heatmap',
      'data-level': tile.level,
      width: Math.max(1, Math.round(image.width * scale)),
      height: Math.max(1, Math.round(image.height * scale)),
      role: 'img',
      'aria-label': `Heatmap of |ΔW|, ${info.rows} × ${info.cols}`,
    },
  });
  const context = canvas.getContext('2d');
  if (context) {
    context.imageSmoothingEnabled = false;
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
  }
  const [low, high] = legendRange(info);
  const span = 2 ** tile.level;
  return subsection('ΔW heatmap', 'diff-delta-heatmap-part', [
    canvas,
    element('div', { className: 'll-heatmap-legend' }, [
      element('span', { className: 'll-legend-value', text: formatStat(low, 3) }),
      legendGradient(table, LEGEND_WIDTH),
      element('span', { className: 'll-legend-value', text: formatStat(high, 3) }),
      element('span', {
        className: 'll-legend-text',
        text: `mean |B − A| per pixel (${span === 1 ? '1 cell' : `${span}×${span} cells`}), log scale · ${formatCount(info.rows)} × ${formatCount(info.cols)}`,
      }),
    ]),
  ]);
}

/** The fine-tune analysis of ΔW: its spectrum, stable and effective rank, energy at a few ranks. */
function deltaPart(delta: DeltaSpectrum): HTMLElement {
  const sigma = delta.singularValues;
  // ‖ΔW‖_F² from the stable rank: the spectrum sent may hold only the largest values.
  const total = delta.stableRank * (sigma[0] ?? 0) ** 2;
  const energy = cumulativeEnergy(sigma, total);
  const chart = element('div', {
    className: 'll-spectrum-chart',
    attrs: { 'data-testid': 'diff-delta-spectrum' },
  });
  drawSpectrum(chart, sigma, energy, rankForEnergy(sigma, total, MARKED_ENERGY), CHART_WIDTH);
  const energyTable = element(
    'table',
    { className: 'll-diff-energy', attrs: { 'data-testid': 'diff-delta-energy' } },
    [
      element('tr', {}, [
        element('th', { text: 'Rank r' }),
        ...delta.energyAt.map((e) => element('th', { text: String(e.rank) })),
      ]),
      element('tr', {}, [
        element('th', { text: 'Energy kept' }),
        ...delta.energyAt.map((e) =>
          element('td', { text: formatPercent(e.energy), attrs: { 'data-rank': e.rank } }),
        ),
      ]),
    ],
  );
  return subsection('ΔW (fine-tune analysis)', 'diff-delta-part', [
    element('p', {
      className: 'll-diff-legend',
      text: `singular values of ΔW = B − A (${formatCount(sigma.length)} largest), the cumulative energy, the 90% rank marked`,
    }),
    chart,
    definitionList(
      [
        ['‖ΔW‖ / ‖A‖', formatStat(delta.relativeChange, 3)],
        ['Stable rank', formatStat(delta.stableRank)],
        ['Effective rank', formatStat(delta.effectiveRank)],
      ],
      'll-facts ll-stats-list',
    ),
    energyTable,
  ]);
}

/** Whether some changed pair is a 2-D matrix of the same shape on both sides (what a LoRA adapts). */
export function hasLoraMatrices(diff: ModelDiff): boolean {
  return diff.pairs.some(
    (p) =>
      p.changed &&
      p.pairing !== 'factors' &&
      p.values !== undefined &&
      p.shapeA.length === 2 &&
      p.shapeB[0]?.join() === p.shapeA.join(),
  );
}

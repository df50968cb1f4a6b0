/**
 * The side panel for the selected tensor: a d3 bar chart of its value histogram (linear
 * or log counts) and its statistics. For a quantized tensor whose values are decoded, a
 * toggle shows the raw integer grid instead: the histogram of its codes and the levels
 * it uses (layerlens/tensorCodes).
 */
import {
  axisBottom,
  axisLeft,
  format,
  scaleLinear,
  scaleLog,
  select,
  type ScaleContinuousNumeric,
} from 'd3';
import type { Histogram, TensorCodes, TensorStats } from '../../../src/shared/model';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import { definitionList, element } from '../platform/dom';
import {
  formatBytes,
  formatCount,
  formatPercent,
  formatShape,
  formatStat,
} from '../../../src/shared/format';
import type { TensorRow } from '../table/tensorRows';
import type { HistogramScale } from '../viewState';

const CHART_HEIGHT = 220;
const MARGIN = { top: 10, right: 14, bottom: 38, left: 46 };
/** Narrower than this the axes no longer fit; the chart scrolls instead. */
const MIN_CHART_WIDTH = 240;
/** On a log axis the bars start here, so a bin holding a single value still shows. */
const LOG_BASELINE = 0.7;

export class HistogramPanel {
  readonly element: HTMLElement;
  /** The selected tensor's name and shape, above whatever the panel shows. */
  readonly header: HTMLElement;
  private readonly title: HTMLHeadingElement;
  private readonly subtitle: HTMLParagraphElement;
  private readonly chart: HTMLDivElement;
  private readonly chartToolbar: HTMLDivElement;
  private readonly message: HTMLParagraphElement;
  private readonly facts: HTMLDivElement;
  private readonly scaleButtons = new Map<HistogramScale, HTMLButtonElement>();
  private row: TensorRow | undefined;
  private drawnWidth = 0;
  /** Values decoded, or the raw codes of a quantized tensor. */
  private view: 'values' | 'codes' = 'values';
  private readonly viewToggle: HTMLDivElement;
  private readonly viewButtons = new Map<'values' | 'codes', HTMLButtonElement>();
  private readonly codesNote: HTMLParagraphElement;
  /** The codes of the tensor shown, once they arrive (per tensor index). */
  private codes: { index: number; result: TensorCodes | string } | null = null;
  private codesRequest: AbortController | null = null;

  constructor(
    private scale: HistogramScale,
    private readonly onScaleChange: (scale: HistogramScale) => void,
    private readonly api?: ModelApi,
  ) {
    this.title = element('h2', { className: 'll-detail-title', text: 'No tensor selected' });
    this.subtitle = element('p', { className: 'll-detail-subtitle' });
    const scaleToggle = element('div', {
      className: 'll-segmented',
      attrs: { role: 'group', 'aria-label': 'Histogram count axis' },
    });
    for (const option of ['linear', 'log'] as const) {
      const button = element('button', {
        className: 'll-segment',
        text: option === 'linear' ? 'Linear' : 'Log',
        attrs: {
          type: 'button',
          title: `${option === 'linear' ? 'Linear' : 'Logarithmic'} count axis`,
        },
      });
      button.addEventListener('click', () => this.setScale(option));
      this.scaleButtons.set(option, button);
      scaleToggle.append(button);
    }
    this.viewToggle = element('div', {
      className: 'll-segmented',
      attrs: { role: 'group', 'aria-label': 'Decoded values or stored codes' },
    });
    for (const option of ['values', 'codes'] as const) {
      const button = element('button', {
        className: 'll-segment',
        text: option === 'values' ? 'Values' : 'Codes',
        attrs: {
          type: 'button',
          'data-testid': `histogram-${option}`,
          title:
            option === 'values'
              ? 'The values the model computes with: (code − zero point) · scale'
              : 'The stored integer codes: levels used and their histogram',
        },
      });
      button.addEventListener('click', () => this.setView(option));
      this.viewButtons.set(option, button);
      this.viewToggle.append(button);
    }
    this.codesNote = element('p', {
      className: 'll-detail-message',
      attrs: { 'data-testid': 'codes-note' },
    });
    this.chart = element('div', { className: 'll-histogram-chart' });
    this.chartToolbar = element('div', { className: 'll-chart-toolbar' }, [
      this.viewToggle,
      // The count axis label stays beside its toggle when a narrow panel wraps the toolbar.
      element('div', { className: 'll-chart-toolbar' }, [
        element('span', { className: 'll-chart-toolbar-label', text: 'Counts' }),
        scaleToggle,
      ]),
    ]);
    this.message = element('p', {
      className: 'll-detail-message',
      text: 'Select a row to see the distribution of its values.',
    });
    this.facts = element('div', { className: 'll-detail-facts' });
    this.header = element('header', { className: 'll-detail-header' }, [this.title, this.subtitle]);
    this.element = element(
      'aside',
      {
        className: 'll-detail',
        attrs: { 'data-testid': 'histogram', 'aria-label': 'Selected tensor' },
      },
      [
        this.header,
        this.message,
        element('div', { className: 'll-detail-body' }, [
          element('div', { className: 'll-chart-area' }, [
            this.chartToolbar,
            this.codesNote,
            this.chart,
          ]),
          this.facts,
        ]),
      ],
    );
    this.updateScaleButtons();
    this.updateViewButtons();
    new ResizeObserver(() => {
      if (this.chart.clientWidth !== this.drawnWidth) this.drawChart();
    }).observe(this.chart);
  }

  /** Show a tensor's details; call again when its statistics arrive. */
  show(row: TensorRow | undefined): void {
    if (row?.info.index !== this.row?.info.index) {
      this.codesRequest?.abort();
      this.codesRequest = null;
      this.codes = null;
    }
    this.row = row;
    this.viewToggle.hidden = !this.hasCodes();
    if (this.view === 'codes' && this.hasCodes()) this.loadCodes();
    this.element.classList.toggle('ll-detail-empty', row === undefined);
    if (!row) {
      this.title.textContent = 'No tensor selected';
      this.title.removeAttribute('title');
      this.subtitle.textContent = '';
      this.facts.replaceChildren();
      this.setMessage('Select a row to see the distribution of its values.');
      this.drawChart();
      return;
    }
    const { info, stats, statsError } = row;
    this.title.textContent = info.name;
    this.title.title = info.name;
    this.subtitle.textContent = [
      info.op ? `${info.op} · ${info.node}` : info.node,
      info.encoding ? `${info.encoding.scheme} (values as ${info.dtype})` : info.dtype,
      formatShape(info.shape),
    ]
      .filter((part) => part !== '')
      .join(' · ');
    this.facts.replaceChildren(this.factsList(row));
    if (statsError !== null) this.setMessage(`No statistics: ${statsError}`, true);
    else if (!stats) this.setMessage('Computing statistics…');
    else if (!stats.histogram)
      // Finite values without bins: a shared report that keeps the largest tensors' only.
      this.setMessage(
        stats.min === null
          ? 'No finite values to plot.'
          : 'This report keeps the histograms of the largest tensors only.',
      );
    else this.setMessage(null);
    this.drawChart();
  }

  private setScale(scale: HistogramScale): void {
    if (scale === this.scale) return;
    this.scale = scale;
    this.updateScaleButtons();
    this.drawChart();
    this.onScaleChange(scale);
  }

  /** Whether the shown tensor is decoded from codes the server can count. */
  private hasCodes(): boolean {
    return this.api !== undefined && this.row?.info.encoding?.countsCodes === true;
  }

  private setView(view: 'values' | 'codes'): void {
    if (view === this.view) return;
    this.view = view;
    this.updateViewButtons();
    if (view === 'codes' && this.hasCodes()) this.loadCodes();
    this.drawChart();
  }

  private updateViewButtons(): void {
    for (const [option, button] of this.viewButtons) {
      button.setAttribute('aria-pressed', String(option === this.view));
    }
  }

  private loadCodes(): void {
    const index = this.row!.info.index;
    if (this.codes?.index === index || this.codesRequest) return;
    const controller = new AbortController();
    this.codesRequest = controller;
    this.api!.request('tensorCodes', { index }, controller.signal).then(
      (result) => this.codesArrived(controller, index, result),
      (error: unknown) => {
        if (!isCancellation(error)) {
          this.codesArrived(controller, index, `No codes: ${requestErrorOf(error).message}`);
        }
      },
    );
  }

  private codesArrived(
    controller: AbortController,
    index: number,
    result: TensorCodes | string,
  ): void {
    if (this.codesRequest !== controller) return;
    this.codesRequest = null;
    this.codes = { index, result };
    this.drawChart();
  }

  private updateScaleButtons(): void {
    for (const [option, button] of this.scaleButtons) {
      button.setAttribute('aria-pressed', String(option === this.scale));
    }
  }

  private setMessage(text: string | null, isError = false): void {
    this.message.hidden = text === null;
    this.message.textContent = text ?? '';
    this.message.classList.toggle('ll-detail-error', isError);
  }

  private factsList(row: TensorRow): HTMLElement {
    const { info, stats } = row;
    const entries: [string, string][] = [
      ['Parameters', formatCount(info.parameterCount)],
      ['Size', formatBytes(info.byteLength)],
    ];
    if (stats) entries.push(...statsEntries(stats));
    if (info.graph !== '') entries.push(['Graph', info.graph]);
    entries.push(['Stored as', info.location]);
    return definitionList(entries, 'll-facts ll-stats-list');
  }

  private drawChart(): void {
    const showCodes = this.view === 'codes' && this.hasCodes();
    const codes = showCodes ? (this.codes?.result ?? 'Counting the codes…') : null;
    this.codesNote.hidden = codes === null;
    this.codesNote.textContent = typeof codes === 'string' ? codes : codes ? codesLine(codes) : '';
    const histogram = showCodes
      ? typeof codes === 'object' && codes
        ? codes.histogram
        : null
      : (this.row?.stats?.histogram ?? null);
    const hasChart = histogram !== null && histogram.counts.length > 0;
    this.chart.hidden = !hasChart;
    this.chartToolbar.hidden = !hasChart && !showCodes;
    this.drawnWidth = this.chart.clientWidth;
    if (!hasChart) {
      this.chart.replaceChildren();
      return;
    }
    const width = Math.max(MIN_CHART_WIDTH, this.drawnWidth);
    drawHistogram(this.chart, histogram, this.scale, width, showCodes ? 'code' : 'value');
  }
}

function codesLine(codes: TensorCodes): string {
  const kind = `${codes.bits}-bit ${codes.signed ? 'signed' : 'unsigned'}`;
  return `${formatCount(codes.levelsUsed)} of ${formatCount(codes.levelsPossible)} levels used (${kind} codes ${codes.min}…${codes.max})`;
}

function statsEntries(stats: TensorStats): [string, string][] {
  return [
    ['Min', formatStat(stats.min)],
    ['Max', formatStat(stats.max)],
    ['Mean', formatStat(stats.mean)],
    ['Std', formatStat(stats.std)],
    ['Sparsity', formatPercent(stats.sparsity)],
    ['L2 norm', formatStat(stats.l2Norm)],
    ['NaN', formatCount(stats.nanCount)],
    ['Inf', formatCount(stats.infCount)],
  ];
}

/**
 * Draw `histogram` as bars into `container` (its svg is reused). `overlay`: a second
 * histogram drawn over it on a shared value axis (`ll-bar-overlay`), as the model diff
 * shows model B's values over model A's.
 */
export function drawHistogram(
  container: HTMLElement,
  histogram: Histogram,
  scale: HistogramScale,
  width: number,
  axisLabel: 'value' | 'code' = 'value',
  overlay?: Histogram,
): void {
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
  const { counts } = histogram;
  const binCount = counts.length;
  const maxCount = Math.max(1, ...counts, ...(overlay?.counts ?? []));
  const low = Math.min(histogram.min, overlay?.min ?? Infinity);
  const high = Math.max(histogram.max, overlay?.max ?? -Infinity);
  // A constant tensor has min === max: widen the axis so its single bar has somewhere to stand.
  const spread = histogram.max - histogram.min;
  const padding = high - low > 0 ? 0 : Math.max(Math.abs(low) * 0.05, 0.5);
  const x = scaleLinear()
    .domain([low - padding, high + padding])
    .range([0, innerWidth]);
  const y: ScaleContinuousNumeric<number, number> =
    scale === 'log'
      ? scaleLog().domain([LOG_BASELINE, maxCount]).range([innerHeight, 0]).clamp(true)
      : scaleLinear().domain([0, maxCount]).nice().range([innerHeight, 0]);
  const baseline = scale === 'log' ? LOG_BASELINE : 0;
  // Non-empty bins stay at least a pixel tall: lone outliers matter when choosing a quantization range.
  const barHeight = (count: number): number =>
    count > 0 ? Math.max(1, y(baseline) - y(count)) : 0;
  const binWidth = spread / binCount;
  const binStart = (bin: number): number => histogram.min + bin * binWidth;
  const barPixels = (bin: number): number => Math.max(1, bin - (bin > 3 ? 1 : 0));
  const barWidth = spread > 0 ? barPixels(x(histogram.min + binWidth) - x(histogram.min)) : 3;

  const svg = select(container)
    .selectAll<SVGSVGElement, null>('svg')
    .data([null])
    .join('svg')
    .attr('class', 'll-histogram-svg')
    .attr('width', width)
    .attr('height', CHART_HEIGHT)
    .attr('viewBox', `0 0 ${width} ${CHART_HEIGHT}`)
    .attr('role', 'img')
    .attr('aria-label', `Histogram of ${binCount} bins, counts on a ${scale} axis`);
  const plot = svg
    .selectAll<SVGGElement, null>('g.ll-plot')
    .data([null])
    .join('g')
    .attr('class', 'll-plot')
    .attr('transform', `translate(${MARGIN.left},${MARGIN.top})`);

  plot
    .selectAll<SVGGElement, null>('g.ll-bars')
    .data([null])
    .join('g')
    .attr('class', 'll-bars')
    .selectAll<SVGRectElement, number>('rect')
    .data(counts)
    .join((enter) => {
      const rect = enter.append('rect').attr('class', 'll-bar');
      rect.append('title');
      return rect;
    })
    .attr('x', (_count, bin) => (spread > 0 ? x(binStart(bin)) : x(histogram.min) - barWidth / 2))
    .attr('width', barWidth)
    .attr('height', barHeight)
    .attr('y', (count) => innerHeight - barHeight(count))
    .select('title')
    .text(
      (count, bin) =>
        `[${formatStat(binStart(bin))}, ${formatStat(binStart(bin + 1))}): ${formatCount(count)}`,
    );

  const over = overlay ?? { min: 0, max: 0, counts: [] };
  const overBin = (over.max - over.min) / Math.max(1, over.counts.length);
  plot
    .selectAll<SVGGElement, null>('g.ll-bars-overlay')
    .data(overlay ? [null] : [])
    .join('g')
    .attr('class', 'll-bars-overlay')
    .selectAll<SVGRectElement, number>('rect')
    .data(over.counts)
    .join((enter) => {
      const rect = enter.append('rect').attr('class', 'll-bar ll-bar-overlay');
      rect.append('title');
      return rect;
    })
    .attr('x', (_count, bin) => x(over.min + bin * overBin))
    .attr('width', barPixels(x(over.min + overBin) - x(over.min)))
    .attr('height', barHeight)
    .attr('y', (count) => innerHeight - barHeight(count))
    .select('title')
    .text(
      (count, bin) =>
        `B [${formatStat(over.min + bin * overBin)}, ${formatStat(over.min + (bin + 1) * overBin)}): ${formatCount(count)}`,
    );

  const xTicks = Math.max(3, Math.floor(innerWidth / 55));
  plot
    .selectAll<SVGGElement, null>('g.ll-axis-x')
    .data([null])
    .join('g')
    .attr('class', 'll-axis ll-axis-x')
    .attr('transform', `translate(0,${innerHeight})`)
    .call(axisBottom(x).ticks(xTicks, axisLabel === 'code' ? 'd' : '~g'));
  plot
    .selectAll<SVGGElement, null>('g.ll-axis-y')
    .data([null])
    .join('g')
    .attr('class', 'll-axis ll-axis-y')
    // A log axis keeps d3's own labels, which skip the crowded ticks between powers of ten.
    .call(
      scale === 'log' ? axisLeft(y).ticks(5, '~s') : axisLeft(y).ticks(5).tickFormat(format('~s')),
    );

  svg
    .selectAll<SVGTextElement, string>('text.ll-axis-label')
    .data([axisLabel, 'count'])
    .join('text')
    .attr('class', 'll-axis-label')
    .attr('text-anchor', 'middle')
    .attr('transform', (label) =>
      label === axisLabel
        ? `translate(${MARGIN.left + innerWidth / 2},${CHART_HEIGHT - 4})`
        : `translate(12,${MARGIN.top + innerHeight / 2}) rotate(-90)`,
    )
    .text((label) => (label === 'count' && scale === 'log' ? 'count (log)' : label));
}

/**
 * The selected tensor's rank spectrum: singular values on a log axis with the cumulative
 * energy curve (d3, SVG), a rank slider and an energy target, what a rank-r factorization
 * would keep and cost, and the spectral metrics.
 */
import {
  axisBottom,
  axisLeft,
  axisRight,
  format,
  line,
  scaleLinear,
  scaleLog,
  select,
  type NumberValue,
} from 'd3';
import { formatCount, formatPercent, formatStat } from '../../../src/shared/format';
import { matrixShape } from '../../../src/shared/heatmap';
import {
  cumulativeEnergy,
  hasSpectrum,
  lowRankParameters,
  maxSavingRank,
  rankForEnergy,
  relativeReconstructionError,
  type Spectrum,
  type SpectrumOptions,
} from '../../../src/shared/spectrum';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import { definitionList, element } from '../platform/dom';
import type { TensorRow } from '../table/tensorRows';

const CHART_HEIGHT = 240;
const MARGIN = { top: 10, right: 44, bottom: 36, left: 52 };
const MIN_CHART_WIDTH = 320;

const plainTick = format('~g');
const powerTick = format('~e');
/**
 * σ tick labels, at most five characters so that they fit the left margin: plain from 0.01
 * to 9,999 ("0.05", "2000"), as powers of ten beyond ("1e-6", "1e+5"; '~g' wrote 1e-6 as
 * 0.000001, cut off at the chart's edge).
 */
function sigmaTick(value: NumberValue): string {
  const v = Number(value);
  return v >= 0.01 && v < 1e4 ? plainTick(v) : powerTick(v);
}
/** Matrices up to this many values get their spectrum as soon as the tab shows them. */
export const AUTO_SPECTRUM_ELEMENTS = 4 * 1024 * 1024;
/** Energy kept by the rank the slider starts at. */
const INITIAL_ENERGY = 0.9;

/** Whether a tensor has a spectrum: two or more non-empty dimensions of floating-point values. */
export function rowHasSpectrum(row: TensorRow): boolean {
  return hasSpectrum(row.info);
}

type Method = NonNullable<SpectrumOptions['method']>;

export class SpectrumPanel {
  readonly element: HTMLElement;
  private readonly message: HTMLParagraphElement;
  private readonly computeButton: HTMLButtonElement;
  private readonly precisionSelect: HTMLSelectElement;
  private readonly convSelect: HTMLSelectElement;
  private readonly methodSelect: HTMLSelectElement;
  private readonly kInput: HTMLInputElement;
  private readonly convLabel: HTMLLabelElement;
  private readonly kLabel: HTMLLabelElement;
  private readonly body: HTMLDivElement;
  private readonly chart: HTMLDivElement;
  private readonly slider: HTMLInputElement;
  private readonly energyInput: HTMLInputElement;
  private readonly readout: HTMLDivElement;
  private readonly metrics: HTMLDivElement;
  private row: TensorRow | undefined;
  private visible = false;
  private spectrum: Spectrum | null = null;
  private energy: number[] = [];
  private rank = 1;
  private request: AbortController | null = null;
  /** Row and options of the spectrum shown or being fetched, so a redraw does not refetch. */
  private shownKey = '';
  private drawnWidth = 0;

  constructor(
    private readonly api: ModelApi,
    /** A spectrum with the default options arrived (the table shows its metrics). */
    private readonly computed: (index: number, spectrum: Spectrum) => void,
  ) {
    this.message = element('p', { className: 'll-detail-message' });
    this.computeButton = element('button', {
      className: 'll-button',
      text: 'Compute spectrum',
      attrs: { type: 'button', 'data-testid': 'spectrum-compute' },
    });
    this.computeButton.addEventListener('click', () => this.fetch(true));
    this.precisionSelect = select_(
      [
        ['float32', 'float32'],
        ['float64', 'float64 (small σ exact)'],
      ],
      'spectrum-precision',
    );
    this.convSelect = select_(
      [
        ['flatten', 'out × in·k'],
        ['spatial', 'per spatial slice'],
      ],
      'spectrum-conv',
    );
    this.methodSelect = select_(
      [
        ['auto', 'auto'],
        ['full', 'full'],
        ['topk', 'top-k'],
        ['fast', 'fast'],
      ],
      'spectrum-method',
    );
    this.kInput = element('input', {
      className: 'll-number-input',
      attrs: {
        type: 'number',
        min: 1,
        max: 1024,
        step: 1,
        value: 64,
        'data-testid': 'spectrum-k',
        'aria-label': 'k',
      },
    });
    for (const control of [this.precisionSelect, this.convSelect, this.methodSelect, this.kInput]) {
      control.addEventListener('change', () => {
        this.updateOptionControls();
        this.fetch(false);
      });
    }
    this.convLabel = labelled('Conv', this.convSelect);
    this.kLabel = labelled('k', this.kInput);
    const options = element('div', { className: 'll-panel-toolbar' }, [
      labelled('Precision', this.precisionSelect),
      this.convLabel,
      labelled('Values', this.methodSelect),
      this.kLabel,
    ]);

    this.chart = element('div', {
      className: 'll-spectrum-chart',
      attrs: { 'data-testid': 'spectrum-chart' },
    });
    this.slider = element('input', {
      className: 'll-rank-slider',
      attrs: {
        type: 'range',
        min: 1,
        max: 1,
        step: 1,
        value: 1,
        'data-testid': 'rank-slider',
        'aria-label': 'Rank',
      },
    });
    this.slider.addEventListener('input', () => this.setRank(Number(this.slider.value), true));
    this.energyInput = element('input', {
      className: 'll-number-input',
      attrs: {
        type: 'number',
        min: 0.1,
        max: 100,
        step: 0.1,
        value: INITIAL_ENERGY * 100,
        'data-testid': 'energy-target',
        'aria-label': 'Energy target in percent',
      },
    });
    this.energyInput.addEventListener('change', () => {
      const target = Number(this.energyInput.value) / 100;
      if (!this.spectrum || !(target > 0)) return;
      this.setRank(
        rankForEnergy(
          this.spectrum.singularValues,
          this.spectrum.frobeniusSquared,
          Math.min(1, target),
        ),
        false,
      );
    });
    const controls = element('div', { className: 'll-panel-toolbar' }, [
      labelled('Rank', this.slider),
      labelled('Energy target %', this.energyInput),
    ]);
    this.readout = element('div', {
      className: 'll-spectrum-readout',
      attrs: { 'data-testid': 'spectrum-readout' },
    });
    this.metrics = element('div', {
      className: 'll-spectrum-metrics',
      attrs: { 'data-testid': 'spectral-metrics' },
    });
    this.body = element('div', { className: 'll-spectrum-body' }, [
      this.chart,
      controls,
      element('div', { className: 'll-detail-body' }, [this.readout, this.metrics]),
    ]);
    this.element = element(
      'section',
      {
        className: 'll-analysis-panel',
        attrs: { 'data-testid': 'spectrum-panel', 'aria-label': 'Rank spectrum' },
      },
      [options, this.message, this.computeButton, this.body],
    );
    new ResizeObserver(() => {
      if (this.visible && this.spectrum && this.chart.clientWidth !== this.drawnWidth) this.draw();
    }).observe(this.chart);
    this.updateOptionControls();
  }

  /** Show a tensor (or none); `visible` says whether the tab is on screen (work waits until it is). */
  show(row: TensorRow | undefined, visible: boolean): void {
    const changed = row?.info.index !== this.row?.info.index;
    this.row = row;
    this.visible = visible;
    if (changed) {
      this.request?.abort();
      this.request = null;
      this.spectrum = null;
      this.shownKey = '';
      this.updateOptionControls();
    }
    if (!visible) return;
    this.fetch(false);
  }

  private options(): SpectrumOptions {
    const method = this.methodSelect.value as Method;
    return {
      method,
      ...(method === 'topk' ? { k: Math.max(1, Math.round(Number(this.kInput.value) || 1)) } : {}),
      precision: this.precisionSelect.value as SpectrumOptions['precision'],
      conv: this.convSelect.value as SpectrumOptions['conv'],
    };
  }

  private updateOptionControls(): void {
    this.convLabel.hidden = (this.row?.info.shape.length ?? 0) < 3;
    this.kLabel.hidden = this.methodSelect.value !== 'topk';
  }

  /** Fetch the spectrum for the current row and options; `force` also fetches large matrices. */
  private fetch(force: boolean): void {
    const row = this.row;
    if (!row || !rowHasSpectrum(row)) {
      this.request?.abort();
      this.spectrum = null;
      this.setState(
        row
          ? 'This tensor has no spectrum: it needs two or more dimensions of floating-point values.'
          : 'Select a row to see its rank spectrum.',
      );
      return;
    }
    const options = this.options();
    const key = `${row.info.index}:${JSON.stringify(options)}`;
    if (key === this.shownKey) {
      if (this.spectrum) this.draw();
      return;
    }
    const matrix = matrixShape(row.info.shape)!;
    if (!force && matrix.rows * matrix.cols > AUTO_SPECTRUM_ELEMENTS) {
      this.request?.abort();
      this.spectrum = null;
      this.shownKey = '';
      this.setState(
        `A ${formatCount(matrix.rows)} × ${formatCount(matrix.cols)} matrix: its spectrum takes a while.`,
        { button: true },
      );
      return;
    }
    this.request?.abort();
    const controller = new AbortController();
    this.request = controller;
    this.shownKey = key;
    this.spectrum = null;
    this.setState('Computing the spectrum…');
    this.api.request('spectrum', { index: row.info.index, options }, controller.signal).then(
      (spectrum) => {
        if (controller.signal.aborted) return;
        this.request = null;
        if (isDefaultOptions(options)) this.computed(row.info.index, spectrum);
        this.spectrum = spectrum;
        this.energy = cumulativeEnergy(spectrum.singularValues, spectrum.frobeniusSquared);
        this.slider.max = String(Math.max(1, spectrum.singularValues.length));
        this.setState(null);
        this.setRank(
          rankForEnergy(spectrum.singularValues, spectrum.frobeniusSquared, INITIAL_ENERGY),
          false,
        );
      },
      (error: unknown) => {
        if (controller.signal.aborted || isCancellation(error)) return;
        this.request = null;
        this.shownKey = '';
        this.setState(`No spectrum: ${requestErrorOf(error).message}`, {
          error: true,
          button: true,
        });
      },
    );
  }

  private setState(text: string | null, options: { error?: boolean; button?: boolean } = {}): void {
    this.message.hidden = text === null;
    this.message.textContent = text ?? '';
    this.message.classList.toggle('ll-detail-error', options.error === true);
    this.computeButton.hidden = options.button !== true;
    this.computeButton.textContent = options.error ? 'Try again' : 'Compute spectrum';
    this.body.hidden = text !== null;
    this.element.dataset.state = text === null ? 'ready' : options.error ? 'error' : 'waiting';
  }

  private setRank(rank: number, fromSlider: boolean): void {
    const spectrum = this.spectrum;
    if (!spectrum) return;
    const count = spectrum.singularValues.length;
    this.rank = Math.max(1, Math.min(count, Math.round(rank)));
    this.slider.value = String(this.rank);
    if (fromSlider)
      this.energyInput.value = String(Number(((this.energy[this.rank - 1] ?? 0) * 100).toFixed(2)));
    this.renderReadout(spectrum);
    this.draw();
  }

  private renderReadout(spectrum: Spectrum): void {
    const { rows, cols } = spectrum;
    const rank = this.rank;
    const kept = this.energy[rank - 1] ?? 0;
    const factorized = lowRankParameters(rows, cols, rank);
    const dense = rows * cols;
    const saves = rank <= maxSavingRank(rows, cols);
    const error = relativeReconstructionError(
      spectrum.singularValues,
      spectrum.frobeniusSquared,
      rank,
    );
    const value = (testId: string, text: string, raw: number | string) =>
      element('span', { text, attrs: { 'data-testid': testId, 'data-value': raw } });
    const matrices = spectrum.conv === 'spatial' ? ' per slice' : '';
    this.readout.replaceChildren(
      definitionList(
        [
          [
            'Rank',
            value(
              'spectrum-rank',
              `${formatCount(rank)} of ${formatCount(spectrum.singularValues.length)}`,
              rank,
            ),
          ],
          ['Kept energy', value('spectrum-energy', formatPercent(kept), kept)],
          [
            `Parameters${matrices}`,
            value(
              'spectrum-params',
              `${formatCount(factorized)} vs ${formatCount(dense)} dense (${(factorized / dense).toFixed(2)}×)`,
              factorized,
            ),
          ],
          [
            'Saves space',
            value(
              'spectrum-saves',
              saves
                ? `yes (r ≤ ${formatCount(maxSavingRank(rows, cols))})`
                : `no: needs r < ${formatStat((rows * cols) / (rows + cols))}`,
              String(saves),
            ),
          ],
          ['‖W − W_r‖ / ‖W‖', value('spectrum-error', formatStat(error), error)],
        ],
        'll-facts ll-stats-list',
      ),
    );
    const { metrics } = spectrum;
    const alpha =
      metrics.alpha === null
        ? '— (too few values)'
        : `${formatStat(metrics.alpha)} (xmin ${formatStat(metrics.alphaXmin)}, KS ${formatStat(metrics.alphaKs)})`;
    this.metrics.replaceChildren(
      definitionList(
        [
          [
            'Matrix',
            `${formatCount(rows)} × ${formatCount(cols)}${spectrum.conv ? ` (${spectrum.conv})` : ''}`,
          ],
          ['Stable rank', formatStat(metrics.stableRank)],
          ['Effective rank', formatStat(metrics.effectiveRank)],
          ['Rank for 90% / 99%', `${formatCount(metrics.rank90)} / ${formatCount(metrics.rank99)}`],
          ['Spectral norm σ₁', formatStat(metrics.spectralNorm)],
          ['Power-law α', alpha],
          ['MP soft rank', formatStat(metrics.mpSoftRank)],
          ['MP spikes', metrics.mpSpikes === null ? '—' : formatCount(metrics.mpSpikes)],
          [
            'Values',
            `${spectrum.method === 'full' ? 'all ' : 'top '}${formatCount(spectrum.singularValues.length)}, ${spectrum.precision}`,
          ],
          ['Computed', `${spectrum.backend}, ${formatStat(spectrum.elapsedMs / 1000, 3)} s`],
        ],
        'll-facts ll-stats-list',
      ),
    );
  }

  private draw(): void {
    const spectrum = this.spectrum;
    if (!spectrum || !this.visible) return;
    this.drawnWidth = this.chart.clientWidth;
    const width = Math.max(MIN_CHART_WIDTH, this.drawnWidth);
    drawSpectrum(this.chart, spectrum.singularValues, this.energy, this.rank, width);
  }
}

export function isDefaultOptions(options: SpectrumOptions): boolean {
  return (
    (options.method ?? 'auto') === 'auto' &&
    (options.precision ?? 'float32') === 'float32' &&
    (options.conv ?? 'flatten') === 'flatten'
  );
}

function select_(
  choices: readonly (readonly [string, string])[],
  testId: string,
): HTMLSelectElement {
  const control = element('select', { className: 'll-select', attrs: { 'data-testid': testId } });
  for (const [value, label] of choices)
    control.append(element('option', { text: label, attrs: { value } }));
  return control;
}

function labelled(label: string, control: HTMLElement): HTMLLabelElement {
  return element('label', { className: 'll-control' }, [
    element('span', { className: 'll-control-label', text: label }),
    control,
  ]);
}

/** A second spectrum drawn over the first (the Compare panel's B over A). */
export interface SpectrumOverlay {
  readonly singularValues: readonly number[];
  readonly energy: readonly number[];
}

/**
 * Singular values on a log axis with their cumulative energy and `rank` marked, into
 * `container` (an SVG it keeps across redraws); with `overlay`, a second spectrum over it.
 */
export function drawSpectrum(
  container: HTMLElement,
  singularValues: readonly number[],
  energy: readonly number[],
  rank: number,
  width: number,
  overlay?: SpectrumOverlay,
): void {
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
  const count = Math.max(singularValues.length, overlay?.singularValues.length ?? 0);
  const largest = Math.max(singularValues[0] ?? 1, overlay?.singularValues[0] ?? 0);
  let smallest = largest;
  for (const sigma of [...singularValues, ...(overlay?.singularValues ?? [])])
    if (sigma > 0 && sigma < smallest) smallest = sigma;
  const floor = smallest > 0 ? smallest : 1e-12;
  const x = scaleLinear()
    .domain([1, Math.max(2, count)])
    .range([0, innerWidth]);
  const y = scaleLog()
    .domain([floor, Math.max(largest, floor * 10)])
    .range([innerHeight, 0])
    .clamp(true)
    .nice();
  const yEnergy = scaleLinear().domain([0, 1]).range([innerHeight, 0]);
  const points = singularValues.map((sigma, i) => [i + 1, Math.max(sigma, floor)] as const);
  const sigmaLine = line<readonly [number, number]>()
    .x((point) => x(point[0]))
    .y((point) => y(point[1]));
  const energyLine = line<number>()
    .x((_value, i) => x(i + 1))
    .y((value) => yEnergy(value));

  const svg = select(container)
    .selectAll<SVGSVGElement, null>('svg')
    .data([null])
    .join('svg')
    .attr('class', 'll-spectrum-svg')
    .attr('width', width)
    .attr('height', CHART_HEIGHT)
    .attr('role', 'img')
    .attr(
      'aria-label',
      `${count} singular values on a log axis and the cumulative energy${overlay ? ', a second spectrum over them' : ''}; rank ${rank} marked`,
    );
  const plot = svg
    .selectAll<SVGGElement, null>('g.ll-plot')
    .data([null])
    .join('g')
    .attr('class', 'll-plot')
    .attr('transform', `translate(${MARGIN.left},${MARGIN.top})`);
  plot
    .selectAll<SVGPathElement, null>('path.ll-sigma-line')
    .data([null])
    .join('path')
    .attr('class', 'll-sigma-line')
    .attr('d', sigmaLine(points) ?? '');
  plot
    .selectAll<SVGPathElement, null>('path.ll-energy-line')
    .data([null])
    .join('path')
    .attr('class', 'll-energy-line')
    .attr('d', energyLine(energy as number[]) ?? '');
  const overlays = overlay ? [overlay] : [];
  plot
    .selectAll<SVGPathElement, SpectrumOverlay>('path.ll-sigma-overlay')
    .data(overlays)
    .join('path')
    .attr('class', 'll-sigma-overlay')
    .attr('data-testid', 'spectrum-overlay')
    .attr(
      'd',
      (o) =>
        sigmaLine(o.singularValues.map((sigma, i) => [i + 1, Math.max(sigma, floor)] as const)) ??
        '',
    );
  plot
    .selectAll<SVGPathElement, SpectrumOverlay>('path.ll-energy-overlay')
    .data(overlays)
    .join('path')
    .attr('class', 'll-energy-overlay')
    .attr('d', (o) => energyLine(o.energy as number[]) ?? '');
  plot
    .selectAll<SVGLineElement, null>('line.ll-rank-marker')
    .data([null])
    .join('line')
    .attr('class', 'll-rank-marker')
    .attr('data-testid', 'rank-marker')
    .attr('data-rank', rank)
    .attr('x1', x(rank))
    .attr('x2', x(rank))
    .attr('y1', 0)
    .attr('y2', innerHeight);
  plot
    .selectAll<SVGCircleElement, null>('circle.ll-rank-point')
    .data([null])
    .join('circle')
    .attr('class', 'll-rank-point')
    .attr('r', 3.5)
    .attr('cx', x(rank))
    .attr('cy', yEnergy(energy[rank - 1] ?? 0));
  plot
    .selectAll<SVGGElement, null>('g.ll-axis-x')
    .data([null])
    .join('g')
    .attr('class', 'll-axis ll-axis-x')
    .attr('transform', `translate(0,${innerHeight})`)
    .call(axisBottom(x).ticks(Math.max(3, Math.floor(innerWidth / 60)), '~d'));
  plot
    .selectAll<SVGGElement, null>('g.ll-axis-y')
    .data([null])
    .join('g')
    .attr('class', 'll-axis ll-axis-y ll-axis-sigma')
    .call(axisLeft(y).ticks(5, sigmaTick));
  plot
    .selectAll<SVGGElement, null>('g.ll-axis-energy')
    .data([null])
    .join('g')
    .attr('class', 'll-axis ll-axis-energy')
    .attr('transform', `translate(${innerWidth},0)`)
    .call(axisRight(yEnergy).ticks(5, '~%'));
  svg
    .selectAll<SVGTextElement, string>('text.ll-axis-label')
    .data(['rank', 'σ (log)', 'energy'])
    .join('text')
    .attr(
      'class',
      (label) =>
        `ll-axis-label${label === 'energy' ? ' ll-energy-label' : label === 'σ (log)' ? ' ll-sigma-label' : ''}`,
    )
    .attr('text-anchor', 'middle')
    .attr('transform', (label) =>
      label === 'rank'
        ? `translate(${MARGIN.left + innerWidth / 2},${CHART_HEIGHT - 4})`
        : label === 'energy'
          ? `translate(${width - 8},${MARGIN.top + innerHeight / 2}) rotate(90)`
          : `translate(12,${MARGIN.top + innerHeight / 2}) rotate(-90)`,
    )
    .text((label) => label);
}

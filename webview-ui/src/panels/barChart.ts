/** A compact horizontal bar chart (d3, SVG) that redraws itself when its container resizes. */
import { max, scaleBand, scaleLinear, select } from 'd3';
import { element } from '../platform/dom';
import { fitShortName, type ShortName } from '../../../src/shared/names';

export interface Bar {
  readonly label: string;
  /** The label as a short name (src/shared/names.ts): cut keeping its lead; `label` is the tooltip. */
  readonly short?: ShortName;
  readonly value: number;
  /** Text at the end of the bar. */
  readonly valueText: string;
}

const BAR_HEIGHT = 18;
const BAR_GAP = 4;
const LABEL_WIDTH = 132;
const VALUE_WIDTH = 56;
/** Longer labels are cut with an ellipsis (SVG text cannot do it itself); the tooltip has all. */
const MAX_LABEL_CHARS = 20;

export interface BarChartOptions {
  /** Room for the labels in CSS pixels (default LABEL_WIDTH). */
  readonly labelWidth?: number;
  /** Cut long labels at their start (names whose ends tell them apart). */
  readonly truncateStart?: boolean;
}

export function horizontalBarChart(
  bars: readonly Bar[],
  ariaLabel: string,
  options: BarChartOptions = {},
): HTMLElement {
  const container = element('div', { className: 'll-bar-chart' });
  let drawnWidth = -1;
  new ResizeObserver(() => {
    const width = container.clientWidth;
    if (width > 0 && width !== drawnWidth) {
      drawnWidth = width;
      draw(container, bars, width, ariaLabel, options);
    }
  }).observe(container);
  return container;
}

function draw(
  container: HTMLElement,
  bars: readonly Bar[],
  width: number,
  ariaLabel: string,
  options: BarChartOptions,
): void {
  const labelWidth = options.labelWidth ?? LABEL_WIDTH;
  const maxChars =
    options.labelWidth === undefined ? MAX_LABEL_CHARS : Math.floor((labelWidth - 12) / 7.5);
  const height = bars.length * (BAR_HEIGHT + BAR_GAP);
  const barSpace = Math.max(40, width - labelWidth - VALUE_WIDTH);
  const x = scaleLinear()
    .domain([0, max(bars, (bar) => bar.value) ?? 1])
    .range([0, barSpace]);
  const y = scaleBand<number>()
    .domain(bars.map((_bar, position) => position))
    .range([0, height])
    .paddingInner(BAR_GAP / (BAR_HEIGHT + BAR_GAP));

  const svg = select(container)
    .selectAll<SVGSVGElement, null>('svg')
    .data([null])
    .join('svg')
    .attr('width', width)
    .attr('height', height)
    .attr('role', 'img')
    .attr('aria-label', ariaLabel);

  const rows = svg
    .selectAll<SVGGElement, Bar>('g.ll-bar-row')
    .data(bars)
    .join((enter) => {
      const row = enter.append('g').attr('class', 'll-bar-row');
      row.append('title');
      row.append('text').attr('class', 'll-bar-label').attr('text-anchor', 'end');
      row.append('rect').attr('class', 'll-bar');
      row.append('text').attr('class', 'll-bar-value');
      return row;
    })
    .attr('transform', (_bar, position) => `translate(0,${y(position) ?? 0})`);
  rows.select('title').text((bar) => `${bar.label}: ${bar.valueText}`);
  rows
    .select('text.ll-bar-label')
    .attr('x', labelWidth - 8)
    .attr('y', y.bandwidth() / 2)
    .attr('dy', '0.35em')
    .text((bar) =>
      bar.short
        ? fitShortName(bar.short, maxChars)
        : truncate(bar.label, maxChars, options.truncateStart === true),
    );
  rows
    .select('rect')
    .attr('x', labelWidth)
    .attr('height', y.bandwidth())
    .attr('width', (bar) => Math.max(1, x(bar.value)));
  rows
    .select('text.ll-bar-value')
    .attr('x', (bar) => labelWidth + Math.max(1, x(bar.value)) + 6)
    .attr('y', y.bandwidth() / 2)
    .attr('dy', '0.35em')
    .text((bar) => bar.valueText);
}

function truncate(label: string, maxChars: number, atStart: boolean): string {
  if (label.length <= maxChars) return label;
  return atStart
    ? `…${label.slice(label.length - maxChars + 1)}`
    : `${label.slice(0, maxChars - 1)}…`;
}

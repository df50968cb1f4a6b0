/**
 * Charts of the Sensitivity tab: one layer's curves (deviation against level, a line per
 * method; the data-free proxy dashed and labelled as such) and the model's layers ranked
 * at one level (a bar chart), both d3 on SVG.
 */
import { axisBottom, axisLeft, line, scaleLog, scalePoint, select } from 'd3';
import type { CompressionMethod } from '../../../src/shared/compress';
import {
  rankLayers,
  sensitivityAt,
  type LayerSensitivity,
  type SensitivityResult,
} from '../../../src/shared/sensitivity';
import { horizontalBarChart } from './barChart';
import { shortenNames } from '../../../src/shared/names';
import { element } from '../platform/dom';

const HEIGHT = 220;
const MARGIN = { top: 10, right: 16, bottom: 56, left: 56 };
/** Room for layer names in the ranking (their ends tell them apart). */
const RANKING_LABEL_WIDTH = 250;
/** Positive values at or below this sit on the bottom of the log axis. */
const FLOOR = 1e-6;
/**
 * Height of the lane under the log axis where zeros are drawn: a log scale has no 0, so a
 * measured 0 is a marker on the x axis labelled "0", never a point at the scale's bottom.
 */
const ZERO_LANE = 14;

export function formatSensitivity(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4
    ? value.toPrecision(3)
    : value.toExponential(2);
}

interface CurvePoint {
  readonly key: string;
  readonly value: number;
}

interface Curve {
  readonly method: CompressionMethod;
  readonly kind: 'measured' | 'proxy';
  readonly points: readonly CurvePoint[];
}

function curvesOf(result: SensitivityResult, layer: LayerSensitivity): Curve[] {
  const methods = [...new Set(result.levels.map((level) => level.method))];
  const curves: Curve[] = [];
  for (const method of methods) {
    const keys = result.levels.filter((level) => level.method === method).map((l) => l.key);
    const proxy = layer.proxy
      .filter((p) => keys.includes(p.key))
      .map((p) => ({ key: p.key, value: p.relativeError }));
    if (proxy.length > 0) curves.push({ method, kind: 'proxy', points: proxy });
    const measured = (layer.measured ?? [])
      .filter((p) => keys.includes(p.key))
      .map((p) => ({ key: p.key, value: p.deviation }));
    if (measured.length > 0) curves.push({ method, kind: 'measured', points: measured });
  }
  return curves;
}

/** The curves of one layer, with a legend naming what each line shows. */
export function renderCurves(
  container: HTMLElement,
  result: SensitivityResult,
  layer: LayerSensitivity,
): void {
  const width = Math.max(320, container.clientWidth || 480);
  const curves = curvesOf(result, layer);
  const values = curves.flatMap((c) => c.points.map((p) => p.value)).filter((v) => v > FLOOR);
  const top = Math.max(FLOOR * 10, ...values.filter(Number.isFinite));
  const bottom = Math.max(FLOOR, Math.min(top / 10, ...values));
  const x = scalePoint<string>()
    .domain(result.levels.map((level) => level.key))
    .range([MARGIN.left, width - MARGIN.right])
    .padding(0.3);
  const axisY = HEIGHT - MARGIN.bottom;
  const y = scaleLog()
    .domain([bottom, top])
    .range([axisY - ZERO_LANE, MARGIN.top])
    .clamp(true)
    .nice();
  const isZero = (value: number) => value === 0;
  const yOf = (value: number) => (isZero(value) ? axisY : y(Math.max(bottom, value)));
  const labelOf = new Map(result.levels.map((level) => [level.key, level.label]));
  const svg = select(container)
    .selectAll<SVGSVGElement, null>('svg')
    .data([null])
    .join('svg')
    .attr('width', width)
    .attr('height', HEIGHT)
    .attr('role', 'img')
    .attr('aria-label', `Sensitivity of ${layer.name} at each level`);
  svg.selectAll('*').remove();
  svg
    .append('g')
    .attr('transform', `translate(0,${HEIGHT - MARGIN.bottom})`)
    .call(axisBottom(x).tickFormat((key) => labelOf.get(key) ?? key))
    .selectAll('text')
    .attr('transform', 'rotate(-35)')
    .attr('text-anchor', 'end');
  svg.append('g').attr('transform', `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(4, '~e'));
  const zeros = curves.some((curve) => curve.points.some((p) => isZero(p.value)));
  if (zeros) {
    svg
      .append('text')
      .attr('class', 'll-sens-zero-label')
      .attr('data-testid', 'sens-zero-label')
      .attr('x', MARGIN.left - 9)
      .attr('y', axisY)
      .attr('dy', '0.32em')
      .attr('text-anchor', 'end')
      .text('0');
  }
  const path = line<CurvePoint>()
    .x((p) => x(p.key) ?? 0)
    .y((p) => yOf(p.value));
  for (const curve of curves) {
    const group = svg
      .append('g')
      .attr('class', `ll-sens-curve ll-sens-${curve.kind} ll-sens-method-${curve.method}`)
      .attr('data-kind', curve.kind);
    group.append('path').attr('d', path([...curve.points]) ?? '');
    const title = (p: CurvePoint) =>
      `${labelOf.get(p.key)}: ${curve.kind === 'measured' ? `output deviation (${result.metric})` : 'proxy, weight error'} ${formatSensitivity(p.value)}${isZero(p.value) ? ' (drawn on the axis: a log scale has no 0)' : ''}`;
    group
      .selectAll('circle')
      .data(curve.points.filter((p) => !isZero(p.value)))
      .join('circle')
      .attr('cx', (p) => x(p.key) ?? 0)
      .attr('cy', (p) => yOf(p.value))
      .attr('r', curve.kind === 'measured' ? 3.5 : 2.5)
      .append('title')
      .text(title);
    // A zero: a diamond on the x axis, next to the axis's "0".
    group
      .selectAll('path.ll-sens-zero')
      .data(curve.points.filter((p) => isZero(p.value)))
      .join('path')
      .attr('class', 'll-sens-zero')
      .attr('data-testid', 'sens-zero')
      .attr('d', 'M0,-5L5,0L0,5L-5,0Z')
      .attr('transform', (p) => `translate(${x(p.key) ?? 0},${axisY})`)
      .append('title')
      .text(title);
  }
}

/** What the curve styles mean. */
export function curvesLegend(result: SensitivityResult): HTMLElement {
  const measured = result.layers.some((layer) => layer.measured);
  return element('div', { className: 'll-sens-legend' }, [
    measured
      ? element('span', {
          className: 'll-sens-key ll-sens-key-measured',
          text: `measured output deviation (${result.metric})`,
        })
      : null,
    element('span', {
      className: 'll-sens-key ll-sens-key-proxy',
      text: 'proxy: weight error ‖W − Ŵ‖/‖W‖ (data-free)',
    }),
  ]);
}

/** The swept layers ranked at level `key`, as a horizontal bar chart. */
export function rankingChart(result: SensitivityResult, key: string): HTMLElement {
  const ranked = rankLayers(result, key).filter((layer) => sensitivityAt(layer, key) !== undefined);
  // Shortened over every swept layer, so that twins (an If node's branches) stay apart.
  const short = shortenNames(result.layers.map((layer) => layer.name));
  const shortByIndex = new Map(result.layers.map((layer, i) => [layer.index, short.names[i]!]));
  const bars = ranked.map((layer) => {
    const value = sensitivityAt(layer, key)!;
    return {
      label: layer.name,
      short: shortByIndex.get(layer.index),
      value: Number.isFinite(value) ? value : 0,
      valueText: formatSensitivity(value),
    };
  });
  const level = result.levels.find((l) => l.key === key);
  const measured = result.layers.some((layer) => layer.measured);
  return horizontalBarChart(
    bars,
    `Layers ranked by ${measured ? `measured output deviation (${result.metric})` : 'proxy weight error'} at ${level?.label ?? key}`,
    { labelWidth: RANKING_LABEL_WIDTH, truncateStart: true },
  );
}

/**
 * Heat of each layer at `key` in [0, 1] on a log scale between the smallest positive and
 * the largest value over the layers (0 for a zero value), by tensor index.
 */
export function heatByIndex(result: SensitivityResult, key: string): Map<number, number> {
  const values = new Map<number, number>();
  for (const layer of result.layers) {
    const value = sensitivityAt(layer, key);
    if (value !== undefined) values.set(layer.index, value);
  }
  const positive = [...values.values()].filter((v) => v > 0 && Number.isFinite(v));
  const low = Math.log10(Math.min(...positive));
  const high = Math.log10(Math.max(...positive));
  const heat = new Map<number, number>();
  for (const [index, value] of values) {
    if (!(value > 0)) heat.set(index, 0);
    else if (!Number.isFinite(value)) heat.set(index, 1);
    else heat.set(index, high > low ? 0.1 + (0.9 * (Math.log10(value) - low)) / (high - low) : 1);
  }
  return heat;
}

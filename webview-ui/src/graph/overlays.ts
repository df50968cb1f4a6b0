/**
 * Overlays of the graph and the treemap: one number per tensor from the rows the table
 * already holds (sizes, statistics, spectral metrics, sensitivity), aggregated over a node's
 * or a group's tensors, and a colour scale with its legend.
 */
import {
  color,
  interpolateOranges,
  interpolateViridis,
  scaleSequential,
  scaleSequentialLog,
  schemeTableau10,
} from 'd3';
import {
  formatBytes,
  formatCompactCount,
  formatPercent,
  formatStat,
} from '../../../src/shared/format';
import type { GraphItemKey } from '../../../src/shared/graph';
import { element } from '../platform/dom';
import type { TensorRow } from '../table/tensorRows';
import { planCategories, planMethodOf } from './planMethods';
import { reportErrorOf } from './reportErrors';
import {
  hasStructureDiff,
  structureCategories,
  structureColours,
  structureCounts,
  structureKindOf,
  structureNote,
} from './structureDiff';

export type OverlayId =
  | 'none'
  | 'params'
  | 'bytes'
  | 'sparsity'
  | 'std'
  | 'nanInf'
  | 'stableRank'
  | 'alpha'
  | 'sensitivity'
  | 'reportError'
  | 'planMethod'
  | 'structureDiff';

/**
 * How a node's or a group's value comes from its tensors' values; `category`: the one
 * category all of them share, or MIXED.
 */
type Aggregate = 'sum' | 'max' | 'weighted-mean' | 'category';

/** The value of a group whose tensors fall in different categories. */
export const MIXED = -1;
const MIXED_COLOUR = '#8c8c8c';

export interface OverlayMetric {
  readonly id: OverlayId;
  readonly label: string;
  readonly aggregate: Aggregate;
  /** Sizes span orders of magnitude: a log scale. */
  readonly log: boolean;
  value(row: TensorRow): number | null;
  format(value: number): string;
  /** A categorical overlay: its values index these names (colours from a categorical scheme). */
  categories?(): readonly string[];
  /** A categorical overlay's own colours (by value), its count per category and a note. */
  colours?(): readonly string[];
  counts?(): readonly number[];
  note?(): string;
  /** An overlay of the graph's items themselves (not of their tensors): an item's value. */
  item?(key: GraphItemKey): number | null;
  /** Whether the overlay has anything to show yet (the lists offer it only then). */
  available?(): boolean;
}

const stat = (pick: (row: TensorRow) => number | null | undefined) => (row: TensorRow) =>
  pick(row) ?? null;

let sensitivityOffered = true;

/** Whether the model can be swept (a packed one cannot): the Sensitivity overlay needs it. */
export function offerSensitivityOverlay(offered: boolean): void {
  sensitivityOffered = offered;
}

/** Whether a list offers the overlay now (an overlay without `available` always has one). */
export function overlayOffered(overlay: OverlayMetric): boolean {
  return overlay.available?.() ?? true;
}

export const OVERLAYS: readonly OverlayMetric[] = [
  { id: 'none', label: 'None', aggregate: 'max', log: false, value: () => null, format: String },
  {
    id: 'params',
    label: 'Parameters',
    aggregate: 'sum',
    log: true,
    value: (row) => row.info.parameterCount,
    format: formatCompactCount,
  },
  {
    id: 'bytes',
    label: 'Bytes',
    aggregate: 'sum',
    log: true,
    value: (row) => row.info.byteLength,
    format: formatBytes,
  },
  {
    id: 'sparsity',
    label: 'Sparsity',
    aggregate: 'weighted-mean',
    log: false,
    value: stat((row) => row.stats?.sparsity),
    format: formatPercent,
  },
  {
    id: 'std',
    label: 'Std',
    aggregate: 'max',
    log: false,
    value: stat((row) => row.stats?.std),
    format: (v) => formatStat(v),
  },
  {
    id: 'nanInf',
    label: 'NaN/Inf share',
    aggregate: 'weighted-mean',
    log: false,
    value: stat((row) =>
      row.stats && row.stats.count > 0
        ? (row.stats.nanCount + row.stats.infCount) / row.stats.count
        : null,
    ),
    format: formatPercent,
  },
  {
    id: 'stableRank',
    label: 'Stable rank',
    aggregate: 'max',
    log: false,
    value: stat((row) => row.spectrum?.stableRank),
    format: (v) => formatStat(v, 3),
  },
  {
    id: 'alpha',
    label: 'Power-law α',
    aggregate: 'max',
    log: false,
    value: stat((row) => row.spectrum?.alpha),
    format: (v) => formatStat(v, 3),
  },
  {
    id: 'sensitivity',
    label: 'Sensitivity',
    aggregate: 'max',
    log: false,
    value: stat((row) => row.sensitivity?.value),
    format: (v) => formatStat(v, 3),
    available: () => sensitivityOffered,
  },
  {
    id: 'reportError',
    label: 'Report: relative error',
    aggregate: 'max',
    log: false,
    value: stat((row) => reportErrorOf(row.info.name)),
    format: (v) => formatStat(v, 3),
  },
  {
    id: 'planMethod',
    label: 'Plan: method',
    aggregate: 'category',
    log: false,
    value: stat((row) => planMethodOf(row.info.name)),
    format: (v) => (v === MIXED ? 'mixed' : (planCategories()[v] ?? '?')),
    categories: planCategories,
  },
  {
    id: 'structureDiff',
    label: 'Compare: structure',
    aggregate: 'category',
    log: false,
    value: () => null,
    format: (v) => (v === MIXED ? 'mixed' : (structureCategories()[v] ?? '?')),
    categories: structureCategories,
    colours: structureColours,
    counts: structureCounts,
    note: structureNote,
    item: structureKindOf,
    available: hasStructureDiff,
  },
];

export function overlayNamed(id: string): OverlayMetric {
  return OVERLAYS.find((overlay) => overlay.id === id) ?? OVERLAYS[0]!;
}

/** The value of a node or group from its tensors' rows; null when none has one. */
export function aggregateValue(metric: OverlayMetric, rows: readonly TensorRow[]): number | null {
  let result: number | null = null;
  let weight = 0;
  for (const row of rows) {
    const value = metric.value(row);
    if (value === null || !Number.isFinite(value)) continue;
    if (metric.aggregate === 'category')
      result = result === null || result === value ? value : MIXED;
    else if (metric.aggregate === 'sum') result = (result ?? 0) + value;
    else if (metric.aggregate === 'max') result = result === null ? value : Math.max(result, value);
    else {
      const w = Math.max(1, row.info.parameterCount);
      result = ((result ?? 0) * weight + value * w) / (weight + w);
      weight += w;
    }
  }
  return result;
}

/** Which end of the scale a channel uses: the fill (viridis) or the border (oranges). */
export type OverlayChannel = 'fill' | 'border';

/** A colour scale over the values on screen, and its legend. */
export class ColourScale {
  readonly min: number;
  readonly max: number;
  private readonly scale: (value: number) => string;

  constructor(
    readonly metric: OverlayMetric,
    values: readonly number[],
    readonly channel: OverlayChannel,
  ) {
    const categories = metric.categories?.();
    if (categories) {
      this.min = 0;
      this.max = Math.max(0, categories.length - 1);
      const own = metric.colours?.() ?? [];
      this.scale = (value) =>
        value === MIXED
          ? MIXED_COLOUR
          : (own[value] ?? schemeTableau10[value % schemeTableau10.length]!);
      return;
    }
    const finite = values.filter((v) => Number.isFinite(v) && (!metric.log || v > 0));
    this.min = finite.length ? Math.min(...finite) : 0;
    this.max = finite.length ? Math.max(...finite) : 1;
    const interpolator =
      channel === 'fill' ? interpolateViridis : (t: number) => interpolateOranges(0.25 + 0.75 * t);
    const hi = this.max > this.min ? this.max : this.min + (metric.log ? this.min || 1 : 1);
    const lo = metric.log ? Math.max(this.min, Number.MIN_VALUE) : this.min;
    const scale = metric.log
      ? scaleSequentialLog(interpolator).domain([lo, hi])
      : scaleSequential(interpolator).domain([lo, hi]);
    scale.clamp(true);
    this.scale = (value) => hexColour(scale(value));
  }

  colour(value: number): string {
    return this.scale(value);
  }

  /**
   * The legend: the metric, a gradient from min to max, and the two ends' values; for a
   * categorical overlay, a swatch per category.
   */
  legend(): HTMLElement {
    const what = this.channel === 'fill' ? 'Fill' : 'Border';
    const categories = this.metric.categories?.();
    if (categories) return this.categoryLegend(what, categories);
    const canvas = element('canvas', {
      className: 'll-legend-gradient',
      attrs: { width: 160, height: 10, 'aria-hidden': 'true' },
    });
    const context = canvas.getContext('2d');
    if (context) {
      for (let x = 0; x < 160; x++) {
        const t = x / 159;
        const value = this.metric.log
          ? Math.exp(
              Math.log(Math.max(this.min, Number.MIN_VALUE)) * (1 - t) +
                Math.log(Math.max(this.max, Number.MIN_VALUE)) * t,
            )
          : this.min + (this.max - this.min) * t;
        context.fillStyle = this.colour(value);
        context.fillRect(x, 0, 1, 10);
      }
    }
    const aggregate = {
      sum: 'sum',
      max: 'max',
      'weighted-mean': 'mean',
      category: 'shared category',
    }[this.metric.aggregate];
    return element(
      'div',
      {
        className: 'll-legend',
        attrs: {
          'data-testid': `legend-${this.channel}`,
          'data-metric': this.metric.id,
          'data-min': this.min,
          'data-max': this.max,
          'data-min-colour': this.colour(this.min),
          'data-max-colour': this.colour(this.max),
          title: `${what}: ${this.metric.label}${this.metric.log ? ' (log scale)' : ''}; groups show the ${aggregate} of their tensors`,
        },
      },
      [
        element('span', { className: 'll-legend-title', text: `${what}: ${this.metric.label}` }),
        element('span', { className: 'll-legend-value', text: this.metric.format(this.min) }),
        canvas,
        element('span', { className: 'll-legend-value', text: this.metric.format(this.max) }),
      ],
    );
  }

  private categoryLegend(what: string, categories: readonly string[]): HTMLElement {
    const counts = this.metric.counts?.();
    const note = this.metric.note?.();
    const swatch = (name: string, value: number) => {
      const count = counts?.[value];
      const colour = this.colour(value);
      const chip = element('span', {
        className: 'll-legend-swatch',
        attrs: { 'aria-hidden': 'true' },
      });
      // A CSSOM property, not a style attribute: the page's CSP allows no inline styles.
      chip.style.backgroundColor = colour;
      return element(
        'span',
        {
          className: 'll-legend-category',
          attrs: {
            'data-category': name,
            'data-colour': colour,
            ...(count === undefined ? {} : { 'data-count': count }),
          },
        },
        [chip, count === undefined ? name : `${name} ${formatCompactCount(count)}`],
      );
    };
    return element(
      'div',
      {
        className: 'll-legend',
        attrs: {
          'data-testid': `legend-${this.channel}`,
          'data-metric': this.metric.id,
          title: `${what}: ${this.metric.label}; a group whose ${this.metric.item ? 'nodes changed in different ways' : 'tensors differ'} is "mixed"`,
        },
      },
      [
        element('span', { className: 'll-legend-title', text: `${what}: ${this.metric.label}` }),
        ...(categories.length === 0
          ? [element('span', { className: 'll-legend-value', text: 'no plan' })]
          : [...categories.map((name, i) => swatch(name, i)), swatch('mixed', MIXED)]),
        ...(note
          ? [
              element('span', {
                className: 'll-legend-value',
                text: note,
                attrs: { 'data-testid': 'legend-note' },
              }),
            ]
          : []),
      ],
    );
  }
}

/** `#rrggbb` from a CSS colour d3 returns (`rgb(r, g, b)`). */
export function hexColour(css: string): string {
  return color(css)?.formatHex() ?? css;
}

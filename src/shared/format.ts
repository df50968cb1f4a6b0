/** Number, size and shape formatting shared by the CLI and the webview, in one fixed locale. */

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB" (powers of 1024, as file managers show sizes). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${BYTE_UNITS[unit]}`;
}

/** Placeholder for a value that is missing or not yet known. */
export const MISSING = '—';

/** Made once: the table formats counts for every row it draws. */
const groupedInteger = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** An exact count with grouped digits: `309,633`. */
export function formatCount(value: number): string {
  return groupedInteger.format(value);
}

const COMPACT_UNITS: readonly (readonly [number, string])[] = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'K'],
];

/** A short count for headlines: `1.23M`, `310K`, `100K`, `42`. */
export function formatCompactCount(value: number): string {
  const magnitude = Math.abs(value);
  for (const [size, suffix] of COMPACT_UNITS) {
    // Three significant digits can round up into the next unit: 999,999 is 1M, not 1000K.
    if (magnitude >= size * 0.9995) return `${Number((value / size).toPrecision(3))}${suffix}`;
  }
  return formatCount(value);
}

/**
 * A statistic (mean, std, min…) with `digits` significant digits, in exponent form when
 * very small or large: `0.2248`, `-1.234e-5`.
 */
export function formatStat(value: number | null, digits = 4): string {
  if (value === null) return MISSING;
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude < 1e-3 || magnitude >= 1e6)
    return value.toExponential(digits - 1).replace('e+', 'e');
  return String(Number(value.toPrecision(digits)));
}

/** A fraction as a percentage: `12.5%`; tiny non-zero fractions stay visible as `<0.1%`. */
export function formatPercent(fraction: number): string {
  if (fraction > 0 && fraction < 0.0005) return '<0.1%';
  return `${(fraction * 100).toFixed(1)}%`;
}

export function formatShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((dim) => dim ?? '?').join(', ')}]`;
}

/** `1.2 MB → 300 KB (4.0× smaller)`: a size change as every report and message shows it. */
export function formatSizeChange(before: number, after: number): string {
  const ratio = formatRatio(before, after);
  return `${formatBytes(before)} → ${formatBytes(after)}${ratio ? ` (${ratio})` : ''}`;
}

/** Below this relative change a size reads "unchanged". */
const UNCHANGED_FRACTION = 0.0005;
/** Below this factor a change reads as a percentage ("3.2% smaller"), not "1.0× smaller". */
const FACTOR_FROM = 1.1;

/**
 * How a size changed, in words, one rule for every report and picker: "4.0× smaller",
 * "2.5× larger", "3.2% smaller" for small changes, "unchanged" (never "1× smaller").
 * Empty when either size is not positive.
 */
export function formatRatio(before: number, after: number): string {
  if (!(before > 0) || !(after > 0)) return '';
  const change = after / before - 1;
  if (Math.abs(change) < UNCHANGED_FRACTION) return 'unchanged';
  const factor = before >= after ? before / after : after / before;
  const direction = before >= after ? 'smaller' : 'larger';
  if (factor < FACTOR_FROM) return `${formatPercent(Math.abs(change))} ${direction}`;
  return `${factor.toFixed(1)}× ${direction}`;
}

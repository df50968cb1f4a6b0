/** Number formatting shared by the CLI and the webview. */

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

/** 309633 → "309,633". */
export function formatInteger(value: number): string {
  return value.toLocaleString('en-US');
}

/** 1234567 → "1.23M": parameter counts as papers write them. */
export function formatCompact(value: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size)
      return `${(value / size).toPrecision(3).replace(/\.?0+$/, '')}${suffix}`;
  }
  return String(value);
}

/** A number for a table cell: short, with an exponent where fixed notation would be long. */
export function formatValue(value: number | null): string {
  if (value === null) return '—';
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-3 ? value.toExponential(2) : value.toPrecision(4);
}

export function formatShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((dim) => dim ?? '?').join(', ')}]`;
}

/** The heatmap's colour scales: 256-entry tables running through VS Code theme colours. */
import { color, interpolateRgbBasis } from 'd3';

export function cssVariable(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** 256 RGBA entries running through the theme colours `variables`. */
export function colourTable(variables: readonly string[]): Uint8ClampedArray {
  const fallback = cssVariable('--vscode-editor-foreground') || 'gray';
  const stops = variables.map((name) => cssVariable(name) || fallback);
  const interpolate = interpolateRgbBasis(stops);
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const rgb = color(interpolate(i / 255))?.rgb();
    table[i * 4] = rgb?.r ?? 128;
    table[i * 4 + 1] = rgb?.g ?? 128;
    table[i * 4 + 2] = rgb?.b ?? 128;
    table[i * 4 + 3] = 255;
  }
  return table;
}

/**
 * A heatmap tile's pixels in its layer's colours: the colour scale of each layer (theme
 * colours, log or linear range) and the painting of one tile onto a canvas. Shared by the
 * editor's heatmap panel and the Compare panel's |ΔW| heatmap.
 */
import type { HeatmapInfo, HeatmapLayer } from '../../../../src/shared/heatmap';

/** The magnitude scale spans at most this ratio below the largest |w|. */
const LOG_DECADES_SHOWN = 1e-4;

/** What of a heatmap's info its colours depend on. */
export type ColourScale = Pick<HeatmapInfo, 'layer' | 'scale' | 'min' | 'max'>;

/** Theme colours each layer's scale runs through, low to high (CSS variables of VS Code's theme). */
export const LAYER_COLOURS: Readonly<Record<HeatmapLayer['kind'], readonly string[]>> = {
  magnitude: ['--vscode-editor-background', '--vscode-charts-blue', '--vscode-charts-yellow'],
  zeros: ['--vscode-editor-background', '--vscode-charts-green'],
  nm: ['--vscode-editor-background', '--vscode-charts-red'],
  int4: ['--vscode-editor-background', '--vscode-charts-purple', '--vscode-charts-red'],
};

/** The values at the two ends of the layer's colour scale. */
export function legendRange(info: ColourScale): [number, number] {
  if (info.layer.kind === 'zeros' || info.layer.kind === 'nm') return [0, 1];
  if (info.layer.kind === 'int4') return [0, info.max > 0 ? info.max : 1];
  // Four decades below the largest magnitude: tinier values share the lowest colour.
  const high = Math.max(info.max, 1e-30);
  return [Math.max(info.min > 0 ? info.min : 0, high * LOG_DECADES_SHOWN), high];
}

/** Where a value falls on the layer's colour scale, 0…1. */
export function colourPosition(info: ColourScale): (value: number) => number {
  const [low, high] = legendRange(info);
  if (info.scale === 'log') {
    const logLow = Math.log10(low);
    const range = Math.max(1e-9, Math.log10(high) - logLow);
    return (value) =>
      value > 0 ? Math.min(1, Math.max(0, (Math.log10(value) - logLow) / range)) : 0;
  }
  return (value) => Math.min(1, Math.max(0, (value - low) / (high - low)));
}

/**
 * A tile's pixels (`values`, row by row) in the colours of `table` (colours.ts), on a
 * canvas of the tile's own size; NaN pixels stay transparent.
 */
export function paintTile(
  tile: { readonly width: number; readonly height: number },
  values: Float32Array,
  info: ColourScale,
  table: Uint8ClampedArray,
): HTMLCanvasElement {
  const image = document.createElement('canvas');
  image.width = Math.max(1, tile.width);
  image.height = Math.max(1, tile.height);
  const context = image.getContext('2d')!;
  const pixels = context.createImageData(image.width, image.height);
  const position = colourPosition(info);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isNaN(value)) continue;
    const entry = Math.round(position(value) * 255) * 4;
    pixels.data[i * 4] = table[entry]!;
    pixels.data[i * 4 + 1] = table[entry + 1]!;
    pixels.data[i * 4 + 2] = table[entry + 2]!;
    pixels.data[i * 4 + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  return image;
}

/** A `width` × 10 strip of the colour table, low to high, for a legend. */
export function legendGradient(table: Uint8ClampedArray, width: number): HTMLCanvasElement {
  const gradient = document.createElement('canvas');
  gradient.className = 'll-legend-gradient';
  gradient.width = width;
  gradient.height = 10;
  const context = gradient.getContext('2d');
  if (context) {
    for (let x = 0; x < width; x++) {
      const entry = Math.round((x / (width - 1)) * 255) * 4;
      context.fillStyle = `rgb(${table[entry]},${table[entry + 1]},${table[entry + 2]})`;
      context.fillRect(x, 0, 1, 10);
    }
  }
  return gradient;
}

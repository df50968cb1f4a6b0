/**
 * The heatmap's drawn tiles, least recently used first, and the keys that name them: a
 * tile belongs to one tensor and layer (the info key) and one level and place. No DOM: the
 * cached value is whatever the panel draws (a canvas there, anything in tests).
 */
import { heatmapLayerKey, type HeatmapLayer } from '../../../../src/shared/heatmap';

/** Tiles kept drawn off screen (LRU), per panel. */
export const TILE_CACHE_SIZE = 192;

/** Names one tensor's heatmap in one layer (the layer's parameters included). */
export function heatmapInfoKey(index: number, layer: HeatmapLayer): string {
  return `${index}|${heatmapLayerKey(layer)}`;
}

/** Names one tile of the heatmap that `infoKey` names. */
export function tileKey(infoKey: string, level: number, tileX: number, tileY: number): string {
  return `${infoKey}|${level}|${tileX}|${tileY}`;
}

/** At most `capacity` entries; adding one more evicts the least recently used. */
export class TileCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(readonly capacity: number = TILE_CACHE_SIZE) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry, now the most recently used. */
  use(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** The entry, leaving the order of use as it is. */
  peek(key: string): T | undefined {
    return this.entries.get(key);
  }

  /** Adds (or replaces, in its place) an entry, then evicts the least recently used beyond capacity. */
  set(key: string, entry: T): void {
    this.entries.set(key, entry);
    while (this.entries.size > this.capacity)
      this.entries.delete(this.entries.keys().next().value as string);
  }

  clear(): void {
    this.entries.clear();
  }

  /** The keys, least recently used first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }
}

/**
 * Heatmap tiles of a large float32 matrix, as the editor asks for them.
 *
 *   node --import tsx bench/heatmap.bench.ts [side]      (default 16384: a 1 GiB matrix)
 *
 * Writes a side × side float32 safetensors file, then through the server core
 * (AnalysisService): the first tile of each layer including the one pass that builds its
 * pyramid, then tiles at every zoom level (a sample of tiles per level, median and
 * slowest). Next to it, the time to read the whole file once, for scale. Target: < 100 ms
 * per tile.
 */
import { open, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnalysisService } from '../src/server/analysisService';
import { ModelService } from '../src/server/modelService';
import { maxHeatmapLevel, tileGrid, type HeatmapLayer } from '../src/shared/heatmap';
import { PYRAMID_MAX_PIXELS, pyramidBaseLevel } from '../src/server/analysis/heatmap';

const side = Number(process.argv[2] ?? 16384);
if (!Number.isInteger(side) || side < 16) {
  console.error('usage: node --import tsx bench/heatmap.bench.ts [side ≥ 16]');
  process.exit(2);
}
const TILES_PER_LEVEL = 8;

/** Writes the matrix band by band (a sparse-ish, structured pattern), never holding it whole. */
async function writeMatrix(file: string): Promise<void> {
  const header = Buffer.from(
    JSON.stringify({
      'w.weight': { dtype: 'F32', shape: [side, side], data_offsets: [0, side * side * 4] },
    }),
  );
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const handle = await open(file, 'w');
  try {
    await handle.write(Buffer.concat([length, header]));
    const bandRows = Math.max(1, Math.floor((4 * 1024 * 1024) / side));
    const band = new Float32Array(bandRows * side);
    let state = 0x2545f491;
    for (let row = 0; row < side; row += bandRows) {
      const rows = Math.min(bandRows, side - row);
      for (let i = 0; i < rows * side; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        const uniform = (state >>> 0) / 2 ** 32;
        const column = i % side;
        // A tenth of the columns pruned, and small values elsewhere rounded to zero.
        band[i] = column % 10 === 3 || uniform < 0.3 ? 0 : (uniform - 0.65) * (1 + (row % 97) / 97);
      }
      await handle.write(new Uint8Array(band.buffer, 0, rows * side * 4));
    }
  } finally {
    await handle.close();
  }
}

function milliseconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells
    .map((cell, i) => (typeof cell === 'number' ? cell.toFixed(1) : cell).padStart(widths[i]!))
    .join('  ');
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-heatmap-bench-'));
  const file = join(folder, 'matrix.safetensors');
  const service = new ModelService({ workerCount: 1 });
  const analysis = new AnalysisService(service);
  try {
    const writeStart = process.hrtime.bigint();
    await writeMatrix(file);
    const bytes = side * side * 4;
    console.log(
      `heatmap tiles of a ${side} × ${side} float32 matrix (${(bytes / 2 ** 30).toFixed(2)} GiB), written in ${(milliseconds(writeStart) / 1000).toFixed(1)} s`,
    );
    const readStart = process.hrtime.bigint();
    const handle = await open(file, 'r');
    const buffer = Buffer.alloc(16 * 1024 * 1024);
    while ((await handle.read(buffer, 0, buffer.length)).bytesRead > 0);
    await handle.close();
    const readMs = milliseconds(readStart);
    const maxLevel = maxHeatmapLevel(side, side);
    const baseLevel = pyramidBaseLevel(side, side, PYRAMID_MAX_PIXELS);
    console.log(
      `levels 0…${maxLevel}; pyramid stored from level ${baseLevel} (finer levels read their rows from the file)`,
    );
    console.log(
      `reference: reading the whole file once (fs, 16 MiB reads) ${readMs.toFixed(0)} ms\n`,
    );

    const widths = [22, 7, 7, 12, 12, 10];
    console.log(row(['layer', 'level', 'tiles', 'median ms', 'slowest ms', 'target'], widths));
    const layers: HeatmapLayer[] = [
      { kind: 'magnitude' },
      { kind: 'zeros' },
      { kind: 'nm', n: 2, m: 4 },
      { kind: 'int4', block: 128 },
    ];
    for (const layer of layers) {
      const name =
        layer.kind === 'nm'
          ? '2:4 violations'
          : layer.kind === 'int4'
            ? 'int4 error /128'
            : layer.kind;
      const first = process.hrtime.bigint();
      await analysis.heatmapInfo(file, 0, layer);
      await analysis.heatmapTile(file, 0, layer, maxLevel, 0, 0);
      console.log(
        row([name, 'first', '1', milliseconds(first), milliseconds(first), 'pyramid'], widths),
      );
      for (let level = maxLevel; level >= 0; level--) {
        const { tilesX, tilesY } = tileGrid(side, side, level);
        const times: number[] = [];
        for (let sample = 0; sample < Math.min(TILES_PER_LEVEL, tilesX * tilesY); sample++) {
          // Spread over the matrix, as panning would ask for them.
          const tileX = (sample * 7 + 3) % tilesX;
          const tileY = (sample * 5 + 1) % tilesY;
          const start = process.hrtime.bigint();
          await analysis.heatmapTile(file, 0, layer, level, tileX, tileY);
          times.push(milliseconds(start));
        }
        const slowest = Math.max(...times);
        console.log(
          row(
            [
              name,
              String(level),
              String(times.length),
              median(times),
              slowest,
              slowest < 100 ? '< 100 ✓' : '< 100 ✗',
            ],
            widths,
          ),
        );
      }
    }
  } finally {
    analysis.dispose();
    service.dispose();
    await rm(folder, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

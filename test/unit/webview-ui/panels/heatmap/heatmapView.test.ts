/**
 * The heatmap panel's DOM-free logic in plain Node: the viewport's zoom, pan, level and
 * visible tiles at known values, the tile cache's keys, hits and eviction order, and the
 * cancellation of superseded requests, whose late answers are not painted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_CELL_PIXELS,
  PAN_STEP_PIXELS,
  Viewport,
  ZOOM_STEP,
  type MatrixGrid,
} from '../../../../../webview-ui/src/panels/heatmap/viewport';
import {
  heatmapInfoKey,
  TILE_CACHE_SIZE,
  TileCache,
  tileKey,
} from '../../../../../webview-ui/src/panels/heatmap/tileCache';
import { LatestRequest, TileRequests } from '../../../../../webview-ui/src/panels/heatmap/requests';

/** Equal up to rounding (and -0 equals 0). */
function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);
}

function viewport(scale: number, offsetX: number, offsetY: number): Viewport {
  const view = new Viewport();
  view.scale = scale;
  view.offsetX = offsetX;
  view.offsetY = offsetY;
  return view;
}

const WIDE: MatrixGrid = { rows: 512, cols: 2048, tileSize: 256, maxLevel: 3 };
const SQUARE: MatrixGrid = { rows: 2048, cols: 2048, tileSize: 256, maxLevel: 3 };

describe('heatmap viewport', () => {
  test('fit: the whole matrix, centred, limited by the tighter side', () => {
    const view = new Viewport();
    view.fit(WIDE, 1024, 380);
    assert.equal(view.scale, 0.5);
    near(view.offsetX, 0, 'offsetX');
    // 380 px show 760 rows: 124 empty rows above and below the 512.
    near(view.offsetY, -124, 'offsetY');
  });

  test('fit: a tiny matrix stops at MAX_CELL_PIXELS per cell', () => {
    const view = new Viewport();
    view.fit({ rows: 4, cols: 8, tileSize: 256, maxLevel: 0 }, 1024, 380);
    assert.equal(MAX_CELL_PIXELS, 32);
    assert.equal(view.scale, 32);
    near(view.offsetX, -12, 'offsetX');
    near(view.offsetY, -3.9375, 'offsetY');
  });

  test('level: the coarsest level whose pixels are not smaller than a screen pixel, clamped', () => {
    assert.equal(viewport(1, 0, 0).level(3), 0);
    assert.equal(viewport(4, 0, 0).level(3), 0);
    assert.equal(viewport(0.5, 0, 0).level(3), 1);
    assert.equal(viewport(0.3, 0, 0).level(3), 1);
    assert.equal(viewport(0.25, 0, 0).level(3), 2);
    assert.equal(viewport(1 / 64, 0, 0).level(3), 3);
    assert.equal(viewport(1 / 64, 0, 0).level(6), 6);
  });

  test('zoomAt keeps the matrix point under the pointer in place', () => {
    const view = viewport(0.5, 0, -124);
    view.zoomAt(WIDE, 2, 512, 190, 1024, 380);
    assert.equal(view.scale, 1);
    assert.equal(view.offsetX, 512);
    assert.equal(view.offsetY, 66);
    // The cell under (512, 190) before: 0 + 512 / 0.5 = 1024, -124 + 190 / 0.5 = 256.
    assert.equal(view.offsetX + 512 / view.scale, 1024);
    assert.equal(view.offsetY + 190 / view.scale, 256);
    view.zoomAt(WIDE, ZOOM_STEP, 0, 0, 1024, 380);
    assert.equal(view.scale, 1.5);
    assert.equal(view.offsetX, 512);
  });

  test('zoomAt stays between half the fitted scale (at most 1) and MAX_CELL_PIXELS', () => {
    const view = viewport(0.5, 0, -124);
    view.zoomAt(WIDE, 1 / 100, 0, 0, 1024, 380);
    assert.equal(view.scale, 0.25);
    view.zoomAt(WIDE, 1000, 0, 0, 1024, 380);
    assert.equal(view.scale, MAX_CELL_PIXELS);
    // A matrix that fits at 4 px per cell may still zoom out to 1 px per cell.
    const small = viewport(4, 0, 0);
    small.zoomAt({ rows: 64, cols: 64, tileSize: 256, maxLevel: 0 }, 1 / 100, 0, 0, 256, 256);
    assert.equal(small.scale, 1);
  });

  test('panSteps moves by PAN_STEP_PIXELS screen pixels, in cells', () => {
    const view = viewport(0.5, 10, 20);
    view.panSteps(1, 0);
    assert.equal(view.offsetX, 10 + PAN_STEP_PIXELS * 2);
    assert.equal(view.offsetY, 20);
    view.panSteps(0, -1);
    assert.equal(view.offsetY, 20 - PAN_STEP_PIXELS * 2);
    view.panSteps(-1, 0);
    assert.equal(view.offsetX, 10);
  });

  test('dragTo moves the matrix with the pointer, relative to where the drag started', () => {
    const view = viewport(2, 512, 66);
    const drag = view.startDrag(100, 100);
    view.dragTo(drag, 150, 80);
    assert.equal(view.offsetX, 512 - 25);
    assert.equal(view.offsetY, 66 + 10);
    view.dragTo(drag, 160, 100);
    assert.equal(view.offsetX, 512 - 30);
    assert.equal(view.offsetY, 66);
  });

  test('visibleTiles: the tiles of the current level in view, row by row', () => {
    assert.deepEqual(viewport(1, 300, 100).visibleTiles(SQUARE, 600, 380), {
      level: 0,
      tiles: [
        { tileX: 1, tileY: 0 },
        { tileX: 2, tileY: 0 },
        { tileX: 3, tileY: 0 },
        { tileX: 1, tileY: 1 },
        { tileX: 2, tileY: 1 },
        { tileX: 3, tileY: 1 },
      ],
    });
    // Level 2 tiles span 1024 cells: the 2048² matrix is 2 × 2 of them, all in view.
    assert.deepEqual(viewport(0.25, 0, 0).visibleTiles(SQUARE, 600, 380), {
      level: 2,
      tiles: [
        { tileX: 0, tileY: 0 },
        { tileX: 1, tileY: 0 },
        { tileX: 0, tileY: 1 },
        { tileX: 1, tileY: 1 },
      ],
    });
  });

  test('visibleTiles: none beyond the matrix; the view left of it starts at column 0', () => {
    assert.deepEqual(viewport(1, -500, -100).visibleTiles(SQUARE, 600, 380).tiles, [
      { tileX: 0, tileY: 0 },
      { tileX: 0, tileY: 1 },
    ]);
    assert.deepEqual(viewport(1, -500, -500).visibleTiles(SQUARE, 600, 380).tiles, []);
    assert.deepEqual(viewport(1, 1900, 1900).visibleTiles(SQUARE, 600, 380).tiles, [
      { tileX: 7, tileY: 7 },
    ]);
  });

  test('tileRect and matrixRect: where tiles and the matrix land on the canvas', () => {
    assert.deepEqual(viewport(2, 10, 20).tileRect(256, 1, 1, 0, 100, 50), {
      x: 1004,
      y: -40,
      width: 400,
      height: 200,
    });
    assert.deepEqual(viewport(0.5, -10, -4).matrixRect(WIDE), {
      x: 5.5,
      y: 2.5,
      width: 1024,
      height: 256,
    });
  });

  test('locate: the cell, pixel and tile under a point; null off the matrix', () => {
    const view = viewport(0.5, 100, 200);
    assert.deepEqual(view.locate(SQUARE, 30, 41), {
      cellX: 160,
      cellY: 282,
      level: 1,
      span: 2,
      pixelX: 80,
      pixelY: 141,
      tileX: 0,
      tileY: 0,
      inTileX: 80,
      inTileY: 141,
    });
    const far = view.locate(SQUARE, 600, 0);
    assert.equal(far?.cellX, 1300);
    assert.equal(far?.pixelX, 650);
    assert.equal(far?.tileX, 2);
    assert.equal(far?.inTileX, 138);
    assert.equal(viewport(1, -5, 0).locate(SQUARE, 4, 0), null);
    assert.equal(viewport(1, 2040, 0).locate(SQUARE, 8, 0), null);
    assert.equal(viewport(1, 2040, 0).locate(SQUARE, 7, 0)?.cellX, 2047);
  });
});

describe('heatmap tile cache', () => {
  test('keys name the tensor, the layer with its parameters, the level and the place', () => {
    assert.equal(heatmapInfoKey(3, { kind: 'magnitude' }), '3|magnitude');
    assert.equal(heatmapInfoKey(3, { kind: 'int4', block: 32 }), '3|int4/32');
    assert.notEqual(
      heatmapInfoKey(3, { kind: 'int4', block: 32 }),
      heatmapInfoKey(3, { kind: 'int4', block: 128 }),
    );
    assert.equal(heatmapInfoKey(4, { kind: 'nm', n: 2, m: 4 }), '4|nm2:4');
    assert.equal(tileKey('3|int4/32', 2, 5, 7), '3|int4/32|2|5|7');
    assert.notEqual(tileKey('3|zeros', 1, 5, 7), tileKey('3|zeros', 1, 7, 5));
  });

  test('hits return the entry; misses are undefined', () => {
    const cache = new TileCache<string>(4);
    assert.equal(TILE_CACHE_SIZE, 192);
    assert.equal(new TileCache<string>().capacity, TILE_CACHE_SIZE);
    cache.set('a', 'tile a');
    assert.equal(cache.use('a'), 'tile a');
    assert.equal(cache.peek('a'), 'tile a');
    assert.equal(cache.use('b'), undefined);
    assert.equal(cache.peek('b'), undefined);
    assert.equal(cache.size, 1);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.use('a'), undefined);
  });

  test('over capacity the least recently used goes; use refreshes, peek does not', () => {
    const cache = new TileCache<number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    assert.deepEqual(cache.keys(), ['a', 'b', 'c']);
    cache.use('a');
    assert.deepEqual(cache.keys(), ['b', 'c', 'a']);
    cache.set('d', 4);
    assert.deepEqual(cache.keys(), ['c', 'a', 'd']);
    assert.equal(cache.peek('b'), undefined);
    cache.peek('c');
    cache.set('e', 5);
    assert.deepEqual(cache.keys(), ['a', 'd', 'e']);
    // Replacing an entry keeps its place in the order.
    cache.set('a', 10);
    assert.deepEqual(cache.keys(), ['a', 'd', 'e']);
    assert.equal(cache.peek('a'), 10);
  });
});

/** A promise settled by hand. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

/** Lets settled promises run their callbacks. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Starts and tracks a request for `key`; records what reached the handlers. */
function request(requests: TileRequests, key: string) {
  const controller = requests.start(key);
  assert.ok(controller, `a request for ${key} starts`);
  const answer = deferred<string>();
  const painted: string[] = [];
  const errors: unknown[] = [];
  requests.track(key, controller, answer.promise, {
    onTile: (tile) => painted.push(tile),
    onError: (error) => errors.push(error),
  });
  return { controller, answer, painted, errors };
}

describe('heatmap request cancellation', () => {
  test('a newer info request cancels the one before it, whose answer is then unused', () => {
    const latest = new LatestRequest();
    const first = latest.start();
    const second = latest.start();
    assert.equal(first.signal.aborted, true);
    assert.equal(second.signal.aborted, false);
    assert.equal(latest.finish(first), false);
    assert.equal(latest.finish(second), true);
    // Finished: cancelling now reaches no request.
    latest.cancel();
    assert.equal(second.signal.aborted, false);
    const third = latest.start();
    latest.cancel();
    assert.equal(third.signal.aborted, true);
  });

  test('one request per tile key at a time; each start is counted', () => {
    const requests = new TileRequests();
    assert.ok(requests.start('k1'));
    assert.equal(requests.start('k1'), null);
    assert.ok(requests.start('k2'));
    assert.equal(requests.started, 2);
    assert.deepEqual(requests.keys(), ['k1', 'k2']);
  });

  test('a wanted tile is painted and is no longer in flight', async () => {
    const requests = new TileRequests();
    const tile = request(requests, 'k1');
    tile.answer.resolve('tile 1');
    await settle();
    assert.deepEqual(tile.painted, ['tile 1']);
    assert.deepEqual(requests.keys(), []);
    assert.ok(requests.start('k1'), 'the key may be requested again');
  });

  test('tiles that left the view are cancelled, and their late answers are not painted', async () => {
    const requests = new TileRequests();
    const gone = request(requests, 'k1');
    const kept = request(requests, 'k2');
    const wanted = new Set(['k2']);
    requests.cancelWhere((key) => !wanted.has(key));
    assert.equal(gone.controller.signal.aborted, true);
    assert.equal(kept.controller.signal.aborted, false);
    assert.deepEqual(requests.keys(), ['k2']);
    gone.answer.resolve('stale tile');
    kept.answer.resolve('tile 2');
    await settle();
    assert.deepEqual(gone.painted, []);
    assert.deepEqual(kept.painted, ['tile 2']);
  });

  test('a stale answer neither paints nor ends the newer request for the same key', async () => {
    const requests = new TileRequests();
    const old = request(requests, 'k1');
    requests.cancelWhere(() => true);
    const fresh = request(requests, 'k1');
    assert.notEqual(fresh.controller, old.controller);
    assert.equal(requests.started, 2);
    old.answer.resolve('old tile');
    await settle();
    assert.deepEqual(old.painted, []);
    assert.deepEqual(requests.keys(), ['k1'], 'the newer request is still in flight');
    assert.equal(requests.start('k1'), null);
    fresh.answer.resolve('new tile');
    await settle();
    assert.deepEqual(fresh.painted, ['new tile']);
  });

  test('after a reset (another tensor or layer) no earlier answer is painted', async () => {
    const requests = new TileRequests();
    const before = request(requests, 'k1');
    requests.reset();
    assert.equal(before.controller.signal.aborted, true);
    assert.deepEqual(requests.keys(), []);
    before.answer.resolve('tile of the old layer');
    await settle();
    assert.deepEqual(before.painted, []);
  });

  test('failures of wanted requests are reported; those of cancelled ones are not', async () => {
    const requests = new TileRequests();
    const failing = request(requests, 'k1');
    const cancelled = request(requests, 'k2');
    requests.cancelWhere((key) => key === 'k2');
    failing.answer.reject(new Error('tile failed'));
    cancelled.answer.reject(new Error('cancelled'));
    await settle();
    assert.equal(failing.errors.length, 1);
    assert.match(String(failing.errors[0]), /tile failed/);
    assert.deepEqual(cancelled.errors, []);
    assert.deepEqual(requests.keys(), []);
  });
});

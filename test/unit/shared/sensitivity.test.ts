/** Ranking layers by sensitivity (the Sensitivity tab's chart and the CLI), at known values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  rankLayers,
  sensitivityAt,
  type LayerSensitivity,
  type SensitivityResult,
} from '../../../src/shared/sensitivity';

function layer(
  index: number,
  proxyError: number | null,
  measured?: Record<string, number>,
): LayerSensitivity {
  return {
    index,
    name: `layer${index}`,
    proxy:
      proxyError === null
        ? []
        : [{ key: 'int8', relativeError: proxyError, sqnrDb: -20 * Math.log10(proxyError) }],
    measured:
      measured &&
      Object.entries(measured).map(([key, deviation]) => ({ key, deviation, relativeError: 0.5 })),
  };
}

function result(layers: LayerSensitivity[]): SensitivityResult {
  return {
    source: 'model.onnx',
    levels: [],
    metric: 'relativeL2',
    layers,
    inputs: '',
    backend: '',
    samples: 0,
    runs: 0,
    sessions: 0,
    elapsedMs: 0,
    cached: false,
  };
}

test("a layer's value at a level: measured deviation when measured, else the proxy's error", () => {
  assert.equal(sensitivityAt(layer(0, 0.25), 'int8'), 0.25);
  assert.equal(sensitivityAt(layer(0, 0.25, { int8: 0.01 }), 'int8'), 0.01);
  assert.equal(sensitivityAt(layer(0, 0.25, { 'prune:0.5': 0.2 }), 'int8'), undefined);
  assert.equal(sensitivityAt(layer(0, 0.25), 'int4:32'), undefined);
});

test('layers rank most sensitive first, ties in file order, layers without a value last', () => {
  const ranked = rankLayers(
    result([
      layer(0, 0.9, { int8: 0.1 }),
      layer(1, 0.1, { int8: 0.3 }),
      layer(2, 0.5, { 'prune:0.5': 0.7 }),
      layer(3, null),
      layer(4, 0.2, { int8: 0.3 }),
      layer(5, 0.2),
    ]),
    'int8',
  );
  assert.deepEqual(
    ranked.map((entry) => entry.index),
    [1, 4, 5, 0, 2],
    'layer 3 has no proxy (not swept); layer 2 has no int8 value',
  );
});

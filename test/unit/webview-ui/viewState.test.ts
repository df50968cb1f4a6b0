/** What the panel remembers across reloads, in plain Node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ViewStateStore, type ViewState } from '../../../webview-ui/src/viewState';

test('saved view state: valid fields come back, malformed ones fall back to defaults', () => {
  const written: ViewState[] = [];
  const storage = (saved: unknown) => ({
    getState: () => saved,
    setState: (state: ViewState) => written.push(state),
  });

  const restored = new ViewStateStore(
    storage({
      selectedIndex: 3,
      sort: { column: 'std', direction: 'descending' },
      filter: 'conv',
      scrollTop: 240,
      detailsOpen: true,
      detailTab: 'spectrum',
      modelView: 'graph',
    }),
  );
  assert.deepEqual(restored.state, {
    selectedIndex: 3,
    sort: { column: 'std', direction: 'descending' },
    filter: 'conv',
    scrollTop: 240,
    detailsOpen: true,
    histogramScale: 'linear',
    detailTab: 'spectrum',
    modelView: 'graph',
  });

  const malformed = new ViewStateStore(
    storage({
      selectedIndex: 'x',
      sort: { column: 'weights', direction: 'up' },
      filter: 7,
      histogramScale: 'cubic',
      detailsOpen: 'yes',
      detailTab: 'graph',
      modelView: 'histogram',
    }),
  );
  assert.deepEqual(malformed.state, {
    selectedIndex: null,
    sort: null,
    filter: '',
    scrollTop: 0,
    detailsOpen: false,
    histogramScale: 'linear',
    detailTab: 'histogram',
    modelView: 'table',
  });

  malformed.update({ filter: 'fc' });
  assert.equal(written.at(-1)?.filter, 'fc');
});

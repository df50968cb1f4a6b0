/** What the panel remembers across reloads, in plain Node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ViewStateStore, type ViewState } from '../../../webview-ui/src/viewState';

/** The table's and the split's layout before the user changes it. */
const LAYOUT_DEFAULTS = {
  columnWidths: {},
  hiddenColumns: [],
  tensorView: 'weights',
  groupByModule: false,
  collapsedGroups: [],
  detailWidth: null,
  reportsOpen: true,
} as const;

function storage(saved: unknown, written: ViewState[] = []) {
  return { getState: () => saved, setState: (state: ViewState) => written.push(state) };
}

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
    ...LAYOUT_DEFAULTS,
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
    ...LAYOUT_DEFAULTS,
    modelView: 'table',
  });

  malformed.update({ filter: 'fc' });
  assert.equal(written.at(-1)?.filter, 'fc');
});

test('saved layout: column widths and hidden columns, view, grouping and split width are checked', () => {
  const restored = new ViewStateStore(
    storage({
      columnWidths: { shape: 180, name: 20, nonsense: 100, std: 'wide', mean: 5000 },
      hiddenColumns: ['mean', 'name', 'nonsense', 'alpha'],
      tensorView: 'all',
      groupByModule: true,
      collapsedGroups: ['encoder.0', 7],
      detailWidth: 520,
      reportsOpen: false,
    }),
  );
  const state = restored.state;
  // Widths outside [MIN_COLUMN_WIDTH, MAX_COLUMN_WIDTH] and unknown columns are dropped;
  // the name column cannot be hidden.
  assert.deepEqual(state.columnWidths, { shape: 180 });
  assert.deepEqual(state.hiddenColumns, ['mean', 'alpha']);
  assert.equal(state.tensorView, 'all');
  assert.equal(state.groupByModule, true);
  assert.deepEqual(state.collapsedGroups, ['encoder.0']);
  assert.equal(state.detailWidth, 520);
  assert.equal(state.reportsOpen, false);

  const bad = new ViewStateStore(
    storage({ tensorView: 'some', detailWidth: 10, groupByModule: 'yes', columnWidths: null }),
  );
  assert.equal(bad.state.tensorView, 'weights');
  assert.equal(bad.state.detailWidth, null);
  assert.equal(bad.state.groupByModule, false);
  assert.deepEqual(bad.state.columnWidths, {});
});

/**
 * Entry point of a shared HTML report (`layerlens report`): the model editor's own view
 * (App) and, when two models were compared, the diff editor's view (DiffView), both fed
 * from the data embedded in the page instead of the LayerLens server.
 */
import { REPORT_DATA_ELEMENT_ID, type ReportData } from '../../../src/shared/report';
import { App } from '../app';
import { DiffView } from '../diff/diffView';
import { ModelApi } from '../platform/api';
import { element } from '../platform/dom';
import { ViewStateStore, type ViewState } from '../viewState';
import { StaticHost } from './staticHost';

function mount(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`LayerLens report: the page has no #${id} element`);
  return node;
}

function readData(): ReportData {
  const text = mount(REPORT_DATA_ELEMENT_ID).textContent ?? '';
  const data = JSON.parse(text) as ReportData;
  if (data.version !== 1) throw new Error(`LayerLens report: unknown data version ${data.version}`);
  return data;
}

function renderHeader(data: ReportData): HTMLElement {
  const compared = data.comparison?.diff.b.path;
  return element(
    'header',
    { className: 'll-report-header', attrs: { 'data-testid': 'report-header' } },
    [
      element('h1', { text: `LayerLens report: ${data.model.summary.fileName}` }),
      element('p', {
        className: 'll-report-source',
        text: `${data.model.file}${compared ? ` compared with ${compared}` : ''} · written ${data.createdAt} by layerlens report`,
      }),
      data.omitted.length > 0
        ? element(
            'details',
            { className: 'll-report-omitted', attrs: { 'data-testid': 'report-omitted' } },
            [
              element('summary', { text: 'Not in this report' }),
              element(
                'ul',
                { className: 'll-report-notes' },
                data.omitted.map((note) => element('li', { text: note })),
              ),
            ],
          )
        : null,
    ],
  );
}

function renderComparison(data: ReportData, root: HTMLElement): void {
  const comparison = data.comparison;
  if (!comparison) return;
  const histograms = new Map(comparison.histograms.map((pair) => [pair.indexA, pair]));
  const body = element('div');
  root.replaceChildren(
    element(
      'section',
      { className: 'll-report-compare', attrs: { 'data-testid': 'report-compare' } },
      [element('h2', { text: `Compared with ${comparison.diff.b.path}` }), body],
    ),
  );
  const view: DiffView = new DiffView(body, comparison.diff, (pair) => {
    const found = histograms.get(pair.indexA);
    setTimeout(() =>
      found
        ? view.showHistograms(pair.indexA, found.a, found.b)
        : view.showHistograms(
            pair.indexA,
            null,
            null,
            'This report holds the histograms of the largest tensors only.',
          ),
    );
  });
  view.render();
}

const data = readData();
document.title = `LayerLens report: ${data.model.summary.fileName}`;
mount('report-header').replaceChildren(renderHeader(data));
const host = new StaticHost<ViewState>(data.model);
const api = new ModelApi(host);
host.connect((message) => api.handle(message));
new App(mount('app'), api, new ViewStateStore(host)).start();
renderComparison(data, mount('compare'));

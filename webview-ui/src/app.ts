/**
 * The panel: overview on top, the layer table with the selected tensor's histogram below.
 * Owns one ModelLoader at a time; a reload throws it away and starts a fresh one while
 * keeping what the user chose (selection, sort, filter, scroll position).
 */
import type { RequestError } from '../../src/shared/protocol';
import type { ModelApi } from './api';
import { element } from './dom';
import { formatBytes } from '../../src/shared/format';
import { totalCompressibility } from '../../src/shared/lossless';
import { isDeltaModel, loadCompressibility, loadDeltaStats } from './compressibilityLoader';
import { baseName, renderError } from './errorView';
import { HistogramPanel } from './histogram';
import { LayerTable } from './layerTable';
import { ModelLoader, type LoadProgress } from './modelLoader';
import { renderOverview } from './overview';
import { ProgressBar } from './progress';
import type { TensorRow } from './tensorRows';
import type { ViewStateStore } from './viewState';

type PanelState = 'loading' | 'ready' | 'error';

export class App {
  private readonly banner = element('div', { className: 'll-banner-slot' });
  private readonly overviewSlot = element('div', { className: 'll-overview-slot' });
  private readonly workspace: HTMLElement;
  private readonly table: LayerTable;
  private readonly histogram: HistogramPanel;
  private readonly progress = new ProgressBar();
  private loader: ModelLoader | undefined;
  /** Scroll position to restore once the rows are in (the table is empty before). */
  private pendingScrollTop: number | null = null;
  /** Stops the compressibility requests of the current load. */
  private compressibility = new AbortController();
  private tensorCount = 0;
  private isDelta = false;
  /** The model's packed ratio over all its tensors, once every tensor is measured. */
  private readonly packTotal = element('span', {
    className: 'll-pack-total',
    attrs: { 'data-testid': 'pack-total' },
  });

  constructor(
    private readonly root: HTMLElement,
    private readonly api: ModelApi,
    private readonly store: ViewStateStore,
  ) {
    const saved = store.state;
    this.table = new LayerTable({
      select: (index) => {
        this.store.update({ selectedIndex: index });
        this.showSelected();
      },
      sortChanged: (sort) => this.store.update({ sort }),
      filterChanged: (filter) => this.store.update({ filter }),
      scrolled: (scrollTop) => this.store.update({ scrollTop }),
      activate: () => this.histogram.element.scrollIntoView({ block: 'nearest' }),
    });
    this.table.restore(saved.sort, saved.filter, saved.selectedIndex);
    this.table.toolbar.append(this.progress.element);
    this.table.toolbar.append(this.packTotal);
    this.histogram = new HistogramPanel(saved.histogramScale, (histogramScale) =>
      this.store.update({ histogramScale }),
    );
    this.workspace = element('div', { className: 'll-workspace' }, [
      this.table.element,
      this.histogram.element,
    ]);
  }

  start(): void {
    this.setPanelState('loading');
    this.banner.replaceChildren();
    this.overviewSlot.replaceChildren(
      element('p', { className: 'll-loading', text: 'Reading model…', attrs: { role: 'status' } }),
    );
    this.root.replaceChildren(this.banner, this.overviewSlot, this.workspace);
    this.workspace.hidden = true;
    this.table.reset(0);
    this.histogram.show(undefined);
    this.progress.hide();
    this.pendingScrollTop = this.store.state.scrollTop;

    const loader = new ModelLoader(
      this.api,
      {
        summary: (summary) => {
          this.overviewSlot.replaceChildren(
            renderOverview(summary, {
              open: this.store.state.detailsOpen,
              toggled: (detailsOpen) => this.store.update({ detailsOpen }),
            }),
          );
          this.workspace.hidden = false;
          this.table.showOperatorColumn(summary.format === 'onnx');
          this.table.reset(summary.tensorCount);
          this.tensorCount = summary.tensorCount;
          this.isDelta = isDeltaModel(summary.metadata);
          this.table.element.classList.toggle('ll-delta', this.isDelta);
        },
        rowsAdded: (rows) => {
          this.table.addRows(rows);
          if (this.isSelected(rows)) this.showSelected();
        },
        statsUpdated: (rows) => {
          this.table.statsChanged(rows);
          if (this.isSelected(rows)) this.showSelected();
        },
        progress: (progress) => this.onProgress(progress),
        summaryFailed: (error) => this.showSummaryError(error),
        tensorsFailed: (error) => this.showBanner('Could not read the tensor list', error),
        finished: () => {
          this.progress.hide();
          this.setPanelState('ready');
          this.startCompressibility(loader);
        },
      },
      () => this.priorityIndices(),
    );
    this.loader = loader;
    void loader.run();
  }

  /** Lossless compressibility columns, after the statistics (they decode every tensor). */
  private startCompressibility(loader: ModelLoader): void {
    this.compressibility.abort();
    this.compressibility = new AbortController();
    this.packTotal.textContent = '';
    const rows = Array.from({ length: this.tensorCount }, (_, index) => loader.row(index));
    const signal = this.compressibility.signal;
    const redraw = (updated: readonly TensorRow[]) => this.table.statsChanged(updated);
    void loadCompressibility(this.api, rows, signal, redraw).then(async () => {
      if (signal.aborted) return;
      const measured = rows.flatMap((row) => (row?.compressibility ? [row.compressibility] : []));
      const total = totalCompressibility(measured);
      this.packTotal.textContent = `Packed losslessly: ${total.ratio.toFixed(3)} of ${formatBytes(total.rawBytes)}`;
      this.packTotal.title = `${formatBytes(total.rawBytes)} of tensor data → ${formatBytes(total.packedBytes)} in a .llz`;
      if (this.isDelta && !signal.aborted) await loadDeltaStats(this.api, rows, signal, redraw);
    });
  }

  /** The server restarted or the file changed: fetch everything again. */
  reload(reason: string): void {
    this.compressibility.abort();
    this.loader?.abort();
    this.api.cancelAll(`Reloading: ${reason}`);
    this.start();
  }

  private onProgress({ rowsLoaded, statsSettled, total }: LoadProgress): void {
    this.progress.show('Statistics', statsSettled, total);
    if (rowsLoaded === total && this.pendingScrollTop !== null) {
      this.table.restoreScroll(this.pendingScrollTop);
      this.pendingScrollTop = null;
    }
  }

  /** Statistics for the selected row and the rows in view are fetched before the rest. */
  private priorityIndices(): number[] {
    const selected = this.store.state.selectedIndex;
    const visible = this.table.visibleIndices();
    return selected === null ? visible : [selected, ...visible];
  }

  private isSelected(rows: readonly TensorRow[]): boolean {
    const selected = this.store.state.selectedIndex;
    return selected !== null && rows.some((row) => row.info.index === selected);
  }

  private showSelected(): void {
    const selected = this.store.state.selectedIndex;
    this.histogram.show(selected === null ? undefined : this.loader?.row(selected));
  }

  private showSummaryError(error: RequestError): void {
    const title = error.file ? `Cannot open ${baseName(error.file)}` : 'Cannot open this model';
    this.progress.hide();
    this.root.replaceChildren(renderError(title, error, () => this.reload('retry')));
    this.setPanelState('error');
  }

  private showBanner(title: string, error: RequestError): void {
    this.progress.hide();
    this.banner.replaceChildren(renderError(title, error, () => this.reload('retry')));
    this.setPanelState('error');
  }

  private setPanelState(state: PanelState): void {
    document.body.dataset.state = state;
  }
}

/**
 * The panel: overview on top, then the layer table and the selected tensor's panel side by
 * side (under each other in a narrow window) as a split the user can drag, sized to the
 * window so the panel is in view with the selection; the compression plan and report in
 * their own collapsible area below.
 * Owns one ModelLoader at a time; a reload throws it away and starts a fresh one while
 * keeping what the user chose (selection, sort, filter, scroll position).
 */
import type { CompressionReport } from '../../src/shared/compress';
import type { PlanView } from '../../src/shared/plan';
import type { RequestError } from '../../src/shared/protocol';
import { requestErrorOf, type ModelApi } from './platform/api';
import { element } from './platform/dom';
import { renderCompressionReport } from './reports/compressReport';
import { packEstimateText } from '../../src/shared/lossless';
import { hasGraph } from '../../src/shared/model';
import { isDeltaModel, loadCompressibility, loadDeltaStats } from './loading/compressibilityLoader';
import { baseName, renderError } from './platform/errorView';
import { HistogramPanel } from './panels/histogram';
import { DetailTabs } from './panels/detailTabs';
import { HeatmapPanel } from './panels/heatmap/panel';
import { SpectraLoader } from './loading/spectraLoader';
import { SpectrumPanel } from './panels/spectrumPanel';
import { SensitivityPanel } from './panels/sensitivityPanel';
import { heatByIndex } from './panels/sensitivityCharts';
import type { SensitivityResult } from '../../src/shared/sensitivity';
import { sensitivityAt } from '../../src/shared/sensitivity';
import { LayerTable } from './table/layerTable';
import { ModelLoader, type LoadProgress } from './loading/modelLoader';
import { renderOverview } from './panels/overview';
import { ProgressBar } from './loading/progress';
import type { TensorRow } from './table/tensorRows';
import { MAX_DETAIL_WIDTH, MIN_DETAIL_WIDTH, type ViewStateStore } from './viewState';
import { GraphView } from './graph/graphView';
import { HierarchyView } from './hierarchy/hierarchyView';
import { ViewTabs } from './graph/viewTabs';
import { setPlanMethods } from './graph/planMethods';
import { offerSensitivityOverlay } from './graph/overlays';
import { setReportErrors } from './graph/reportErrors';
import { setStructureDiff } from './graph/structureDiff';

type PanelState = 'loading' | 'ready' | 'error';

export class App {
  private readonly banner = element('div', { className: 'll-banner-slot' });
  private readonly overviewSlot = element('div', { className: 'll-overview-slot' });
  private readonly reportSlot = element('div', { className: 'll-report-slot' });
  /** The plan (PlanSlot puts itself before the report slot) and the report, collapsible. */
  private readonly reportsArea = element(
    'details',
    { className: 'll-reports-area', attrs: { 'data-testid': 'reports-area' } },
    [element('summary', { text: 'Compression plan and report' }), this.reportSlot],
  );
  private readonly splitter = element('div', {
    className: 'll-splitter',
    attrs: {
      role: 'separator',
      'aria-orientation': 'vertical',
      'aria-label': 'Resize the tensor panel',
      title: 'Drag to resize the tensor panel; double-click for its default width',
      'data-testid': 'splitter',
    },
  });
  /** The model's weights (layerlens/weightTensors), asked for once the summary is in. */
  private weights: Promise<readonly number[] | null> = Promise.resolve(null);
  private weightsRequest = new AbortController();
  private readonly compressButton = element('button', {
    className: 'll-button ll-button-secondary ll-compress-button',
    text: 'Compress model…',
    attrs: {
      type: 'button',
      'data-testid': 'compress',
      title: 'Write a compressed copy of the selected tensors (or of the whole model)',
    },
  });
  private readonly workspace: HTMLElement;
  private readonly graph: GraphView;
  private readonly modules: HierarchyView;
  private readonly views: ViewTabs;
  private readonly table: LayerTable;
  private readonly histogram: HistogramPanel;
  private readonly progress = new ProgressBar();
  private loader: ModelLoader | undefined;
  private readonly details: DetailTabs;
  private readonly sensitivity: SensitivityPanel;
  private spectra: SpectraLoader | undefined;
  /** Scroll position to restore once the rows are in (the table is empty before). */
  private pendingScrollTop: number | null = null;
  /** Tensor indices by name, for revealing a tensor that a code lens names. */
  private readonly indexByName = new Map<string, number>();
  /** A tensor to select once every row is in (rows still arriving would move it). */
  private pendingReveal: { readonly tensorName: string; readonly inGraph: boolean } | null = null;
  private allRowsLoaded = false;
  /** Stops the compressibility requests of the current load. */
  private compressibility = new AbortController();
  private tensorCount = 0;
  /** The model's size as the overview shows it (the pack estimate is stated against it). */
  private modelBytes = 0;
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
        if (index !== null) this.bringDetailsIntoView();
      },
      sortChanged: (sort) => this.store.update({ sort }),
      filterChanged: (filter) => this.store.update({ filter }),
      scrolled: (scrollTop) => this.store.update({ scrollTop }),
      activate: () => this.details.element.scrollIntoView({ block: 'nearest' }),
      selectionChanged: (indices) => this.updateCompressButton(indices),
      layoutChanged: (change) => this.store.update(change),
    });
    this.compressButton.addEventListener('click', () =>
      this.api.send({ type: 'compress', indices: this.table.selectedIndices() }),
    );
    this.table.restore(saved.sort, saved.filter, saved.selectedIndex);
    this.table.restoreLayout(saved);
    this.table.toolbar.append(this.progress.element, this.packTotal, this.compressButton);
    this.histogram = new HistogramPanel(
      saved.histogramScale,
      (histogramScale) => this.store.update({ histogramScale }),
      api,
    );
    const spectrum = new SpectrumPanel(api, (index, result) => {
      const row = this.loader?.row(index);
      if (!row) return;
      SpectraLoader.apply(row, result);
      this.table.statsChanged([row]);
    });
    this.sensitivity = new SensitivityPanel(api, (result, level) =>
      this.showSensitivity(result, level),
    );
    this.details = new DetailTabs(
      this.histogram,
      spectrum,
      new HeatmapPanel(api),
      saved.detailTab,
      (detailTab) => {
        this.store.update({ detailTab });
        this.workspace.classList.toggle('ll-workspace-wide', detailTab !== 'histogram');
      },
      this.sensitivity,
    );
    const structureEvents = {
      selectTensors: (indices: readonly number[]) => this.selectTensors(indices),
      row: (index: number) => this.loader?.row(index),
    };
    this.graph = new GraphView({
      ...structureEvents,
      load: (signal) => this.api.request('graph', {}, signal),
      contents: (group, signal) => this.api.request('graphGroup', { group }, signal),
      find: (query, signal) => this.api.request('graphFind', { query }, signal),
    });
    this.modules = new HierarchyView({
      ...structureEvents,
      load: (signal) => this.api.request('moduleTree', {}, signal),
    });
    this.views = new ViewTabs(
      this.table.element,
      this.graph,
      this.modules,
      saved.modelView,
      (modelView) => this.store.update({ modelView }),
    );
    this.workspace = element('div', { className: 'll-workspace' }, [
      this.views.element,
      this.splitter,
      this.details.element,
    ]);
    this.workspace.classList.toggle('ll-workspace-wide', saved.detailTab !== 'histogram');
    this.setDetailWidth(saved.detailWidth);
    this.splitter.addEventListener('pointerdown', (event) => this.dragSplitter(event));
    this.splitter.addEventListener('dblclick', () => {
      this.setDetailWidth(null);
      this.store.update({ detailWidth: null });
    });
    this.reportsArea.open = saved.reportsOpen;
    this.reportsArea.addEventListener('toggle', () =>
      this.store.update({ reportsOpen: this.reportsArea.open }),
    );
  }

  /** The tensor panel's width (null: its default, wider for the spectrum and heatmap). */
  private setDetailWidth(width: number | null): void {
    if (width === null) this.workspace.style.removeProperty('--ll-detail-width');
    else this.workspace.style.setProperty('--ll-detail-width', `${width}px`);
  }

  private dragSplitter(down: PointerEvent): void {
    down.preventDefault();
    this.splitter.setPointerCapture(down.pointerId);
    const right = this.workspace.getBoundingClientRect().right;
    let width: number | null = null;
    const move = (event: PointerEvent) => {
      width = Math.round(
        Math.min(MAX_DETAIL_WIDTH, Math.max(MIN_DETAIL_WIDTH, right - event.clientX)),
      );
      this.setDetailWidth(width);
    };
    const up = () => {
      this.splitter.removeEventListener('pointermove', move);
      this.splitter.removeEventListener('pointerup', up);
      if (width !== null) this.store.update({ detailWidth: width });
    };
    this.splitter.addEventListener('pointermove', move);
    this.splitter.addEventListener('pointerup', up);
  }

  /** Scroll the page the least needed to show the tensor panel whole (after a selection). */
  private bringDetailsIntoView(): void {
    const box = this.details.element.getBoundingClientRect();
    if (box.top >= 0 && box.bottom <= window.innerHeight) return;
    this.workspace.scrollIntoView({ block: 'nearest' });
  }

  start(): void {
    this.setPanelState('loading');
    this.banner.replaceChildren();
    this.overviewSlot.replaceChildren(
      element('p', { className: 'll-loading', text: 'Reading model…', attrs: { role: 'status' } }),
    );
    this.root.replaceChildren(this.banner, this.overviewSlot, this.workspace, this.reportsArea);
    this.workspace.hidden = true;
    this.table.reset(0);
    this.details.show(undefined);
    this.progress.hide();
    this.pendingScrollTop = this.store.state.scrollTop;
    this.indexByName.clear();
    this.allRowsLoaded = false;

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
          this.table.showOperatorColumn(hasGraph(summary));
          this.table.offerGraph(hasGraph(summary));
          this.views.showGraphTab(hasGraph(summary));
          // Offer only what the model can do (the server's capabilities; a packed model is
          // read, not compressed or swept). No capabilities sent: everything is offered.
          const compresses = summary.capabilities?.compress.length !== 0;
          const sweeps = summary.capabilities?.sensitivity !== false;
          this.compressButton.hidden = !compresses;
          // Read by VS Code's webview menus from every element's ancestors: Compress… and
          // Plan Compression… are offered on rows, graph nodes and the page when it is set.
          document.body.dataset.vscodeContext = JSON.stringify(
            compresses ? { modelCompresses: true } : {},
          );
          this.details.offer('sensitivity', sweeps);
          offerSensitivityOverlay(sweeps);
          if (hasGraph(summary)) void this.loadStructureDiff();
          this.table.reset(summary.tensorCount);
          this.tensorCount = summary.tensorCount;
          this.modelBytes = summary.totalBytes;
          this.loadWeights();
          this.isDelta = isDeltaModel(summary.metadata);
          this.table.showDeltaColumns(this.isDelta);
        },
        rowsAdded: (rows) => {
          for (const row of rows) this.indexByName.set(row.info.name, row.info.index);
          this.table.addRows(rows);
          this.views.rowsChanged();
          if (this.isSelected(rows)) this.showSelected();
        },
        statsUpdated: (rows) => {
          this.table.statsChanged(rows);
          this.views.rowsChanged();
          if (this.isSelected(rows)) this.showSelected();
        },
        progress: (progress) => this.onProgress(progress),
        summaryFailed: (error) => this.showSummaryError(error),
        tensorsFailed: (error) => this.showBanner('Could not read the tensor list', error),
        finished: () => {
          this.progress.hide();
          this.setPanelState('ready');
          this.loadSpectra(loader);
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
      const estimate = packEstimateText(measured, this.modelBytes);
      this.packTotal.textContent = estimate.text;
      this.packTotal.title = estimate.title;
      if (this.isDelta && !signal.aborted) await loadDeltaStats(this.api, rows, signal, redraw);
    });
  }

  /** Ask which tensors are weights; the table's Weights view and the spectra wait for it. */
  private loadWeights(): void {
    this.weightsRequest.abort();
    this.weightsRequest = new AbortController();
    const signal = this.weightsRequest.signal;
    this.weights = this.api.request('weightTensors', {}, signal).then(
      ({ indices }) => {
        if (signal.aborted) return null;
        this.table.setWeights(indices);
        return indices;
      },
      // Without the answer the table shows every tensor, as All tensors does.
      () => null,
    );
  }

  /** The server restarted or the file changed: fetch everything again. */
  reload(reason: string): void {
    this.weightsRequest.abort();
    this.compressibility.abort();
    this.loader?.abort();
    this.spectra?.abort();
    this.api.cancelAll(`Reloading: ${reason}`);
    this.sensitivity.reset();
    this.views.reset();
    this.start();
  }

  /** The model's plan arrived (null: dismissed): the "Plan: method" overlay shows its choices. */
  showPlan(view: PlanView | null): void {
    setPlanMethods(view?.plan ?? null);
    this.views.rowsChanged();
  }

  /** "Show in graph" of a comparison: the Graph tab, coloured by the structure diff against `other`. */
  compareWith(other: string): void {
    this.views.choose('graph');
    void this.loadStructureDiff(other).then((found) => {
      if (found) this.graph.setOverlay('fill', 'structureDiff');
    });
  }

  /**
   * The structure diff against `other`, or against the model this one was last compared
   * with (the server remembers it): the "Compare: structure" overlay's data.
   */
  private async loadStructureDiff(other?: string): Promise<boolean> {
    try {
      const diff = await this.api.request('graphStructureDiff', other ? { other } : {});
      setStructureDiff(diff);
      this.views.rowsChanged();
      return diff !== null;
    } catch (error) {
      // Asked for by the user: say why; a remembered comparison that fails just stays off.
      if (other) this.showBanner('Could not compare the structure', requestErrorOf(error));
      return false;
    }
  }

  /** Show the report of a compression of this model (null: hide it). */
  showReport(report: CompressionReport | null): void {
    setReportErrors(report);
    this.views.rowsChanged();
    if (!report) {
      this.reportSlot.replaceChildren();
      return;
    }
    const view = renderCompressionReport(report, (action) => {
      if (action === 'dismiss') this.reportSlot.replaceChildren();
      this.api.send({ type: 'reportAction', action });
    });
    this.reportSlot.replaceChildren(view);
    this.reportsArea.open = true;
    view.scrollIntoView({ block: 'nearest' });
  }

  private updateCompressButton(indices: readonly number[]): void {
    this.compressButton.textContent =
      indices.length === 0
        ? 'Compress model…'
        : indices.length === 1
          ? 'Compress tensor…'
          : `Compress ${indices.length} tensors…`;
  }

  /**
   * Selects a tensor's row, now or once the rows are in; `inGraph` also shows the Graph tab
   * (at once) and centres the node that reads the tensor (once its index is known).
   */
  reveal(tensorName: string, inGraph = false): void {
    this.pendingReveal = { tensorName, inGraph };
    if (inGraph) this.views.choose('graph');
    this.revealPending();
  }

  private revealPending(): void {
    if (this.pendingReveal === null || !this.allRowsLoaded) return;
    const { tensorName, inGraph } = this.pendingReveal;
    const index = this.indexByName.get(tensorName);
    this.pendingReveal = null;
    if (index === undefined) return;
    this.pendingScrollTop = null;
    this.table.reveal(index);
    if (inGraph) void this.graph.reveal(tensorName, index);
  }

  private onProgress({ rowsLoaded, statsSettled, total }: LoadProgress): void {
    this.progress.show('Statistics', statsSettled, total);
    if (rowsLoaded === total && this.pendingScrollTop !== null) {
      this.table.restoreScroll(this.pendingScrollTop);
      this.pendingScrollTop = null;
    }
    if (rowsLoaded === total) {
      this.allRowsLoaded = true;
      this.revealPending();
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
    this.details.show(selected === null ? undefined : this.loader?.row(selected));
  }

  /** The table's spectral metrics, once every row and statistic is in. */
  private loadSpectra(loader: ModelLoader): void {
    this.spectra?.abort();
    const spectra = new SpectraLoader(this.api, (rows) => {
      this.table.statsChanged(rows);
      this.views.rowsChanged();
    });
    this.spectra = spectra;
    const rows: TensorRow[] = [];
    for (let index = 0; ; index++) {
      const row = loader.row(index);
      if (!row) break;
      rows.push(row);
    }
    // Only weights get spectral metrics; which they are comes first.
    void this.weights.then(() => spectra.run(rows));
  }

  /** Colour the table's sensitivity column by `result` at `level`. */
  private showSensitivity(result: SensitivityResult, level: string): void {
    const heat = heatByIndex(result, level);
    const label = result.levels.find((l) => l.key === level)?.label ?? level;
    const what = result.layers.some((layer) => layer.measured)
      ? `measured output deviation (${result.metric})`
      : 'proxy weight error';
    const changed: TensorRow[] = [];
    for (let index = 0; index < this.tensorCount; index++) {
      const row = this.loader?.row(index);
      if (!row) continue;
      const layer = result.layers.find((candidate) => candidate.index === index);
      const value = layer ? sensitivityAt(layer, level) : undefined;
      row.sensitivity =
        value === undefined
          ? null
          : { value, heat: heat.get(index) ?? 0, title: `${what} at ${label}` };
      changed.push(row);
    }
    this.table.showSensitivityColumn(true);
    this.table.statsChanged(changed);
    this.views.rowsChanged();
  }

  /** From the graph or the modules: select the node's tensors (its largest first) and show it. */
  private selectTensors(indices: readonly number[]): void {
    const rows = indices.flatMap((index) => {
      const row = this.loader?.row(index);
      return row ? [row] : [];
    });
    const largest = rows.reduce<TensorRow | undefined>(
      (best, row) => (!best || row.info.byteLength > best.info.byteLength ? row : best),
      undefined,
    );
    if (largest) this.table.reveal(largest.info.index);
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

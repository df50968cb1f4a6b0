/**
 * The Sensitivity tab: the data-free proxy for every layer as soon as the tab opens, and a
 * button that runs the measured sweep (ONNX) with a progress bar and a Cancel button. It
 * shows the selected layer's curves and the model's layers ranked at a chosen level; the
 * layer table colours a column by the same values.
 */
import type { SensitivityRequest, SensitivityResult } from '../../../src/shared/sensitivity';
import { sensitivityAt } from '../../../src/shared/sensitivity';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import { element } from '../platform/dom';
import { curvesLegend, formatSensitivity, rankingChart, renderCurves } from './sensitivityCharts';
import type { TensorRow } from '../table/tensorRows';

/** The level the ranking starts at. */
const DEFAULT_LEVEL = 'prune:0.5';

export class SensitivityPanel {
  readonly element: HTMLElement;
  private readonly runButton: HTMLButtonElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly levelSelect: HTMLSelectElement;
  private readonly status: HTMLParagraphElement;
  /** Why the measured deviations cannot be trusted (the result's inputProblems). */
  private readonly problems: HTMLDivElement;
  private readonly progress: HTMLProgressElement;
  private readonly curves: HTMLDivElement;
  private readonly curvesNote: HTMLParagraphElement;
  private readonly legend: HTMLDivElement;
  private readonly chart: HTMLDivElement;
  private row: TensorRow | undefined;
  private visible = false;
  private result: SensitivityResult | null = null;
  private level = DEFAULT_LEVEL;
  private running: AbortController | null = null;
  private proxyRequested = false;

  constructor(
    private readonly api: ModelApi,
    /** A result arrived or the level changed: the table colours its column. */
    private readonly changed: (result: SensitivityResult, level: string) => void,
  ) {
    this.runButton = element('button', {
      className: 'll-button',
      text: 'Run measured sweep',
      attrs: {
        type: 'button',
        'data-testid': 'sensitivity-run',
        title:
          'Compress each layer alone at each level and run the model on the sample inputs (one onnxruntime session)',
      },
    });
    this.runButton.addEventListener('click', () => this.load(true));
    this.cancelButton = element('button', {
      className: 'll-button ll-button-secondary',
      text: 'Cancel',
      attrs: { type: 'button', 'data-testid': 'sensitivity-cancel', hidden: '' },
    });
    this.cancelButton.addEventListener('click', () => this.running?.abort());
    this.levelSelect = element('select', {
      className: 'll-select',
      attrs: { 'data-testid': 'sensitivity-level', 'aria-label': 'Level to rank the layers at' },
    });
    this.levelSelect.addEventListener('change', () => {
      this.level = this.levelSelect.value;
      this.render();
      if (this.result) this.changed(this.result, this.level);
    });
    this.progress = element('progress', {
      className: 'll-sens-progress',
      attrs: { 'data-testid': 'sensitivity-progress', hidden: '' },
    });
    this.status = element('p', {
      className: 'll-detail-message',
      attrs: { 'data-testid': 'sensitivity-status', role: 'status' },
    });
    this.problems = element('div', {
      className: 'll-warnings ll-sens-problems',
      attrs: { 'data-testid': 'sensitivity-input-problems', role: 'alert', hidden: '' },
    });
    this.curvesNote = element('p', { className: 'll-detail-message' });
    this.curves = element('div', {
      className: 'll-sens-curves',
      attrs: { 'data-testid': 'sensitivity-curves' },
    });
    this.legend = element('div');
    this.chart = element('div', {
      className: 'll-sens-chart',
      attrs: { 'data-testid': 'sensitivity-chart' },
    });
    this.element = element('div', { className: 'll-sensitivity' }, [
      element('div', { className: 'll-sens-toolbar' }, [
        element('label', { className: 'll-sens-level' }, ['Rank at ', this.levelSelect]),
        this.runButton,
        this.cancelButton,
        this.progress,
      ]),
      this.status,
      this.problems,
      element('h3', { className: 'll-sens-heading', text: 'Selected layer' }),
      this.curvesNote,
      this.curves,
      this.legend,
      element('h3', { className: 'll-sens-heading', text: 'Layers ranked' }),
      this.chart,
    ]);
  }

  /** The selected tensor changed, or the tab was shown or hidden. */
  show(row: TensorRow | undefined, visible: boolean): void {
    this.row = row;
    this.visible = visible;
    if (!visible) return;
    if (!this.proxyRequested) {
      this.proxyRequested = true;
      this.load(false);
    }
    this.render();
  }

  /** Forget everything (the model is being reloaded). */
  reset(): void {
    this.running?.abort();
    this.result = null;
    this.proxyRequested = false;
    if (this.visible) this.show(this.row, true);
  }

  private load(measured: boolean): void {
    this.running?.abort();
    const controller = new AbortController();
    this.running = controller;
    this.setRunning(true, measured);
    const request: SensitivityRequest = { indices: [], measured };
    this.api.request('sensitivity', { request }, controller.signal).then(
      (result) => {
        if (this.running !== controller) return;
        this.result = result;
        if (!result.levels.some((level) => level.key === this.level)) {
          this.level = result.levels[0]?.key ?? DEFAULT_LEVEL;
        }
        this.setRunning(false, measured);
        this.status.textContent = describe(result, measured);
        this.render();
        this.changed(result, this.level);
      },
      (error: unknown) => {
        if (this.running !== controller) return;
        this.setRunning(false, measured);
        this.status.textContent = isCancellation(error)
          ? 'Measured sweep cancelled.'
          : `Sensitivity failed: ${requestErrorOf(error).message}`;
        this.status.classList.toggle('ll-error-text', !isCancellation(error));
      },
    );
  }

  private setRunning(running: boolean, measured: boolean): void {
    if (!running) this.running = null;
    this.runButton.disabled = running;
    this.cancelButton.hidden = !(running && measured);
    this.progress.hidden = !running;
    this.status.classList.remove('ll-error-text');
    if (running) {
      this.status.textContent = measured
        ? 'Running the measured sweep: each layer compressed alone at each level, in one onnxruntime session…'
        : 'Computing the data-free proxy…';
    }
  }

  private renderProblems(result: SensitivityResult | null): void {
    const problems = result?.inputProblems ?? [];
    this.problems.hidden = problems.length === 0;
    this.problems.replaceChildren(
      ...(problems.length === 0
        ? []
        : [
            element('p', {
              className: 'll-warnings-title',
              text: 'Not trustworthy: these sample inputs cannot show a deviation, so the measured values prove nothing',
            }),
            element(
              'ul',
              { className: 'll-verdict-reasons' },
              problems.map((problem) => element('li', { text: problem })),
            ),
            element('p', {
              text: 'Choose inputs that exercise the model with LayerLens: Choose Sample Inputs… (or layerlens.validation.inputsFolder).',
            }),
          ]),
    );
  }

  private render(): void {
    if (!this.visible) return;
    const result = this.result;
    this.renderProblems(result);
    if (!result) {
      this.curves.replaceChildren();
      this.chart.replaceChildren();
      this.legend.replaceChildren();
      this.curvesNote.textContent = '';
      return;
    }
    this.fillLevels(result);
    this.chart.replaceChildren(rankingChart(result, this.level));
    this.legend.replaceChildren(curvesLegend(result));
    const layer = this.row
      ? result.layers.find((candidate) => candidate.index === this.row!.info.index)
      : undefined;
    if (!this.row) {
      this.curvesNote.textContent = 'Select a tensor to see its curves.';
      this.curves.replaceChildren();
    } else if (!layer || layer.proxy.length === 0) {
      this.curvesNote.textContent = `${this.row.info.name} is not swept: ${layer?.note ?? 'no compression method applies to it (biases, shapes, integer tensors)'}.`;
      this.curves.replaceChildren();
    } else {
      const value = sensitivityAt(layer, this.level);
      const skipped = (layer.skipped ?? []).map((s) => s.key).join(', ');
      this.curvesNote.textContent =
        `${layer.name}: ${value === undefined ? 'not applied' : formatSensitivity(value)} at ${this.levelLabel(result)}` +
        (layer.note ? ` — ${layer.note}` : '') +
        (skipped ? ` (not applicable: ${skipped})` : '');
      this.curves.replaceChildren();
      renderCurves(this.curves, result, layer);
    }
  }

  private levelLabel(result: SensitivityResult): string {
    return result.levels.find((level) => level.key === this.level)?.label ?? this.level;
  }

  private fillLevels(result: SensitivityResult): void {
    const keys = result.levels.map((level) => level.key).join('\n');
    if (this.levelSelect.dataset.keys !== keys) {
      this.levelSelect.replaceChildren(
        ...result.levels.map((level) =>
          element('option', { text: level.label, attrs: { value: level.key } }),
        ),
      );
      this.levelSelect.dataset.keys = keys;
    }
    this.levelSelect.value = this.level;
  }
}

function describe(result: SensitivityResult, asked: boolean): string {
  const measured = result.layers.some((layer) => layer.measured);
  if (asked && !measured && result.sessions === 0) {
    return 'Only ONNX models run in onnxruntime: this shows the data-free proxy (relative weight error) alone.';
  }
  const swept = result.layers.filter((layer) => layer.proxy.length > 0).length;
  const time = `${(result.elapsedMs / 1000).toFixed(1)} s${result.cached ? ', cached' : ''}`;
  if (!measured) {
    const note = result.layers.find((layer) => layer.note && layer.proxy.length > 0)?.note;
    return `Proxy (data-free): relative weight error of ${swept} layers at ${result.levels.length} levels (${time}).${note ? ` Not measured: ${note}` : ' Run the measured sweep for the output deviation.'}`;
  }
  const unreached = result.layers.filter((layer) => layer.unreached).length;
  const unreachedNote =
    unreached > 0
      ? ` ${unreached} of them are not reached by these inputs (the outputs never moved): plans use their proxy.`
      : '';
  const untrusted =
    (result.inputProblems ?? []).length > 0
      ? ' NOT trustworthy: the sample inputs cannot show a deviation (see below).'
      : '';
  return `Measured: output deviation (${result.metric}, worst output) of ${swept} layers, ${result.runs} runs in ${result.sessions} onnxruntime session on ${result.backend} (${time}). Inputs: ${result.inputs}.${unreachedNote}${untrusted}`;
}

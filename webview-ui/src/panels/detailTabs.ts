/**
 * The selected tensor's panel: tabs for its histogram, its rank spectrum, its heatmap and
 * the model's per-layer sensitivity.
 * Only the tab on screen does any work; the others catch up when they are opened.
 */
import { element } from '../platform/dom';
import type { HeatmapPanel } from './heatmap/panel';
import type { HistogramPanel } from './histogram';
import type { SensitivityPanel } from './sensitivityPanel';
import type { SpectrumPanel } from './spectrumPanel';
import type { TensorRow } from '../table/tensorRows';
import type { DetailTab } from '../viewState';

const TABS: readonly { id: DetailTab; label: string }[] = [
  { id: 'histogram', label: 'Histogram' },
  { id: 'spectrum', label: 'Spectrum' },
  { id: 'heatmap', label: 'Heatmap' },
  { id: 'sensitivity', label: 'Sensitivity' },
];

export class DetailTabs {
  readonly element: HTMLElement;
  private readonly buttons = new Map<DetailTab, HTMLButtonElement>();
  private readonly panels: Map<DetailTab, HTMLElement>;
  private row: TensorRow | undefined;

  constructor(
    private readonly histogram: HistogramPanel,
    private readonly spectrum: SpectrumPanel,
    private readonly heatmap: HeatmapPanel,
    private tab: DetailTab,
    private readonly onTabChange: (tab: DetailTab) => void,
    private readonly sensitivity: SensitivityPanel,
  ) {
    const list = element('div', {
      className: 'll-tabs',
      attrs: { role: 'tablist', 'aria-label': 'Tensor views', 'data-testid': 'detail-tabs' },
    });
    for (const { id, label } of TABS) {
      const button = element('button', {
        className: 'll-tab',
        text: label,
        attrs: {
          type: 'button',
          role: 'tab',
          id: `ll-tab-${id}`,
          'aria-controls': `ll-tabpanel-${id}`,
          'data-testid': `tab-${id}`,
        },
      });
      button.addEventListener('click', () => this.select(id));
      button.addEventListener('keydown', (event) => this.onKeyDown(event, id));
      this.buttons.set(id, button);
      list.append(button);
    }
    // The histogram panel's header (the tensor's name) heads every tab; the tabs sit below it
    // and the rest of the histogram panel becomes the first tab.
    const header = histogram.header;
    header.after(list);
    const analysisSlot = (id: DetailTab, content: HTMLElement) =>
      element(
        'div',
        {
          className: 'll-tabpanel',
          attrs: { role: 'tabpanel', id: `ll-tabpanel-${id}`, 'aria-labelledby': `ll-tab-${id}` },
        },
        [content],
      );
    const histogramBody = [...histogram.element.children].filter(
      (child) => child !== header && child !== list,
    );
    const histogramSlot = element(
      'div',
      {
        className: 'll-tabpanel',
        attrs: {
          role: 'tabpanel',
          id: 'll-tabpanel-histogram',
          'aria-labelledby': 'll-tab-histogram',
        },
      },
      histogramBody,
    );
    this.panels = new Map([
      ['histogram', histogramSlot],
      ['spectrum', analysisSlot('spectrum', spectrum.element)],
      ['heatmap', analysisSlot('heatmap', heatmap.element)],
    ]);
    this.panels.set('sensitivity', analysisSlot('sensitivity', sensitivity.element));
    histogram.element.append(...this.panels.values());
    this.element = histogram.element;
    this.update();
  }

  get current(): DetailTab {
    return this.tab;
  }

  show(row: TensorRow | undefined): void {
    this.row = row;
    this.histogram.show(row);
    this.spectrum.show(row, this.tab === 'spectrum');
    this.heatmap.show(row, this.tab === 'heatmap');
    this.sensitivity.show(row, this.tab === 'sensitivity');
  }

  select(tab: DetailTab): void {
    if (tab === this.tab) return;
    this.tab = tab;
    this.update();
    this.show(this.row);
    this.onTabChange(tab);
  }

  private update(): void {
    for (const [id, button] of this.buttons) {
      const selected = id === this.tab;
      button.setAttribute('aria-selected', String(selected));
      button.tabIndex = selected ? 0 : -1;
      this.panels.get(id)!.hidden = !selected;
    }
    this.element.dataset.tab = this.tab;
    this.element.classList.toggle('ll-detail-wide', this.tab !== 'histogram');
  }

  /**
   * Shows or hides a tab as the model's capabilities say (a packed model has no
   * Sensitivity); a hidden tab that was on screen gives way to the histogram.
   */
  offer(tab: DetailTab, offered: boolean): void {
    this.buttons.get(tab)!.hidden = !offered;
    if (!offered && this.tab === tab) this.select('histogram');
  }

  private onKeyDown(event: KeyboardEvent, id: DetailTab): void {
    const shown = TABS.filter((tab) => !this.buttons.get(tab.id)!.hidden);
    const position = shown.findIndex((tab) => tab.id === id);
    const next =
      event.key === 'ArrowRight' ? position + 1 : event.key === 'ArrowLeft' ? position - 1 : null;
    if (next === null) return;
    event.preventDefault();
    const target = shown[(next + shown.length) % shown.length]!.id;
    this.select(target);
    this.buttons.get(target)!.focus();
  }
}

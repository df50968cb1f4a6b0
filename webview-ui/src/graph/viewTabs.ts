/**
 * The model's views beside the detail panel: the layer table, the graph (formats that
 * store one) and the module tree with its treemap. Only the view on screen is shown; the
 * graph and the modules load the first time they are opened.
 */
import { element } from '../platform/dom';
import type { HierarchyView } from '../hierarchy/hierarchyView';
import type { GraphView } from './graphView';
import type { ModelView } from '../viewState';

export type ViewId = ModelView;

export class ViewTabs {
  readonly element: HTMLElement;
  private readonly buttons = new Map<ViewId, HTMLButtonElement>();
  private readonly panels: Map<ViewId, HTMLElement>;
  private current: ViewId = 'table';

  /**
   * `wanted` is the view the user chose last (kept in the webview state): it is shown once
   * the model's summary says whether the format has a graph. `chosen` hears every choice.
   */
  constructor(
    table: HTMLElement,
    private readonly graph: GraphView,
    private readonly modules: HierarchyView,
    private wanted: ViewId = 'table',
    private readonly chosen: (id: ViewId) => void = () => undefined,
  ) {
    this.panels = new Map([
      ['table', table],
      ['graph', graph.element],
      ['modules', modules.element],
    ]);
    const list = element('div', {
      className: 'll-tabs ll-view-tabs',
      attrs: { role: 'tablist', 'aria-label': 'Model views', 'data-testid': 'view-tabs' },
    });
    for (const [id, label] of [
      ['table', 'Table'],
      ['graph', 'Graph'],
      ['modules', 'Modules'],
    ] as const) {
      const button = element('button', {
        className: 'll-tab',
        text: label,
        attrs: { type: 'button', role: 'tab', 'data-testid': `view-${id}` },
      });
      button.addEventListener('click', () => this.choose(id));
      this.buttons.set(id, button);
      list.append(button);
    }
    this.element = element('div', { className: 'll-view-slot' }, [list, ...this.panels.values()]);
    this.select('table');
  }

  /**
   * The model's summary is in: the Graph tab is offered where its format stores a graph, and
   * the view the user chose last is shown where it is offered.
   */
  showGraphTab(show: boolean): void {
    this.buttons.get('graph')!.hidden = !show;
    const view = this.wanted === 'graph' && !show ? 'table' : this.wanted;
    if (view !== this.current) this.select(view);
  }

  /** A choice of the user's (or a command's): remembered for the next time the model opens. */
  choose(id: ViewId): void {
    this.wanted = id;
    this.chosen(id);
    this.select(id);
  }

  select(id: ViewId): void {
    this.current = id;
    for (const [view, button] of this.buttons)
      button.setAttribute('aria-selected', String(view === id));
    for (const [view, panel] of this.panels) panel.hidden = view !== id;
    if (id === 'graph') void this.graph.show();
    if (id === 'modules') void this.modules.show();
  }

  rowsChanged(): void {
    this.graph.rowsChanged();
    this.modules.rowsChanged();
  }

  /** The model reloads: the graph and the modules are fetched again when shown. */
  reset(): void {
    this.graph.reset();
    this.modules.reset();
    if (this.current !== 'table') this.select(this.current);
  }
}

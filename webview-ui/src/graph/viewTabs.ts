/**
 * The model's views beside the detail panel: the layer table, the graph (formats that
 * store one) and the module tree with its treemap. Only the view on screen is shown; the
 * graph and the modules load the first time they are opened.
 */
import { element } from '../platform/dom';
import type { HierarchyView } from '../hierarchy/hierarchyView';
import type { GraphView } from './graphView';

type ViewId = 'table' | 'graph' | 'modules';

export class ViewTabs {
  readonly element: HTMLElement;
  private readonly buttons = new Map<ViewId, HTMLButtonElement>();
  private readonly panels: Map<ViewId, HTMLElement>;
  private current: ViewId = 'table';

  constructor(
    table: HTMLElement,
    private readonly graph: GraphView,
    private readonly modules: HierarchyView,
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
      button.addEventListener('click', () => this.select(id));
      this.buttons.set(id, button);
      list.append(button);
    }
    this.element = element('div', { className: 'll-view-slot' }, [list, ...this.panels.values()]);
    this.select('table');
  }

  /** The Graph tab is offered where the model's format stores a graph. */
  showGraphTab(show: boolean): void {
    this.buttons.get('graph')!.hidden = !show;
    if (!show && this.current === 'graph') this.select('table');
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

/** The loading progress bar above the table: what is being fetched, done out of total. */
import { element } from '../platform/dom';
import { formatCount } from '../../../src/shared/format';

export class ProgressBar {
  readonly element: HTMLElement;
  private readonly bar: HTMLProgressElement;
  private readonly label: HTMLSpanElement;

  constructor() {
    this.bar = element('progress', { className: 'll-progress-bar', attrs: { max: 1, value: 0 } });
    this.label = element('span', { className: 'll-progress-label' });
    this.element = element(
      'div',
      {
        className: 'll-progress',
        attrs: {
          'data-testid': 'progress',
          role: 'status',
          'data-done': 0,
          'data-total': 0,
          hidden: '',
        },
      },
      [this.label, this.bar],
    );
  }

  /** Show `done` of `total` steps of `task`. */
  show(task: string, done: number, total: number): void {
    this.element.dataset.done = String(done);
    this.element.dataset.total = String(total);
    this.bar.max = Math.max(1, total);
    this.bar.value = done;
    this.label.textContent = `${task} ${formatCount(done)} / ${formatCount(total)}`;
    this.element.hidden = false;
  }

  hide(): void {
    this.element.hidden = true;
  }
}

/**
 * A compression plan of this model: per tensor the chosen method, its predicted bytes
 * and deviation, the totals against the target, and an Apply button. Once applied, the
 * attempts (file size and whole-model deviation of each) and whether the target was met;
 * the kept file's report shows in the compression report view below it.
 */
import { formatBytes, formatSizeChange, formatStat } from '../../../src/shared/format';
import type { ApplyPlanResult, Plan, PlanAction, PlanView } from '../../../src/shared/plan';
import { describePlanTarget, maxFileBytes, planStatus } from '../../../src/shared/planTarget';
import { renderVerdict, table } from './compressReport';
import { definitionList, element, shortNameElement } from '../platform/dom';
import { shortenNames } from '../../../src/shared/names';
import { baseName } from '../platform/errorView';

/** Plan rows drawn; the recipe file holds all of them. */
const MAX_PLAN_ROWS = 300;

function deviationText(value: number): string {
  return Number.isFinite(value) ? formatStat(value, 4) : '—';
}

/** The llama-quantize command of a plan of llama.cpp types, with a copy button. */
function llamaQuantizeBlock(command: string): HTMLElement {
  const copy = element('button', {
    className: 'll-button ll-button-secondary',
    text: 'Copy',
    attrs: { type: 'button', 'data-testid': 'plan-llama-quantize-copy' },
  });
  copy.addEventListener('click', () => {
    void navigator.clipboard.writeText(command).then(
      () => {
        copy.textContent = 'Copied';
      },
      () => {
        copy.textContent = 'Copy failed: select the command';
      },
    );
  });
  return element(
    'div',
    { className: 'll-plan-llama', attrs: { 'data-testid': 'plan-llama-quantize' } },
    [
      element('p', {
        className: 'll-warnings-title',
        text: 'The same types with llama.cpp (tensors it keeps at higher precision by convention are marked in the table):',
      }),
      element('pre', { className: 'll-plan-command', text: command }),
      copy,
    ],
  );
}

export function renderPlan(view: PlanView, act: (action: PlanAction) => void): HTMLElement {
  const { plan, result } = view;
  const button = (text: string, action: PlanAction, testId: string, secondary = false) => {
    const node = element('button', {
      className: secondary ? 'll-button ll-button-secondary' : 'll-button',
      text,
      attrs: { type: 'button', 'data-action': action, 'data-testid': testId },
    });
    if (view.applying && action === 'apply') node.disabled = true;
    node.addEventListener('click', () => act(action));
    return node;
  };
  const changed = plan.steps.filter((step) => step.options);
  const summed = plan.steps.reduce((sum, step) => sum + step.predictedDeviation, 0);
  // A bits-per-weight target (llama.cpp types) states no byte limit of its own.
  const limit =
    plan.target.kind === 'bpw' ? undefined : maxFileBytes(plan.target, plan.fileBytesBefore);
  const status = planStatus(view);
  // A plan restored from an older recipe may lack warnings.
  const warnings = (plan as { warnings?: readonly string[] }).warnings ?? [];
  const facts = definitionList([
    ['Target', describePlanTarget(plan.target)],
    [
      'Status',
      element('span', {
        className: `ll-plan-status ll-plan-status-${status.state.replace(/ /g, '-')}`,
        text: status.text,
        attrs: { 'data-testid': 'plan-status', 'data-state': status.state },
      }),
    ],
    ...(result
      ? [
          [
            'Measured size',
            formatSizeChange(result.report.fileBytesBefore, result.report.fileBytesAfter),
          ] as const,
        ]
      : []),
    [
      'Predicted size',
      `${formatSizeChange(plan.fileBytesBefore, plan.predictedFileBytes)}${limit !== undefined ? `; limit ${formatBytes(limit)}` : ''}`,
    ],
    [
      'Predicted deviation',
      `${formatStat(summed, 4)} summed over layers (${plan.metric}${plan.recipe.measured ? (warnings.length > 0 ? ', measured per layer but not trustworthy: see why above' : ', measured per layer') : ', data-free proxy'})`,
    ],
    ['Tensors changed', `${changed.length} of ${plan.steps.length}`],
  ]);
  // Tensor names shortened by the table's rule (the shared prefix above the table).
  const shown = plan.steps.slice(0, MAX_PLAN_ROWS);
  const names = shortenNames(shown.map((step) => step.tensor));
  const rows = shown.map((step, i) => [
    shortNameElement(names.names[i]!, step.tensor),
    step.label,
    formatBytes(step.bytesBefore),
    formatBytes(step.predictedBytes),
    deviationText(step.predictedDeviation),
  ]);
  // Once applied, the warnings are among the verdict's reasons.
  const warningBlock =
    warnings.length > 0 && !result
      ? element(
          'div',
          {
            className: 'll-warnings ll-plan-warnings',
            attrs: { 'data-testid': 'plan-warnings', role: 'alert' },
          },
          [
            element('p', {
              className: 'll-warnings-title',
              text: 'Warning: this plan rests on sensitivities that cannot be trusted; its file will not be validated:',
            }),
            element(
              'ul',
              { className: 'll-verdict-reasons' },
              warnings.map((warning) => element('li', { text: warning })),
            ),
          ],
        )
      : null;
  // Why the target is out of reach: the plan's limits, or once applied, why it was missed.
  // (A plan or result restored from an older recipe may lack them.)
  const reasons = result
    ? result.targetMet
      ? []
      : ((result as Partial<ApplyPlanResult>).missedBecause ?? [])
    : plan.feasible
      ? []
      : ((plan as Partial<Plan>).limits ?? []);
  const reasonBlock =
    reasons.length > 0
      ? element(
          'div',
          { className: 'll-warnings ll-plan-limits', attrs: { 'data-testid': 'plan-limits' } },
          [
            element('p', {
              className: 'll-warnings-title',
              text: result ? 'Why the target was not met:' : 'Why the target cannot be met:',
            }),
            element(
              'ul',
              { className: 'll-verdict-reasons' },
              reasons.map((reason) => element('li', { text: reason })),
            ),
          ],
        )
      : null;
  const verdict = result ? (result as Partial<ApplyPlanResult>).verdict : undefined;
  const attempts = result
    ? element('div', { attrs: { 'data-testid': 'plan-attempts' } }, [
        element('p', {
          className: 'll-plan-outcome',
          text: `${result.targetMet ? 'Target met' : 'Target missed'}${verdict?.validated ? '' : ' (not validated)'}: kept ${baseName(result.report.output)}, ${formatBytes(result.report.fileBytesAfter)}; recipe ${baseName(result.recipePath)}`,
        }),
        renderVerdict(verdict, 'plan-verdict', baseName(result.report.output)),
        table(
          'll-plan-attempts',
          'Attempts',
          ['#', 'File bytes', 'Whole-model deviation', 'Why'],
          result.attempts.map((attempt, i) => [
            String(i + 1),
            formatBytes(attempt.fileBytes),
            deviationText(attempt.deviation),
            attempt.refinement ?? 'first application',
          ]),
          1,
        ),
      ])
    : null;
  return element(
    'section',
    {
      className: 'll-section ll-report ll-plan',
      attrs: { 'data-testid': 'plan-panel', 'aria-label': 'Compression plan' },
    },
    [
      element('div', { className: 'll-report-header' }, [
        element('h2', {
          className: 'll-section-title',
          text: result
            ? `Plan applied to ${baseName(plan.source)}`
            : `Compression plan for ${baseName(plan.source)}`,
        }),
        element('div', { className: 'll-report-actions' }, [
          result ? null : button(view.applying ? 'Applying…' : 'Apply', 'apply', 'plan-apply'),
          button('Close', 'dismiss', 'plan-dismiss', true),
        ]),
      ]),
      attempts,
      warningBlock,
      facts,
      reasonBlock,
      view.error ? element('p', { className: 'll-plan-error', text: view.error }) : null,
      plan.llamaQuantize ? llamaQuantizeBlock(plan.llamaQuantize) : null,
      names.prefix === ''
        ? null
        : element(
            'p',
            { className: 'll-name-prefix', attrs: { 'data-testid': 'plan-name-prefix' } },
            ['Every tensor name starts with ', element('code', { text: names.prefix })],
          ),
      element('div', { className: 'll-report-scroll' }, [
        table(
          'll-plan-steps',
          'Plan',
          ['Tensor', 'Choice', 'Bytes now', 'Predicted bytes', 'Predicted deviation'],
          rows,
          2,
        ),
      ]),
    ],
  );
}

/** The plan's place in the page: just above the compression report. */
export class PlanSlot {
  private readonly slot = element('div', { className: 'll-plan-slot' });

  constructor(
    private readonly root: HTMLElement,
    private readonly act: (action: PlanAction) => void,
  ) {}

  show(view: PlanView | null): void {
    if (!view) {
      this.slot.replaceChildren();
      return;
    }
    const report = this.root.querySelector('.ll-report-slot');
    if (!this.slot.isConnected) {
      if (report) report.before(this.slot);
      else this.root.prepend(this.slot);
    }
    const panel = renderPlan(view, (action) => {
      if (action === 'dismiss') this.slot.replaceChildren();
      this.act(action);
    });
    this.slot.replaceChildren(panel);
    panel.scrollIntoView({ block: 'nearest' });
  }
}

/**
 * The report of a compression of this model: totals, how far each model output moved on
 * the sample inputs, and bytes and weight error per tensor. Shown above the layer table
 * until dismissed; its buttons ask the extension to open the new model or the JSON report.
 */
import {
  verdictText,
  type CompressionReport,
  type OutputDeviation,
  type TensorCompressionResult,
  type ValidationVerdict,
} from '../../../src/shared/compress';
import { methodShareLines, methodsHeadline } from '../../../src/shared/compressText';
import {
  formatBytes,
  formatCount,
  formatSizeChange as sizeChange,
  formatStat,
} from '../../../src/shared/format';
import type { ReportAction } from '../../../src/shared/protocol';
import { definitionList, element } from '../platform/dom';
import { baseName } from '../platform/errorView';

/** Tensor rows drawn in the report; the JSON file holds all of them. */
const MAX_TENSOR_ROWS = 200;

function sum(
  tensors: readonly TensorCompressionResult[],
  field: 'bytesBefore' | 'bytesAfter',
): number {
  return tensors.reduce((total, tensor) => total + tensor[field], 0);
}

/** The method, or a mixed compression's headline and each setting with its share. */
function methodsFact(report: CompressionReport): readonly [string, string | Node] {
  const lines = methodShareLines(report);
  if (lines.length === 0) return ['Method', methodsHeadline(report)];
  return [
    'Methods',
    element('div', { attrs: { 'data-testid': 'report-methods' } }, [
      element('span', { text: methodsHeadline(report) }),
      element(
        'ul',
        { className: 'll-report-methods' },
        lines.map((line) => element('li', { text: line })),
      ),
    ]),
  ];
}

/** A table cell: its text (also its tooltip), or an element with its own tooltip. */
export type TableCell = string | HTMLElement;

export function table(
  className: string,
  label: string,
  headers: readonly string[],
  rows: readonly (readonly TableCell[])[],
  numericFrom: number,
): HTMLTableElement {
  const head = element('tr', {}, [
    ...headers.map((header, column) =>
      element('th', {
        text: header,
        className: column >= numericFrom ? 'll-numeric' : undefined,
        attrs: { scope: 'col' },
      }),
    ),
  ]);
  const body = rows.map((cells) =>
    element(
      'tr',
      {},
      cells.map((cell, column) =>
        typeof cell === 'string'
          ? element('td', {
              text: cell,
              className: column >= numericFrom ? 'll-numeric' : undefined,
              attrs: { title: cell },
            })
          : element('td', { className: column >= numericFrom ? 'll-numeric' : undefined }, [cell]),
      ),
    ),
  );
  return element(
    'table',
    { className: `ll-compact-table ll-report-table ${className}`, attrs: { 'aria-label': label } },
    [element('thead', {}, [head]), element('tbody', {}, body)],
  );
}

/**
 * The verdict, prominent: a "Validated" badge only when the comparison could have seen a
 * difference; otherwise "Not validated" and every reason. `testId` names the block.
 */
export function renderVerdict(
  verdict: ValidationVerdict | undefined,
  testId: string,
  subject: string,
): HTMLElement {
  // A report without a verdict (written before verdicts existed) proves nothing either.
  const shown: ValidationVerdict = verdict ?? {
    validated: false,
    reasons: ['this report has no verdict: it was written by an older LayerLens'],
  };
  const { validated, reasons } = shown;
  // "Validated" says the check could see a difference; the cosine says how large it was.
  const measured = validated && shown.worstCosine !== undefined ? ` (${verdictText(shown)})` : '';
  return element(
    'div',
    {
      className: `ll-verdict ${validated ? 'll-verdict-ok' : 'll-verdict-bad'}`,
      attrs: {
        'data-testid': testId,
        'data-validated': String(validated),
        role: validated ? 'status' : 'alert',
      },
    },
    [
      element('p', { className: 'll-verdict-line' }, [
        element('span', {
          className: 'll-verdict-badge',
          text: validated ? 'Validated' : 'Not validated',
          attrs: { 'data-testid': `${testId}-badge` },
        }),
        element('span', {
          className: 'll-verdict-summary',
          text: validated
            ? ` ${subject} was compared with the original on sample inputs that could show a difference${measured}.`
            : ` ${subject} was written, but the comparison with the original proves nothing:`,
        }),
      ]),
      validated
        ? null
        : element(
            'ul',
            { className: 'll-verdict-reasons', attrs: { 'data-testid': `${testId}-reasons` } },
            reasons.map((reason) => element('li', { text: reason })),
          ),
    ],
  );
}

/** What the deviation figures were measured on, for the table's caption. */
function deviationCaption(outputs: readonly OutputDeviation[]): string {
  const counts = [...new Set(outputs.map((output) => output.samples))];
  if (counts.length === 1 && counts[0] !== undefined) {
    const n = counts[0];
    return `Output deviation on ${n} sample input${n === 1 ? '' : 's'}: the worst sample, and the mean over the samples`;
  }
  return 'Output deviation on the sample inputs (the worst sample)';
}

export function renderCompressionReport(
  report: CompressionReport,
  act: (action: ReportAction) => void,
): HTMLElement {
  const button = (text: string, action: ReportAction, secondary = false): HTMLButtonElement => {
    const node = element('button', {
      className: secondary ? 'll-button ll-button-secondary' : 'll-button',
      text,
      attrs: { type: 'button', 'data-action': action },
    });
    node.addEventListener('click', () => act(action));
    return node;
  };
  const compressed = report.tensors.filter((tensor) => !tensor.skipped);
  const skipped = report.tensors.length - compressed.length;
  const facts = definitionList([
    methodsFact(report),
    ['File size', sizeChange(report.fileBytesBefore, report.fileBytesAfter)],
    [
      'Tensors',
      `${formatCount(compressed.length)} compressed${skipped > 0 ? `, ${formatCount(skipped)} skipped` : ''}`,
    ],
    ['Their bytes', sizeChange(sum(compressed, 'bytesBefore'), sum(compressed, 'bytesAfter'))],
    ['New model', element('code', { text: report.output })],
    ['Sample inputs', report.inputs || '—'],
    ['Time', `${formatStat(report.elapsedMs / 1000, 3)} s`],
  ]);
  const mean = (value: number | undefined, digits?: number) =>
    value === undefined ? '—' : formatStat(value, digits);
  const outputs =
    report.outputs.length > 0
      ? element('div', { className: 'll-report-outputs-block' }, [
          element('p', {
            className: 'll-report-caption',
            text: deviationCaption(report.outputs),
            attrs: { 'data-testid': 'report-deviation-caption' },
          }),
          table(
            'll-report-outputs',
            'Output deviation',
            [
              'Output',
              'Samples',
              'Max abs diff (worst)',
              'Relative L2 (worst)',
              'Relative L2 (mean)',
              'Cosine (worst)',
              'Cosine (mean)',
            ],
            report.outputs.map((output) => [
              output.output,
              output.samples === undefined ? '—' : String(output.samples),
              formatStat(output.maxAbsDiff),
              formatStat(output.relativeL2),
              mean(output.meanRelativeL2),
              formatStat(output.cosine, 6),
              mean(output.meanCosine, 6),
            ]),
            1,
          ),
        ])
      : null;
  const tensorRows = report.tensors
    .slice(0, MAX_TENSOR_ROWS)
    .map((tensor) => [
      tensor.name,
      tensor.detail,
      formatBytes(tensor.bytesBefore),
      formatBytes(tensor.bytesAfter),
      tensor.skipped ? '—' : formatStat(tensor.relativeError),
    ]);
  const more = report.tensors.length - tensorRows.length;
  return element(
    'section',
    {
      className: 'll-section ll-report',
      attrs: { 'data-testid': 'compression-report', 'aria-label': 'Compression report' },
    },
    [
      element('div', { className: 'll-report-header' }, [
        element('h2', {
          className: 'll-section-title',
          text: `Compressed into ${baseName(report.output)}`,
        }),
        element('div', { className: 'll-report-actions' }, [
          button('Open new model', 'openOutput'),
          button('Compare with original', 'compareWithOriginal', true),
          button('Show report JSON', 'openReport', true),
          button('Close', 'dismiss', true),
        ]),
      ]),
      renderVerdict(
        (report as Partial<CompressionReport>).verdict,
        'report-verdict',
        baseName(report.output),
      ),
      facts,
      element('ul', { className: 'll-report-validation' }, [
        ...report.validation.map((line) => element('li', { text: line })),
      ]),
      outputs,
      element('div', { className: 'll-report-scroll' }, [
        table(
          'll-report-tensors',
          'Tensors',
          ['Tensor', 'What was done', 'Bytes before', 'Bytes after', 'Relative error'],
          tensorRows,
          2,
        ),
      ]),
      more > 0
        ? element('p', {
            className: 'll-report-more',
            text: `${formatCount(more)} more tensors in ${baseName(report.reportPath)}`,
          })
        : null,
    ],
  );
}

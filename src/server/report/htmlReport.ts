/**
 * The shared HTML report as one file: the webview's report bundle (webview-ui/src/report/,
 * built by webpack from the model editor's own code) and media/layerlens.css inlined, the
 * VS Code theme variables given light defaults (dark under prefers-color-scheme), and the
 * ReportData as JSON the bundle's static host answers the view's requests from. A CSP
 * with nothing but the page's own nonce keeps it off the network.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPORT_DATA_ELEMENT_ID, type ReportData } from '../../shared/report';
import { themeDeclarations } from '../../shared/themeColors';

/** The two files the page inlines. */
export interface ReportAssets {
  /** webview-ui/src/report/main.ts bundled (dist/webview/report.js). */
  readonly script: string;
  /** media/layerlens.css */
  readonly stylesheet: string;
}

/** The page's bundle or stylesheet is not where the running code expects it. */
export class ReportAssetsMissingError extends Error {}

function firstExisting(candidates: readonly string[], what: string): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found)
    throw new ReportAssetsMissingError(
      `${what} is missing (looked for ${candidates.join(', ')}): build LayerLens with npm run build`,
    );
  return found;
}

/**
 * The assets' paths next to the running code: the CLI bundle (dist/cli.js, beside
 * dist/webview/ and ../media/), or the sources run by tsx (src/server/report/).
 */
export function defaultReportAssets(): ReportAssets {
  const root = path.resolve(__dirname, '..', '..', '..');
  return {
    script: firstExisting(
      [
        path.join(__dirname, 'webview', 'report.js'),
        path.join(root, 'dist', 'webview', 'report.js'),
      ],
      'The report page bundle',
    ),
    stylesheet: firstExisting(
      [
        path.join(__dirname, '..', 'media', 'layerlens.css'),
        path.join(root, 'media', 'layerlens.css'),
      ],
      'The stylesheet media/layerlens.css',
    ),
  };
}

/**
 * Script text that cannot end its `<script>` element early nor start an HTML comment
 * there: `</script` and `<!--` occur in a bundle only inside literals, where `<\/` and
 * `<\x21` (valid in strings, templates and regular expressions alike) mean the same.
 */
function scriptText(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\x21--');
}

/** Stylesheet text that cannot end its `<style>` element early. */
function styleText(text: string): string {
  return text.replace(/<\/(style)/gi, '<\\/$1');
}

/** JSON safe inside `<script type="application/json">`: no `<` at all. */
function embeddedJson(data: ReportData): string {
  return JSON.stringify(data)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Rules of the report page only: actions that need VS Code are hidden. */
const REPORT_CSS = `
body { margin: 0; padding: 0 16px 16px; background: var(--vscode-editor-background); color: var(--vscode-foreground); }
.ll-compress-button, .ll-reports-area, .ll-pack-total { display: none !important; }
.ll-report-header { padding: 12px 0 4px; }
.ll-report-header h1 { font-size: 1.4em; margin: 0 0 4px; }
.ll-report-notes { color: var(--vscode-descriptionForeground); margin: 4px 0; padding-left: 1.2em; }
.ll-report-compare { margin-top: 24px; border-top: 1px solid var(--vscode-panel-border); }
`;

export function htmlReport(data: ReportData, assets: ReportAssets): string {
  const nonce = randomBytes(16).toString('base64');
  const script = readFileSync(assets.script, 'utf8').replace(
    /\n\/\/# sourceMappingURL=\S*\s*$/,
    '\n',
  );
  const stylesheet = readFileSync(assets.stylesheet, 'utf8');
  const csp = [
    "default-src 'none'",
    'img-src data: blob:',
    `style-src 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const title = data.comparison
    ? `LayerLens report: ${data.model.summary.fileName} compared with ${path.basename(data.comparison.diff.b.path)}`
    : `LayerLens report: ${data.model.summary.fileName}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="generator" content="layerlens report">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
:root {
  color-scheme: light dark;
${themeDeclarations('light')}
}
@media (prefers-color-scheme: dark) {
  :root {
${themeDeclarations('dark')}
  }
}
${styleText(stylesheet)}
${REPORT_CSS}
</style>
</head>
<body data-state="loading">
<div id="report-header"></div>
<div id="app"></div>
<div id="compare"></div>
<script type="application/json" id="${REPORT_DATA_ELEMENT_ID}">${embeddedJson(data)}</script>
<script nonce="${nonce}">${scriptText(script)}</script>
</body>
</html>
`;
}

/**
 * The custom editor's HTML document, free of the VS Code API so that the webview tests
 * serve exactly the page the extension does: a strict CSP with a nonce, the stylesheets,
 * then the scripts.
 */
export interface WebviewDocumentParts {
  /** The origin allowed to serve styles, images and fonts (`webview.cspSource`). */
  readonly cspSource: string;
  readonly nonce: string;
  readonly stylesheets: readonly string[];
  readonly scripts: readonly ({ readonly src: string } | { readonly inline: string })[];
  /** Extra attributes of `<body>` (the tests set VS Code's theme classes there). */
  readonly bodyAttributes?: string;
}

export function webviewDocument(parts: WebviewDocumentParts): string {
  const { cspSource, nonce } = parts;
  const csp = [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    // The graph view's layout worker: its bundle fetched from the resources, run from a blob.
    `connect-src ${cspSource}`,
    'worker-src blob:',
  ].join('; ');
  const styles = parts.stylesheets.map((href) => `  <link rel="stylesheet" href="${href}">`);
  const scripts = parts.scripts.map((script) =>
    'src' in script
      ? `  <script nonce="${nonce}" src="${script.src}"></script>`
      : `  <script nonce="${nonce}">${script.inline}</script>`,
  );
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
${styles.join('\n')}
  <title>LayerLens</title>
</head>
<body data-state="loading"${parts.bodyAttributes ? ` ${parts.bodyAttributes}` : ''}>
  <div id="app"></div>
${scripts.join('\n')}
</body>
</html>`;
}

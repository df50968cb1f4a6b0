/** The custom editor's HTML for a webview: bundles loaded through asWebviewUri. */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { webviewDocument } from './webviewDocument';

/** `bundle`: the webview bundle to load (`main.js`: the model editor; `diff.js`: the diff editor). */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  bundle = 'main.js',
): string {
  const resource = (...path: string[]) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path)).toString();
  return webviewDocument({
    cspSource: webview.cspSource,
    nonce: randomBytes(16).toString('base64'),
    stylesheets: [resource('media', 'layerlens.css')],
    scripts: [{ src: resource('dist', 'webview', bundle) }],
  });
}

/** The custom editor's HTML for a webview: bundles loaded through asWebviewUri. */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { webviewDocument } from './webviewDocument';

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const resource = (...path: string[]) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path)).toString();
  return webviewDocument({
    cspSource: webview.cspSource,
    nonce: randomBytes(16).toString('base64'),
    stylesheets: [resource('media', 'layerlens.css')],
    scripts: [{ src: resource('dist', 'webview', 'main.js') }],
  });
}

/** A status bar item that shows whether the LayerLens server is running. */
import * as vscode from 'vscode';
import type { LayerLensClient, ServerState } from './client';

const LOOK: Record<ServerState, { text: string; tooltip: string }> = {
  starting: { text: '$(sync~spin) LayerLens', tooltip: 'LayerLens server is starting' },
  running: {
    text: '$(pulse) LayerLens',
    tooltip: 'LayerLens server is running — click for its output',
  },
  stopped: {
    text: '$(error) LayerLens',
    tooltip: 'LayerLens server is stopped — click to restart',
  },
};

export function registerStatusBar(client: LayerLensClient): vscode.Disposable {
  const item = vscode.window.createStatusBarItem(
    'layerlens.server',
    vscode.StatusBarAlignment.Right,
    100,
  );
  item.name = 'LayerLens Server';
  const show = (state: ServerState) => {
    item.text = LOOK[state].text;
    item.tooltip = LOOK[state].tooltip;
    item.command = state === 'stopped' ? 'layerlens.restartServer' : 'layerlens.showServerOutput';
    item.backgroundColor =
      state === 'stopped' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  };
  show(client.state);
  item.show();
  return vscode.Disposable.from(item, client.onDidChangeState(show));
}

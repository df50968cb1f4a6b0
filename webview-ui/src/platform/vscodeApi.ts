/** The webview's only link to the extension: VS Code's `acquireVsCodeApi()`, typed. */
import type { HostToWebview, WebviewToHost } from '../../../src/shared/protocol';

export interface VsCodeApi<State> {
  postMessage(message: WebviewToHost): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

/** `acquireVsCodeApi` may be called only once per page; every module shares this instance. */
export function getVsCodeApi<State>(): VsCodeApi<State> {
  return acquireVsCodeApi<State>();
}

/** Listen to messages from the extension, ignoring anything that is not one of ours. */
export function onHostMessage(listener: (message: HostToWebview) => void): void {
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    if (isHostMessage(event.data)) listener(event.data);
  });
}

function isHostMessage(data: unknown): data is HostToWebview {
  if (typeof data !== 'object' || data === null || !('type' in data)) return false;
  if (data.type === 'reload') return true;
  if (data.type === 'compressionReport') return 'report' in data;
  if (data.type === 'reveal') {
    const field = (name: string, type: string) => {
      const value = (data as Record<string, unknown>)[name];
      return value === undefined || typeof value === type;
    };
    const { tensorName, compareWith } = data as { tensorName?: unknown; compareWith?: unknown };
    return (
      (tensorName !== undefined || compareWith !== undefined) &&
      field('tensorName', 'string') &&
      field('compareWith', 'string') &&
      field('inGraph', 'boolean')
    );
  }
  if (data.type === 'plan') return 'view' in data;
  return data.type === 'response' && 'id' in data && typeof data.id === 'number';
}

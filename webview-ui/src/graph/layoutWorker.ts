/**
 * A layout worker of the graph view (its own bundle, dist/webview/graphLayout.js; the view
 * runs two): lays out one group, or one band of a large group, with dagre, off the
 * webview's main thread.
 */
import { dagreLayout } from './dagreLayout';
import type { LayoutRequest, LayoutResult } from './layoutProtocol';

const workerScope = self as unknown as {
  onmessage: ((event: MessageEvent<LayoutRequest>) => void) | null;
  postMessage(message: LayoutResult): void;
};

// dagre ships as an ES module only; 'eager' keeps it in this bundle (a worker started from a
// blob: URL could not load a separate chunk).
const dagreModule = import(/* webpackMode: "eager" */ '@dagrejs/dagre');

workerScope.onmessage = async (event) => {
  try {
    workerScope.postMessage(dagreLayout(await dagreModule, event.data));
  } catch (error) {
    workerScope.postMessage({
      id: event.data.id,
      positions: {},
      routes: [],
      width: 0,
      height: 0,
      ms: 0,
      error: error instanceof Error ? error.message : String(error),
    });
  }
};

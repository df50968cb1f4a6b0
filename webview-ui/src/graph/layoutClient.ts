/**
 * Runs layouts in a Web Worker. The worker's bundle sits beside main.js; a webview may not
 * start a worker from its resource origin, so the script is fetched and started from a
 * blob: URL (the page's CSP allows exactly that: `connect-src` its resources,
 * `worker-src blob:`).
 */
import { LAYOUT_WORKER_BUNDLE } from '../../../src/shared/graph';
import type { LayoutRequest, LayoutResult } from './layoutProtocol';

/** The URL of this bundle, read while it runs its top level (later `currentScript` is null). */
const BUNDLE_URL = (document.currentScript as HTMLScriptElement | null)?.src ?? document.baseURI;

export class LayoutClient {
  private worker: Promise<Worker> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (result: LayoutResult) => void>();

  layout(request: Omit<LayoutRequest, 'id'>): Promise<LayoutResult> {
    const id = this.nextId++;
    return this.start().then(
      (worker) =>
        new Promise<LayoutResult>((resolve, reject) => {
          this.pending.set(id, (result) =>
            result.error ? reject(new Error(`layout failed: ${result.error}`)) : resolve(result),
          );
          worker.postMessage({ ...request, id } satisfies LayoutRequest);
        }),
    );
  }

  /** Starts the worker now (fetching and starting it overlaps whatever comes first). */
  prepare(): void {
    this.start().catch(() => {
      // The first layout reports the failure.
      this.worker = undefined;
    });
  }

  dispose(): void {
    void this.worker?.then((worker) => worker.terminate());
    this.worker = undefined;
    this.pending.clear();
  }

  private start(): Promise<Worker> {
    this.worker ??= (async () => {
      const url = new URL(LAYOUT_WORKER_BUNDLE, BUNDLE_URL).href;
      const response = await fetch(url);
      if (!response.ok)
        throw new Error(`cannot load the layout worker (${response.status} ${url})`);
      const blob = new Blob([await response.text()], { type: 'text/javascript' });
      const worker = new Worker(URL.createObjectURL(blob));
      worker.onmessage = (event: MessageEvent<LayoutResult>) => {
        const resolve = this.pending.get(event.data.id);
        this.pending.delete(event.data.id);
        resolve?.(event.data);
      };
      return worker;
    })();
    return this.worker;
  }
}

/**
 * Runs layouts in Web Workers. The workers' bundle sits beside main.js; a webview may not
 * start a worker from its resource origin, so the script is fetched once and the workers
 * are started from a blob: URL (the page's CSP allows exactly that: `connect-src` its
 * resources, `worker-src blob:`).
 *
 * A large group's bands (bandedLayout.ts) are laid out by LAYOUT_WORKERS workers at once,
 * each band going to the worker with the fewest layouts in hand. Layouts are remembered by
 * their request (LayoutCache): opening a child of a large group lays out its band again, not
 * the others.
 */
import { LAYOUT_WORKER_BUNDLE } from '../../../src/shared/graph';
import { bandedLayout, LayoutCache } from './bandedLayout';
import type { LayoutInput, LayoutRequest, LayoutResult } from './layoutProtocol';

/** Workers that lay out a large group's bands side by side (at most one per core). */
export const LAYOUT_WORKERS = 2;

/**
 * What each worker lays out once after the first paint, its answer dropped: a small band
 * with forks, so that dagre's code is compiled before the first band that counts (in Node,
 * a cold dagre took about twice as long on its first band of 200 boxes).
 */
function warmUpRequest(): LayoutRequest {
  const boxes = Array.from({ length: 40 }, (_, i) => ({ id: `w${i}`, width: 80, height: 40 }));
  const edges = boxes
    .slice(1)
    .map((box, i) => ({ from: `w${i - (i % 3 === 2 ? 1 : 0)}`, to: box.id }));
  return { id: WARM_UP_ID, boxes, edges, band: true };
}

/** The id of warm-up layouts: no pending layout has it. */
const WARM_UP_ID = 0;

/** The URL of this bundle, read while it runs its top level (later `currentScript` is null). */
const BUNDLE_URL = (document.currentScript as HTMLScriptElement | null)?.src ?? document.baseURI;

interface PooledWorker {
  readonly worker: Worker;
  /** Layouts sent and not yet answered. */
  busy: number;
}

export class LayoutClient {
  private workers: Promise<PooledWorker[]> | undefined;
  private nextId = 1;
  private warmedUp = false;
  private readonly cache = new LayoutCache((request) => this.layoutOne(request));
  private readonly pending = new Map<number, (result: LayoutResult) => void>();

  /** Lays out one group's children (in bands over the workers when it is large). */
  async layout(input: LayoutInput): Promise<LayoutResult> {
    const result = await bandedLayout(input, this.cache.layout);
    // After the first layout (the first paint's), not before: that one should not wait.
    if (!this.warmedUp) {
      this.warmedUp = true;
      void this.start().then((pool) =>
        pool.forEach(({ worker }) => worker.postMessage(warmUpRequest())),
      );
    }
    return result;
  }

  /** Starts the workers now (fetching and starting them overlaps whatever comes first). */
  prepare(): void {
    this.start().catch(() => {
      // The first layout reports the failure.
      this.workers = undefined;
    });
  }

  dispose(): void {
    void this.workers?.then((pool) => pool.forEach(({ worker }) => worker.terminate()));
    this.workers = undefined;
    this.warmedUp = false;
    this.cache.clear();
    this.pending.clear();
  }

  private async layoutOne(request: Omit<LayoutRequest, 'id'>): Promise<LayoutResult> {
    const pool = await this.start();
    const id = this.nextId++;
    const pooled = pool.reduce((least, next) => (next.busy < least.busy ? next : least));
    pooled.busy++;
    return new Promise<LayoutResult>((resolve, reject) => {
      this.pending.set(id, (result) => {
        pooled.busy--;
        if (result.error) reject(new Error(`layout failed: ${result.error}`));
        else resolve(result);
      });
      pooled.worker.postMessage({ ...request, id } satisfies LayoutRequest);
    });
  }

  private start(): Promise<PooledWorker[]> {
    this.workers ??= (async () => {
      const url = new URL(LAYOUT_WORKER_BUNDLE, BUNDLE_URL).href;
      const response = await fetch(url);
      if (!response.ok)
        throw new Error(`cannot load the layout worker (${response.status} ${url})`);
      const script = URL.createObjectURL(
        new Blob([await response.text()], { type: 'text/javascript' }),
      );
      const count = Math.max(1, Math.min(LAYOUT_WORKERS, navigator.hardwareConcurrency || 1));
      return Array.from({ length: count }, () => {
        const worker = new Worker(script);
        worker.onmessage = (event: MessageEvent<LayoutResult>) => {
          const settle = this.pending.get(event.data.id);
          this.pending.delete(event.data.id);
          settle?.(event.data);
        };
        return { worker, busy: 0 };
      });
    })();
    return this.workers;
  }
}

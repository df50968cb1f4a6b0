/**
 * Cancellation for the heatmap's requests: a newer info request cancels the one before it,
 * tile requests that left the view are cancelled, and an answer that arrives for a
 * cancelled request, or from before a reset, is dropped rather than painted. No DOM.
 */

/** At most one request at a time: starting the next cancels the one in flight. */
export class LatestRequest {
  private current: AbortController | null = null;

  /** Cancels the request in flight, if any, and gives the next one its controller. */
  start(): AbortController {
    this.cancel();
    const controller = new AbortController();
    this.current = controller;
    return controller;
  }

  cancel(): void {
    this.current?.abort();
    this.current = null;
  }

  /** `controller`'s request settled: whether its answer may be used (it was not cancelled). */
  finish(controller: AbortController): boolean {
    if (controller.signal.aborted) return false;
    if (this.current === controller) this.current = null;
    return true;
  }
}

/** What to do with a tile request's answer. */
export interface TileHandlers<T> {
  /** The answer of a request still wanted. */
  readonly onTile: (tile: T) => void;
  /** The failure of a request still wanted (cancellations included: the caller tells them apart). */
  readonly onError: (error: unknown) => void;
}

/** Tile requests in flight by tile key, at most one per key. */
export class TileRequests {
  private readonly inFlight = new Map<string, AbortController>();
  private generation = 0;
  private sent = 0;

  /** Requests started since the panel was made. */
  get started(): number {
    return this.sent;
  }

  /** The keys of the requests in flight. */
  keys(): string[] {
    return [...this.inFlight.keys()];
  }

  /** A controller for a new request for `key`, or null while one for `key` is in flight. */
  start(key: string): AbortController | null {
    if (this.inFlight.has(key)) return null;
    const controller = new AbortController();
    this.inFlight.set(key, controller);
    this.sent++;
    return controller;
  }

  /**
   * Follows the request `start(key)` gave `controller` for: when it settles it is no longer in
   * flight, and its answer or error reaches `handlers` unless it was cancelled or the requests
   * were reset since it started.
   */
  track<T>(
    key: string,
    controller: AbortController,
    answer: Promise<T>,
    handlers: TileHandlers<T>,
  ): void {
    const generation = this.generation;
    const settle = (): boolean => {
      if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
      return !controller.signal.aborted && generation === this.generation;
    };
    answer.then(
      (tile) => {
        if (settle()) handlers.onTile(tile);
      },
      (error: unknown) => {
        if (settle()) handlers.onError(error);
      },
    );
  }

  /** Cancels the requests whose keys `predicate` picks. */
  cancelWhere(predicate: (key: string) => boolean): void {
    for (const [key, controller] of [...this.inFlight]) {
      if (!predicate(key)) continue;
      controller.abort();
      this.inFlight.delete(key);
    }
  }

  /** Cancels every request; answers to requests started before now are dropped. */
  reset(): void {
    this.cancelWhere(() => true);
    this.generation++;
  }
}

/**
 * Fetches everything the panel shows, progressively: the summary, then the tensor list
 * page by page, then statistics in small batches with a few requests in flight, rows in
 * view first, so the table is usable long before the last statistics arrive.
 */
import type { ModelSummary, TensorStatsResult } from '../../../src/shared/model';
import { isStatsError } from '../../../src/shared/model';
import type { RequestError } from '../../../src/shared/protocol';
import { isCancellation, requestErrorOf, type ModelApi } from '../platform/api';
import { createRow, type TensorRow } from '../table/tensorRows';

/** Rows per `tensors` request. */
const PAGE_SIZE = 500;
/** Tensors per `tensorStats` request: small enough that rows in view fill in quickly. */
const STATS_BATCH_SIZE = 32;
/** `tensorStats` requests in flight at once: keeps the server's workers busy without flooding it. */
const STATS_REQUESTS_IN_FLIGHT = 2;

export interface LoadProgress {
  readonly rowsLoaded: number;
  readonly statsSettled: number;
  readonly total: number;
}

export interface ModelLoaderEvents {
  summary(summary: ModelSummary): void;
  rowsAdded(rows: readonly TensorRow[]): void;
  statsUpdated(rows: readonly TensorRow[]): void;
  progress(progress: LoadProgress): void;
  /** The summary could not be read: nothing else can be shown. */
  summaryFailed(error: RequestError): void;
  /** The tensor list could not be read completely. */
  tensorsFailed(error: RequestError): void;
  /** Every row and every statistic (or its error) is in. */
  finished(): void;
}

/** Per-tensor statistics progress, kept in a Uint8Array (one byte per tensor, even for 1M tensors). */
const StatsState = { Waiting: 0, InFlight: 1, Settled: 2 } as const;

export class ModelLoader {
  private readonly controller = new AbortController();
  private rows: (TensorRow | undefined)[] = [];
  private statsState = new Uint8Array(0);
  private statsCursor = 0;
  private statsSettled = 0;
  private rowsLoaded = 0;

  constructor(
    private readonly api: ModelApi,
    private readonly events: ModelLoaderEvents,
    /** Tensor indices whose statistics the user is looking at right now. */
    private readonly priorityIndices: () => readonly number[],
  ) {}

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  row(index: number): TensorRow | undefined {
    return this.rows[index];
  }

  /** Stop: no more requests are sent and no more events fire. */
  abort(): void {
    this.controller.abort();
  }

  async run(): Promise<void> {
    const signal = this.controller.signal;
    let summary: ModelSummary;
    try {
      summary = await this.api.request('openModel', {}, signal);
    } catch (error) {
      if (!this.aborted && !isCancellation(error)) this.events.summaryFailed(requestErrorOf(error));
      return;
    }
    if (this.aborted) return;
    this.events.summary(summary);
    this.rows = new Array<TensorRow | undefined>(summary.tensorCount);
    this.statsState = new Uint8Array(summary.tensorCount);
    this.reportProgress();

    if (!(await this.loadRows(summary.tensorCount)) || this.aborted) return;
    const workers = Array.from({ length: STATS_REQUESTS_IN_FLIGHT }, () => this.statsWorker());
    await Promise.all(workers);
    if (!this.aborted) this.events.finished();
  }

  /** Returns false when the list could not be read completely. */
  private async loadRows(total: number): Promise<boolean> {
    const signal = this.controller.signal;
    for (let offset = 0; offset < total; offset += PAGE_SIZE) {
      let tensors;
      try {
        ({ tensors } = await this.api.request('tensors', { offset, limit: PAGE_SIZE }, signal));
      } catch (error) {
        if (!this.aborted && !isCancellation(error))
          this.events.tensorsFailed(requestErrorOf(error));
        return false;
      }
      if (this.aborted) return false;
      const added: TensorRow[] = [];
      for (const info of tensors) {
        if (!Number.isInteger(info.index) || info.index < 0 || info.index >= total) continue;
        if (this.rows[info.index] === undefined) this.rowsLoaded++;
        const row = createRow(info);
        this.rows[info.index] = row;
        added.push(row);
      }
      if (tensors.length === 0) {
        this.events.tensorsFailed({
          message: `The server returned no tensors from position ${offset} on.`,
        });
        return false;
      }
      this.events.rowsAdded(added);
      this.reportProgress();
    }
    return true;
  }

  private async statsWorker(): Promise<void> {
    const signal = this.controller.signal;
    for (let batch = this.nextStatsBatch(); batch.length > 0; batch = this.nextStatsBatch()) {
      let results: TensorStatsResult[];
      try {
        results = await this.api.request('tensorStats', { indices: batch }, signal);
      } catch (error) {
        if (this.aborted || isCancellation(error)) return;
        const { message } = requestErrorOf(error);
        results = batch.map((index) => ({ index, error: message }));
      }
      if (this.aborted) return;
      this.settle(batch, results);
    }
  }

  /** Up to a batch of tensors still waiting for statistics: those in view first, then in file order. */
  private nextStatsBatch(): number[] {
    const batch: number[] = [];
    const take = (index: number): void => {
      if (this.statsState[index] === StatsState.Waiting && this.rows[index] !== undefined) {
        this.statsState[index] = StatsState.InFlight;
        batch.push(index);
      }
    };
    for (const index of this.priorityIndices()) {
      if (batch.length >= STATS_BATCH_SIZE) return batch;
      take(index);
    }
    while (batch.length < STATS_BATCH_SIZE && this.statsCursor < this.statsState.length) {
      take(this.statsCursor++);
    }
    return batch;
  }

  private settle(requested: readonly number[], results: readonly TensorStatsResult[]): void {
    const updated: TensorRow[] = [];
    const unanswered = new Set(requested);
    for (const result of results) {
      const row = this.rows[result.index];
      if (!row || !unanswered.delete(result.index)) continue;
      if (isStatsError(result)) row.statsError = result.error;
      else row.stats = result;
      updated.push(row);
    }
    for (const index of requested) {
      const row = this.rows[index];
      if (!row) continue;
      if (unanswered.has(index)) {
        row.statsError = 'The server returned no statistics for this tensor.';
        updated.push(row);
      }
      this.statsState[index] = StatsState.Settled;
      this.statsSettled++;
    }
    this.events.statsUpdated(updated);
    this.reportProgress();
  }

  private reportProgress(): void {
    this.events.progress({
      rowsLoaded: this.rowsLoaded,
      statsSettled: this.statsSettled,
      total: this.statsState.length,
    });
  }
}

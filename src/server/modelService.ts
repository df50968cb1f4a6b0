/**
 * The server's core, independent of the transport: opens models (cached by file
 * identity), pages their tensor lists and computes statistics in worker threads (cached
 * per tensor). The LSP server and the CLI are thin layers over it.
 */
import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { MAX_PAGE_SIZE, MAX_STATS_BATCH } from '../shared/limits';
import type {
  ModelSummary,
  TensorPage,
  TensorStats,
  TensorStatsResult,
  WeightTensors,
} from '../shared/model';
import { openModelFile } from './formats/registry';
import { ModelFileError, type OpenedModel, type TensorEntry } from './formats/types';
import { computeTensorStats } from './jobs/computeStats';
import { isAbortError, WorkerPool } from './jobs/workerPool';
import { weightIndices } from './sensitivity/tensors';

export interface ModelServiceOptions {
  /** Statistics workers; 0 or absent: one per core, at most 8. */
  readonly workerCount?: number;
  /** The statistics worker's script; absent: statsWorkerScript() (beside this bundle or source). */
  readonly statsWorkerScript?: string;
}

interface CachedModel {
  /** Size and modification time: a file that changes on disk is read again. */
  readonly identity: string;
  readonly model: Promise<OpenedModel>;
  readonly stats: Map<number, TensorStats>;
  /** The model's weights, once asked for. */
  weights?: Promise<WeightTensors>;
}

export class ModelService {
  private readonly models = new Map<string, CachedModel>();
  private pool: WorkerPool | undefined;
  readonly workerCount: number;
  private readonly statsWorkerScript: string | undefined;

  constructor(options: ModelServiceOptions = {}) {
    this.statsWorkerScript = options.statsWorkerScript;
    this.workerCount =
      options.workerCount && options.workerCount > 0
        ? options.workerCount
        : Math.min(availableParallelism(), 8);
  }

  async openModel(path: string): Promise<ModelSummary> {
    return (await this.model(path)).summary;
  }

  async tensors(path: string, offset: number, limit: number): Promise<TensorPage> {
    const { tensors } = await this.model(path);
    const start = clampInteger(offset, 0, tensors.length);
    const count = clampInteger(limit, 0, MAX_PAGE_SIZE);
    return {
      offset: start,
      total: tensors.length,
      tensors: tensors.slice(start, start + count).map((entry) => entry.info),
    };
  }

  /**
   * Statistics of the given tensors. A tensor that cannot be analysed (a string tensor,
   * a data file that vanished) gets an error entry; the others still get their numbers.
   * Rejects with an AbortError when `signal` aborts.
   */
  async tensorStats(
    path: string,
    indices: readonly number[],
    signal?: AbortSignal,
  ): Promise<TensorStatsResult[]> {
    if (indices.length > MAX_STATS_BATCH) {
      throw new RangeError(`at most ${MAX_STATS_BATCH} tensors per statistics request`);
    }
    const cached = await this.cachedModel(path);
    const model = await cached.model;
    const pool = this.workerPool();
    // Each tensor's job listens to the request's signal; a batch legitimately adds many.
    if (signal) setMaxListeners(indices.length + 10, signal);
    return Promise.all(
      indices.map(async (index): Promise<TensorStatsResult> => {
        const entry = model.tensors[index];
        if (!Number.isInteger(index) || !entry) {
          return { index, error: `no tensor with index ${index}` };
        }
        const known = cached.stats.get(index);
        if (known) return known;
        try {
          const stats: TensorStats = { index, ...(await computeTensorStats(pool, entry, signal)) };
          cached.stats.set(index, stats);
          return stats;
        } catch (error) {
          if (isAbortError(error)) throw error;
          if (error instanceof ModelFileError)
            return { index, error: error.message, file: error.file };
          return { index, error: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
  }

  /** The tensors compression methods act on (cached with the model). */
  async weightTensors(path: string): Promise<WeightTensors> {
    const cached = await this.cachedModel(path);
    cached.weights ??= cached.model.then(async (model) => ({
      indices: await weightIndices(model),
    }));
    return cached.weights;
  }

  /** How many of a model's tensors have statistics cached (for progress reports). */
  async statsCoverage(path: string): Promise<{ computed: number; total: number }> {
    const cached = await this.cachedModel(path);
    const model = await cached.model;
    return { computed: cached.stats.size, total: model.tensors.length };
  }

  /**
   * One tensor of a model, with the file's identity (size and modification time) for
   * caches of results derived from it. Rejects when there is no tensor at `index`.
   */
  async tensorEntry(
    path: string,
    index: number,
  ): Promise<{ identity: string; entry: TensorEntry }> {
    const cached = await this.cachedModel(path);
    const model = await cached.model;
    const entry = Number.isInteger(index) ? model.tensors[index] : undefined;
    if (!entry) throw new RangeError(`no tensor with index ${index}`);
    return { identity: cached.identity, entry };
  }

  /** The opened model (cached by file identity), for features that need its tensors' data. */
  async openedModel(path: string): Promise<OpenedModel> {
    return this.model(path);
  }

  /** Drop a model and its cached results. */
  close(path: string): void {
    this.models.delete(path);
  }

  dispose(): void {
    this.models.clear();
    this.pool?.dispose();
    this.pool = undefined;
  }

  private async model(path: string): Promise<OpenedModel> {
    return (await this.cachedModel(path)).model;
  }

  private async cachedModel(path: string): Promise<CachedModel> {
    let identity: string;
    try {
      const info = await stat(path);
      identity = `${info.size}:${info.mtimeMs}`;
    } catch {
      this.models.delete(path);
      throw new ModelFileError(path, 'the file does not exist or cannot be read');
    }
    const cached = this.models.get(path);
    if (cached && cached.identity === identity) return cached;
    const fresh: CachedModel = { identity, model: openModelFile(path), stats: new Map() };
    // A file that failed to open is tried again on the next request, not cached as failed.
    fresh.model.catch(() => {
      if (this.models.get(path) === fresh) this.models.delete(path);
    });
    this.models.set(path, fresh);
    return fresh;
  }

  /**
   * Starts the statistics workers now, for a caller that will ask for statistics soon:
   * their start-up then overlaps opening the model.
   */
  startStatsWorkers(): void {
    this.workerPool().start();
  }

  private workerPool(): WorkerPool {
    this.pool ??= new WorkerPool(this.workerCount, this.statsWorkerScript);
    return this.pool;
  }
}

function clampInteger(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.max(min, Math.min(max, Math.trunc(value)));
}

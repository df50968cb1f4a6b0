/**
 * The server's context: it owns the services (models, analysis, lossless, the Python
 * features' model source) and the current settings, applies configuration changes
 * without a restart, and disposes everything once.
 *
 * Settings read per request (validation.*, sensitivity.metric) take effect on the next
 * request through `settingsFor`. `compute.backend` reconfigures the analysis service in
 * place. `stats.workerCount` sizes the worker pools, so it replaces the services; requests
 * already running keep the services they began with, which are disposed once the last of
 * them settles.
 */
import type { Connection, InitializeParams } from 'vscode-languageserver/node';
import { DEFAULT_SETTINGS, SETTINGS_SECTION, type LayerLensSettings } from '../shared/settings';
import { AnalysisService } from './analysisService';
import { LosslessService } from './lossless/service';
import { ModelService } from './modelService';
import { ModelStatsProgress } from './progress';
import { PythonFeatures } from './python/lspPython';

/** The services one request works with, all built for the same settings. */
export interface Services {
  readonly models: ModelService;
  readonly analysis: AnalysisService;
  readonly lossless: LosslessService;
  readonly statsProgress: ModelStatsProgress;
}

interface Generation {
  readonly services: Services;
  /** Requests still running on these services. */
  running: number;
}

export class ServerContext {
  private settings: LayerLensSettings = { ...DEFAULT_SETTINGS };
  private generation: Generation;
  /** Replaced generations that still have requests running. */
  private readonly retiring = new Set<Generation>();
  private readonly python: PythonFeatures;
  private disposed = false;

  constructor(private readonly connection: Connection) {
    this.generation = { services: this.createServices(), running: 0 };
    // Lenses ask for effective ranks through whichever analysis service is current.
    this.python = new PythonFeatures(connection, this.services.models, (path, index) =>
      this.services.analysis.effectiveRankIfSmall(path, index),
    );
  }

  /** The current services (for work that is not a request, or reads one service once). */
  get services(): Services {
    return this.generation.services;
  }

  /** The current settings, defaults filled in. */
  get currentSettings(): Readonly<LayerLensSettings> {
    return this.settings;
  }

  /** The current settings with a request's own values laid over them. */
  settingsFor(override?: Partial<LayerLensSettings>): LayerLensSettings {
    return { ...this.settings, ...settingsFromClient(override) };
  }

  /** The client's `initialize` request: its capabilities, folders and settings. */
  initialize(params: InitializeParams): void {
    this.python.initialize(params);
    const options = params.initializationOptions as { settings?: unknown } | undefined;
    this.applySettings(settingsFromClient(options?.settings));
  }

  /** Apply changed settings (keys not given keep their values). */
  applySettings(changed: Partial<LayerLensSettings>): void {
    if (this.disposed) return;
    const previous = this.settings;
    this.settings = { ...previous, ...changed };
    if (this.settings['stats.workerCount'] !== previous['stats.workerCount']) {
      this.replaceServices();
    } else {
      if (this.settings['compute.backend'] !== previous['compute.backend']) {
        this.services.analysis.setComputeBackend(this.settings['compute.backend']);
      }
      if (this.settings['spectrum.method'] !== previous['spectrum.method']) {
        this.services.analysis.setSpectrumMethod(this.settings['spectrum.method']);
      }
    }
  }

  /**
   * Run one request's work with the current services. Services replaced while it runs
   * are disposed after it (and every other request on them) has settled.
   */
  async serve<T>(work: (services: Services) => Promise<T>): Promise<T> {
    const generation = this.generation;
    generation.running++;
    try {
      return await work(generation.services);
    } finally {
      generation.running--;
      if (this.retiring.has(generation) && generation.running === 0) {
        this.retiring.delete(generation);
        disposeServices(generation.services, false);
      }
    }
  }

  /** Dispose every service, current and replaced (running requests are cut short). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const generation of this.retiring) disposeServices(generation.services, false);
    this.retiring.clear();
    disposeServices(this.services, true);
  }

  private replaceServices(): void {
    const previous = this.generation;
    this.generation = { services: this.createServices(), running: 0 };
    this.python.useModels(this.services.models);
    if (previous.running > 0) this.retiring.add(previous);
    else disposeServices(previous.services, false);
  }

  private createServices(): Services {
    const models = new ModelService({ workerCount: this.settings['stats.workerCount'] });
    return {
      models,
      analysis: new AnalysisService(models, {
        computeBackend: this.settings['compute.backend'],
        spectrumMethod: this.settings['spectrum.method'],
      }),
      lossless: new LosslessService(models, models.workerCount),
      statsProgress: new ModelStatsProgress(this.connection, (path) => models.statsCoverage(path)),
    };
  }
}

/**
 * Stop the services' workers and drop their caches. The spectrum worker is shared by
 * every analysis service, so only the last dispose (`last`) stops it.
 */
function disposeServices(services: Services, last: boolean): void {
  services.statsProgress.dispose();
  services.lossless.dispose();
  if (last) services.analysis.dispose();
  else services.analysis.release();
  services.models.dispose();
}

/**
 * The LayerLens settings in what a client sent: flat keys (`{ 'validation.samples': 4 }`,
 * as the extension sends them) or the section as VS Code nests it
 * (`{ layerlens: { validation: { samples: 4 } } }`). Unknown keys and values of the wrong
 * kind are left out.
 */
export function settingsFromClient(payload: unknown): Partial<LayerLensSettings> {
  if (!isRecord(payload)) return {};
  const nested = payload[SETTINGS_SECTION];
  const settings: Record<string, unknown> = {};
  for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof LayerLensSettings)[]) {
    const value = isRecord(nested) ? valueAtPath(nested, key.split('.')) : payload[key];
    if (value !== undefined && sameKind(value, DEFAULT_SETTINGS[key])) settings[key] = value;
  }
  return settings as Partial<LayerLensSettings>;
}

function valueAtPath(record: Record<string, unknown>, path: readonly string[]): unknown {
  let value: unknown = record;
  for (const part of path) {
    if (!isRecord(value)) return undefined;
    value = value[part];
  }
  return value;
}

function sameKind(value: unknown, example: unknown): boolean {
  if (Array.isArray(example)) return Array.isArray(value);
  if (isRecord(example)) return isRecord(value);
  return typeof value === typeof example;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Typed requests to the extension (which forwards them to the LayerLens server). */
import type { CompressibilityResult, DeltaStatsResult } from '../../src/shared/lossless';
import type { ModelSummary, TensorPage, TensorStatsResult } from '../../src/shared/model';
import type { HeatmapInfo, HeatmapLayer, HeatmapTile } from '../../src/shared/heatmap';
import type { Spectrum, SpectrumOptions } from '../../src/shared/spectrum';
import type { SensitivityRequest, SensitivityResult } from '../../src/shared/sensitivity';
import {
  RequestChannel,
  WebviewRequestError,
  type HostToWebview,
  type RequestError,
  type WebviewToHost,
} from '../../src/shared/protocol';
import type { VsCodeApi } from './vscodeApi';

export class ModelApi {
  private readonly channel: RequestChannel;

  constructor(private readonly api: VsCodeApi<unknown>) {
    this.channel = new RequestChannel((message) => api.postMessage(message));
  }

  /** A message that expects no reply (e.g. "compress these tensors"). */
  send(message: WebviewToHost): void {
    this.api.postMessage(message);
  }

  /** Feed a message from the host; returns true when it answered one of our requests. */
  handle(message: HostToWebview): boolean {
    return this.channel.handle(message);
  }

  /** Fail every request still waiting, e.g. when everything is about to be fetched again. */
  cancelAll(reason: string): void {
    this.channel.rejectAll(reason);
  }

  summary(signal?: AbortSignal): Promise<ModelSummary> {
    return this.channel.request('summary', {}, signal);
  }

  tensors(offset: number, limit: number, signal?: AbortSignal): Promise<TensorPage> {
    return this.channel.request('tensors', { offset, limit }, signal);
  }

  tensorStats(indices: number[], signal?: AbortSignal): Promise<TensorStatsResult[]> {
    return this.channel.request('tensorStats', { indices }, signal);
  }

  spectrum(index: number, options: SpectrumOptions, signal?: AbortSignal): Promise<Spectrum> {
    return this.channel.request('spectrum', { index, options }, signal);
  }

  heatmapInfo(index: number, layer: HeatmapLayer, signal?: AbortSignal): Promise<HeatmapInfo> {
    return this.channel.request('heatmapInfo', { index, layer }, signal);
  }

  heatmapTile(
    index: number,
    layer: HeatmapLayer,
    level: number,
    tileX: number,
    tileY: number,
    signal?: AbortSignal,
  ): Promise<HeatmapTile> {
    return this.channel.request('heatmapTile', { index, layer, level, tileX, tileY }, signal);
  }

  compressibility(indices: number[], signal?: AbortSignal): Promise<CompressibilityResult[]> {
    return this.channel.request('compressibility', { indices }, signal);
  }

  deltaStats(indices: number[], signal?: AbortSignal): Promise<DeltaStatsResult[]> {
    return this.channel.request('deltaStats', { indices }, signal);
  }

  sensitivity(request: SensitivityRequest, signal?: AbortSignal): Promise<SensitivityResult> {
    return this.channel.request('sensitivity', { request }, signal);
  }
}

/** The structured error behind a failed request (any thrown value becomes one). */
export function requestErrorOf(error: unknown): RequestError {
  if (error instanceof WebviewRequestError) return error.detail;
  if (error instanceof Error) return { message: error.message };
  return { message: String(error) };
}

export function isCancellation(error: unknown): boolean {
  return error instanceof WebviewRequestError && error.detail.cancelled === true;
}
